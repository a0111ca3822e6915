// Q4_K weights repacked for decoding, 16 rows side by side, as kernels/q4_panels.h does for
// Q4_0: a register holds 4 consecutive codes of each of 16 (or 8) rows, and an integer dot
// product against 4 activation bytes broadcast to every lane adds 4 products into each row's
// lane. The single-row kernel on the file's 144-byte blocks spent most of its work on gathering
// each row's eight group sums and unpacking its 6-bit scales, once per row and block; here the
// scales are unpacked once, at packing, and the sums land in their row's lane.
//
// Layout, per panel of rows [16p, 16p + 16) (rows past the matrix are zero: d = dmin = 0), per
// block b of 256 values, kQ4kPanelBlockBytes at b · kQ4kPanelBlockBytes:
//   codes:  chunk c (0–3), quad j (0–7), row r: 4 bytes at 512c + 64j + 4r, the file's bytes
//           32c + 4j … 32c + 4j + 3 of that row's block (low nibbles: values 64c + 4j …,
//           group 2c; high nibbles: values 64c + 32 + 4j …, group 2c + 1);
//   scales: group g (0–7), row r: the 6-bit scale at 2048 + 16g + r, the 6-bit min at
//           2176 + 16g + r;
//   d, dmin: row r's f16 at 2304 + 2r and 2336 + 2r.
// 2368 bytes a block of 16 rows, against the file's 16 × 144 = 2304: the scales a byte each.
#pragma once

#include <cstddef>
#include <cstdint>

#include "formats/kquants.h"
#include "kernels/kernels.h"

namespace smolvlm::kernels {

constexpr int kQ4kPanelRows = 16;
constexpr size_t kQ4kPanelCodes = 0;
constexpr size_t kQ4kPanelScales = 2048;
constexpr size_t kQ4kPanelMins = 2176;
constexpr size_t kQ4kPanelD = 2304;
constexpr size_t kQ4kPanelDmin = 2336;
constexpr size_t kQ4kPanelBlockBytes = 2368;

// Bytes from one panel of 16 rows to the next, for rows of `cols` values (a multiple of 256).
inline size_t q4k_panel_stride(int cols) {
  return static_cast<size_t>(cols / 256) * kQ4kPanelBlockBytes;
}
// Where row r's block b lives in w.panels: the panel block's first byte (row r is lane
// r % kQ4kPanelRows of it).
inline const uint8_t* q4k_panel_block_at(const Matrix& w, int r, int b) {
  return w.panels + static_cast<size_t>(r / kQ4kPanelRows) * q4k_panel_stride(w.cols) +
         static_cast<size_t>(b) * kQ4kPanelBlockBytes;
}
// Bytes of the panels for a Q4_K matrix [rows, cols].
size_t q4k_panel_bytes(int rows, int cols);
// W (Q4_K, file layout) into `out` (q4k_panel_bytes).
void pack_q4k_panels(const Matrix& w, uint8_t* out);
// Row r's block b in the file's 144-byte layout again, read from w.panels (the scales packed
// back into their 12 bytes: every bit of those is one bit of a scale or a min, so exactly).
void q4k_panel_block(const Matrix& w, int r, int b, uint8_t* block);

// Bytes of the decode panels of W (Q4_0 or Q4_K; 0 for any other type).
size_t decode_panel_bytes(const Matrix& w);
// Writes them (decode_panel_bytes(w) bytes).
void pack_decode_panels(const Matrix& w, uint8_t* out);
// Block b of row r as the file stores it: a pointer into the file's row, or, where W has decode
// panels, `tmp` (block_bytes(w.type) bytes) filled from them. Prefill reads rows through this,
// so that a matrix with panels is read from them alone.
const uint8_t* stored_block(const Matrix& w, int r, int b, uint8_t* tmp);
// Block b of row r of a kquant-typed W (formats/kquants.h) in the common form, as unpack_block
// gives it from the file's bytes: read straight from Q4_K decode panels where W has them (no
// round trip through the file's 12 scale bytes: prefill packs every block of W per call).
void unpack_stored_block(const Matrix& w, int r, int b, UnpackedBlock& out);

}  // namespace smolvlm::kernels
