// Q4_0 weights repacked for decoding: 16 rows side by side, so a SIMD register holds one
// group of 4 consecutive weights of each of 16 rows and an integer dot-product instruction
// (vpdpbusd) against 4 activation bytes broadcast to every lane adds 4 products into each row's
// lane. No permutes, no horizontal sums, whole-register loads: the single-row kernel on the file's
// 18-byte blocks was bound by its shuffles (~12 cycles per 128 weights on Zen 4), this layout by
// memory.
//
// Layout, per panel of rows [16p, 16p + 16) (rows past the matrix are zero, scale 0):
//   nibbles: blocks × 256 bytes; block b, group g (0–3), row r: 4 bytes at b·256 + g·64 + 4r,
//            the file's bytes 4g … 4g+3 of that row's block b (low nibbles: weights 4g … 4g+3,
//            high nibbles: weights 16+4g … 16+4g+3);
//   scales:  blocks × 16 f16 values after the nibbles; block b, row r at (blocks·256) + b·32 + 2r.
// 288 bytes a block of 16 rows, as the file's 16 × 18: the same bytes, reordered.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/kernels.h"

namespace smolvlm::kernels {

constexpr int kQ4PanelRows = 16;
constexpr size_t kQ4PanelNibbleBytes = 256;  // a block of 16 rows' nibbles
constexpr size_t kQ4PanelScaleBytes = 32;    // a block of 16 rows' scales

// Bytes from one panel of 16 rows to the next, for rows of `cols` weights.
inline size_t q4_panel_stride(int cols) {
  return static_cast<size_t>(cols / kQ8BlockSize) * (kQ4PanelNibbleBytes + kQ4PanelScaleBytes);
}
// Bytes of the panels for a Q4_0 matrix [rows, cols].
size_t q4_panel_bytes(int rows, int cols);
// W (Q4_0, file layout) into `out` (q4_panel_bytes).
void pack_q4_panels(const Matrix& w, uint8_t* out);
// Row r's block b in the file's 18-byte layout again, read from w.panels.
void q4_panel_block(const Matrix& w, int r, int b, uint8_t* block);

}  // namespace smolvlm::kernels
