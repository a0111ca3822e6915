#include "kernels/q4k_panels.h"

#include <cstring>

#include "formats/kquants.h"
#include "kernels/q4_panels.h"

namespace smolvlm::kernels {

namespace {
// The file's block: d, dmin, 12 scale bytes, (Q5_K: 32 bytes of fifth bits,) 128 nibble bytes.
struct FileBlock {
  size_t bytes, qh, qs;
};
constexpr FileBlock file_block(DType t) {
  return t == DType::Q5_K ? FileBlock{176, 16, 48} : FileBlock{144, 0, 16};
}
}  // namespace

void pack_kpanels(const Matrix& w, uint8_t* out) {
  const int blocks = w.cols / 256;
  const FileBlock f = file_block(w.type);
  const size_t stride = kpanel_stride(w.type, w.cols), block_bytes = kpanel_block_bytes(w.type);
  std::memset(out, 0, stride * static_cast<size_t>((w.rows + kKPanelRows - 1) / kKPanelRows));
  for (int r = 0; r < w.rows; ++r) {
    uint8_t* panel = out + static_cast<size_t>(r / kKPanelRows) * stride;
    const int lane = r % kKPanelRows;
    const uint8_t* row = w.row(r);
    for (int b = 0; b < blocks; ++b) {
      const uint8_t* src = row + static_cast<size_t>(b) * f.bytes;
      uint8_t* dst = panel + static_cast<size_t>(b) * block_bytes;
      for (int c = 0; c < 4; ++c) {
        for (int j = 0; j < 8; ++j)
          std::memcpy(dst + kQ4kPanelCodes + 512 * c + 64 * j + 4 * lane,
                      src + f.qs + 32 * c + 4 * j, 4);
      }
      for (int g = 0; g < 8; ++g) {
        int sc = 0, m = 0;
        kquant_scale_min(src + 4, g, sc, m);
        dst[kQ4kPanelScales + 16 * g + lane] = static_cast<uint8_t>(sc);
        dst[kQ4kPanelMins + 16 * g + lane] = static_cast<uint8_t>(m);
      }
      std::memcpy(dst + kQ4kPanelD + 2 * lane, src, 2);
      std::memcpy(dst + kQ4kPanelDmin + 2 * lane, src + 2, 2);
      if (w.type == DType::Q5_K) {
        for (int j = 0; j < 8; ++j)
          std::memcpy(dst + kQ5kPanelQh + 64 * j + 4 * lane, src + f.qh + 4 * j, 4);
      }
    }
  }
}

void kpanel_block(const Matrix& w, int r, int b, uint8_t* block) {
  const FileBlock f = file_block(w.type);
  const uint8_t* src = w.panels +
                       static_cast<size_t>(r / kKPanelRows) * kpanel_stride(w.type, w.cols) +
                       static_cast<size_t>(b) * kpanel_block_bytes(w.type);
  const int lane = r % kKPanelRows;
  std::memcpy(block, src + kQ4kPanelD + 2 * lane, 2);
  std::memcpy(block + 2, src + kQ4kPanelDmin + 2 * lane, 2);
  uint8_t sc[8], m[8];
  for (int g = 0; g < 8; ++g) {
    sc[g] = src[kQ4kPanelScales + 16 * g + lane];
    m[g] = src[kQ4kPanelMins + 16 * g + lane];
  }
  // kquant_scale_min's packing, inverted: bytes 0–3 hold sc[j] and the top two bits of
  // sc[4 + j], bytes 4–7 the same for the mins, bytes 8–11 the low nibbles of sc[4 + j] and
  // m[4 + j].
  uint8_t* s = block + 4;
  for (int j = 0; j < 4; ++j) {
    s[j] = static_cast<uint8_t>((sc[j] & 63) | (sc[4 + j] >> 4) << 6);
    s[4 + j] = static_cast<uint8_t>((m[j] & 63) | (m[4 + j] >> 4) << 6);
    s[8 + j] = static_cast<uint8_t>((sc[4 + j] & 15) | (m[4 + j] & 15) << 4);
  }
  for (int c = 0; c < 4; ++c) {
    for (int j = 0; j < 8; ++j)
      std::memcpy(block + f.qs + 32 * c + 4 * j, src + kQ4kPanelCodes + 512 * c + 64 * j + 4 * lane,
                  4);
  }
  if (w.type == DType::Q5_K) {
    for (int j = 0; j < 8; ++j)
      std::memcpy(block + f.qh + 4 * j, src + kQ5kPanelQh + 64 * j + 4 * lane, 4);
  }
}

size_t decode_panel_bytes(const Matrix& w) {
  if (w.type == DType::Q4_0) return q4_panel_bytes(w.rows, w.cols);
  if ((w.type == DType::Q4_K || w.type == DType::Q5_K) && w.cols % 256 == 0)
    return kpanel_stride(w.type, w.cols) *
           static_cast<size_t>((w.rows + kKPanelRows - 1) / kKPanelRows);
  return 0;
}

void pack_decode_panels(const Matrix& w, uint8_t* out) {
  if (w.type == DType::Q4_0) pack_q4_panels(w, out);
  if (w.type == DType::Q4_K || w.type == DType::Q5_K) pack_kpanels(w, out);
}

const uint8_t* stored_block(const Matrix& w, int r, int b, uint8_t* tmp) {
  if (w.panels && w.type == DType::Q4_0) {
    q4_panel_block(w, r, b, tmp);
    return tmp;
  }
  if (w.panels && (w.type == DType::Q4_K || w.type == DType::Q5_K)) {
    kpanel_block(w, r, b, tmp);
    return tmp;
  }
  return w.row(r) + static_cast<size_t>(b) * block_bytes(w.type);
}

}  // namespace smolvlm::kernels
