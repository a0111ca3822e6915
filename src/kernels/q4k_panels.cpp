#include "kernels/q4k_panels.h"

#include <cstring>

#include "formats/kquants.h"
#include "kernels/q4_panels.h"

namespace smolvlm::kernels {

namespace {
constexpr size_t kFileBlockBytes = 144;  // d, dmin, 12 scale bytes, 128 bytes of nibbles
}

size_t q4k_panel_bytes(int rows, int cols) {
  const size_t panels = static_cast<size_t>((rows + kQ4kPanelRows - 1) / kQ4kPanelRows);
  return panels * q4k_panel_stride(cols);
}

void pack_q4k_panels(const Matrix& w, uint8_t* out) {
  const int blocks = w.cols / 256;
  const size_t stride = q4k_panel_stride(w.cols);
  std::memset(out, 0, q4k_panel_bytes(w.rows, w.cols));
  for (int r = 0; r < w.rows; ++r) {
    uint8_t* panel = out + static_cast<size_t>(r / kQ4kPanelRows) * stride;
    const int lane = r % kQ4kPanelRows;
    const uint8_t* row = w.row(r);
    for (int b = 0; b < blocks; ++b) {
      const uint8_t* src = row + static_cast<size_t>(b) * kFileBlockBytes;
      uint8_t* dst = panel + static_cast<size_t>(b) * kQ4kPanelBlockBytes;
      for (int c = 0; c < 4; ++c) {
        for (int j = 0; j < 8; ++j)
          std::memcpy(dst + kQ4kPanelCodes + 512 * c + 64 * j + 4 * lane, src + 16 + 32 * c + 4 * j,
                      4);
      }
      for (int g = 0; g < 8; ++g) {
        int sc = 0, m = 0;
        kquant_scale_min(src + 4, g, sc, m);
        dst[kQ4kPanelScales + 16 * g + lane] = static_cast<uint8_t>(sc);
        dst[kQ4kPanelMins + 16 * g + lane] = static_cast<uint8_t>(m);
      }
      std::memcpy(dst + kQ4kPanelD + 2 * lane, src, 2);
      std::memcpy(dst + kQ4kPanelDmin + 2 * lane, src + 2, 2);
    }
  }
}

void q4k_panel_block(const Matrix& w, int r, int b, uint8_t* block) {
  const uint8_t* src = q4k_panel_block_at(w, r, b);
  const int lane = r % kQ4kPanelRows;
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
      std::memcpy(block + 16 + 32 * c + 4 * j, src + kQ4kPanelCodes + 512 * c + 64 * j + 4 * lane,
                  4);
  }
}

size_t decode_panel_bytes(const Matrix& w) {
  if (w.type == DType::Q4_0) return q4_panel_bytes(w.rows, w.cols);
  if (w.type == DType::Q4_K && w.cols % 256 == 0) return q4k_panel_bytes(w.rows, w.cols);
  return 0;
}

void pack_decode_panels(const Matrix& w, uint8_t* out) {
  if (w.type == DType::Q4_0) pack_q4_panels(w, out);
  if (w.type == DType::Q4_K) pack_q4k_panels(w, out);
}

const uint8_t* stored_block(const Matrix& w, int r, int b, uint8_t* tmp) {
  if (w.panels && w.type == DType::Q4_0) {
    q4_panel_block(w, r, b, tmp);
    return tmp;
  }
  if (w.panels && w.type == DType::Q4_K) {
    q4k_panel_block(w, r, b, tmp);
    return tmp;
  }
  return w.row(r) + static_cast<size_t>(b) * block_bytes(w.type);
}

void unpack_stored_block(const Matrix& w, int r, int b, UnpackedBlock& out) {
  if (!w.panels || w.type != DType::Q4_K) {
    uint8_t tmp[256];
    unpack_block(w.type, stored_block(w, r, b, tmp), out);
    return;
  }
  const uint8_t* src = q4k_panel_block_at(w, r, b);
  const int lane = r % kQ4kPanelRows;
  uint16_t d16 = 0, dmin16 = 0;
  std::memcpy(&d16, src + kQ4kPanelD + 2 * lane, 2);
  std::memcpy(&dmin16, src + kQ4kPanelDmin + 2 * lane, 2);
  const float d = f16_to_f32(d16), dmin = f16_to_f32(dmin16);
  for (int c = 0; c < 4; ++c) {
    for (int j = 0; j < 8; ++j) {  // 4 code bytes a step, their nibbles split as whole words
      uint32_t four = 0;
      std::memcpy(&four, src + kQ4kPanelCodes + 512 * c + 64 * j + 4 * lane, 4);
      const uint32_t low = four & 0x0F0F0F0Fu, high = four >> 4 & 0x0F0F0F0Fu;
      std::memcpy(out.q + 64 * c + 4 * j, &low, 4);
      std::memcpy(out.q + 64 * c + 32 + 4 * j, &high, 4);
    }
  }
  // As unpack_block: per 32 values d·sc and −(dmin·m), in both halves' 16-value slots.
  for (int g = 0; g < 8; ++g) {
    const float scale = d * static_cast<float>(src[kQ4kPanelScales + 16 * g + lane]);
    const float min = -(dmin * static_cast<float>(src[kQ4kPanelMins + 16 * g + lane]));
    out.scale[2 * g] = out.scale[2 * g + 1] = scale;
    out.min[2 * g] = out.min[2 * g + 1] = min;
  }
}

}  // namespace smolvlm::kernels
