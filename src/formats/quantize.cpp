#include "formats/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "formats/tensor.h"

namespace smolvlm {

void quantize_row_q8_0(const float* x, int cols, uint8_t* out) {
  for (int b = 0; b < cols / kQ8BlockSize; ++b) {
    const float* xb = x + static_cast<size_t>(b) * kQ8BlockSize;
    uint8_t* blk = out + static_cast<size_t>(b) * kQ8BlockBytes;
    float amax = 0.0f;
    for (int i = 0; i < kQ8BlockSize; ++i) amax = std::fmax(amax, std::fabs(xb[i]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const uint16_t dh = f32_to_f16(d);
    std::memcpy(blk, &dh, 2);
    for (int i = 0; i < kQ8BlockSize; ++i) {
      blk[2 + i] = static_cast<uint8_t>(static_cast<int8_t>(std::roundf(xb[i] * id)));
    }
  }
}

std::vector<uint8_t> quantize_q8_0(const std::vector<float>& x, int rows, int cols) {
  std::vector<uint8_t> out(static_cast<size_t>(rows) * row_bytes(DType::Q8_0, cols));
  for (int r = 0; r < rows; ++r) {
    quantize_row_q8_0(x.data() + static_cast<size_t>(r) * cols, cols,
                      out.data() + static_cast<size_t>(r) * row_bytes(DType::Q8_0, cols));
  }
  return out;
}

void quantize_row_q4_0(const float* x, int cols, uint8_t* out) {
  constexpr int kHalf = kQ8BlockSize / 2;
  for (int b = 0; b < cols / kQ8BlockSize; ++b) {
    const float* xb = x + static_cast<size_t>(b) * kQ8BlockSize;
    uint8_t* blk = out + static_cast<size_t>(b) * kQ4BlockBytes;
    float amax = 0.0f, m = 0.0f;
    for (int i = 0; i < kQ8BlockSize; ++i) {
      if (amax < std::fabs(xb[i])) {
        amax = std::fabs(xb[i]);
        m = xb[i];
      }
    }
    const float d = m / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const uint16_t dh = f32_to_f16(d);
    std::memcpy(blk, &dh, 2);
    for (int j = 0; j < kHalf; ++j) {
      const int lo = std::min(15, static_cast<int>(static_cast<int8_t>(xb[j] * id + 8.5f)));
      const int hi = std::min(15, static_cast<int>(static_cast<int8_t>(xb[j + kHalf] * id + 8.5f)));
      blk[2 + j] = static_cast<uint8_t>(lo | hi << 4);
    }
  }
}

std::vector<uint8_t> quantize_q4_0(const std::vector<float>& x, int rows, int cols) {
  std::vector<uint8_t> out(static_cast<size_t>(rows) * row_bytes(DType::Q4_0, cols));
  for (int r = 0; r < rows; ++r) {
    quantize_row_q4_0(x.data() + static_cast<size_t>(r) * cols, cols,
                      out.data() + static_cast<size_t>(r) * row_bytes(DType::Q4_0, cols));
  }
  return out;
}

}  // namespace smolvlm
