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

namespace smolvlm {

namespace {
void put_f16(uint8_t* p, float v) {
  const uint16_t h = f32_to_f16(v);
  std::memcpy(p, &h, 2);
}
int round_clamp(float v, int lo, int hi) {
  return std::clamp(static_cast<int>(std::lround(v)), lo, hi);
}
}  // namespace

void quantize_row_q4_k(const float* x, int cols, uint8_t* out) {
  for (int b = 0; b < cols / 256; ++b) {
    const float* xb = x + static_cast<size_t>(b) * 256;
    uint8_t* blk = out + static_cast<size_t>(b) * 144;
    std::memset(blk, 0, 144);
    float scale[8], min[8], max_scale = 0, max_min = 0;
    for (int s = 0; s < 8; ++s) {
      float lo = 0, hi = -INFINITY;
      for (int i = 0; i < 32; ++i) {
        lo = std::min(lo, xb[32 * s + i]);
        hi = std::max(hi, xb[32 * s + i]);
      }
      scale[s] = (hi - lo) / 15.0f;
      min[s] = -lo;
      max_scale = std::max(max_scale, scale[s]);
      max_min = std::max(max_min, min[s]);
    }
    put_f16(blk, max_scale / 63.0f);
    put_f16(blk + 2, max_min / 63.0f);
    uint16_t h;
    std::memcpy(&h, blk, 2);
    const float d = f16_to_f32(h);
    std::memcpy(&h, blk + 2, 2);
    const float dmin = f16_to_f32(h);
    int sc[8], mn[8];
    for (int s = 0; s < 8; ++s) {
      sc[s] = d > 0 ? round_clamp(scale[s] / d, 0, 63) : 0;
      mn[s] = dmin > 0 ? round_clamp(min[s] / dmin, 0, 63) : 0;
    }
    uint8_t* sp = blk + 4;
    for (int j = 0; j < 4; ++j) {
      sp[j] = static_cast<uint8_t>(sc[j] | (sc[j + 4] >> 4) << 6);
      sp[j + 4] = static_cast<uint8_t>(mn[j] | (mn[j + 4] >> 4) << 6);
      sp[j + 8] = static_cast<uint8_t>((sc[j + 4] & 15) | (mn[j + 4] & 15) << 4);
    }
    int q[256];
    for (int i = 0; i < 256; ++i) {
      const float s = d * static_cast<float>(sc[i / 32]), m = dmin * static_cast<float>(mn[i / 32]);
      q[i] = s > 0 ? round_clamp((xb[i] + m) / s, 0, 15) : 0;
    }
    for (int c = 0; c < 4; ++c) {
      for (int j = 0; j < 32; ++j)
        blk[16 + 32 * c + j] = static_cast<uint8_t>(q[64 * c + j] | q[64 * c + 32 + j] << 4);
    }
  }
}

void quantize_row_q6_k(const float* x, int cols, uint8_t* out) {
  for (int b = 0; b < cols / 256; ++b) {
    const float* xb = x + static_cast<size_t>(b) * 256;
    uint8_t* blk = out + static_cast<size_t>(b) * 210;
    std::memset(blk, 0, 210);
    float scale[16], max_abs = 0;
    for (int g = 0; g < 16; ++g) {
      float m = 0;  // the value of largest magnitude, with its sign: it becomes −32
      for (int i = 0; i < 16; ++i) {
        if (std::fabs(xb[16 * g + i]) > std::fabs(m)) m = xb[16 * g + i];
      }
      scale[g] = m / -32.0f;
      max_abs = std::max(max_abs, std::fabs(scale[g]));
    }
    put_f16(blk + 208, max_abs / 127.0f);
    uint16_t h;
    std::memcpy(&h, blk + 208, 2);
    const float d = f16_to_f32(h);
    int sc[16];
    for (int g = 0; g < 16; ++g) {
      sc[g] = d > 0 ? round_clamp(scale[g] / d, -128, 127) : 0;
      blk[192 + g] = static_cast<uint8_t>(static_cast<int8_t>(sc[g]));
    }
    int q[256];
    for (int i = 0; i < 256; ++i) {
      const float s = d * static_cast<float>(sc[i / 16]);
      q[i] = (s != 0 ? round_clamp(xb[i] / s, -32, 31) : 0) + 32;
    }
    for (int half = 0; half < 2; ++half) {
      for (int j = 0; j < 32; ++j) {
        const int* v = q + 128 * half + j;  // v[32k]: value 128·half + 32k + j
        blk[64 * half + j] = static_cast<uint8_t>((v[0] & 15) | (v[64] & 15) << 4);
        blk[64 * half + 32 + j] = static_cast<uint8_t>((v[32] & 15) | (v[96] & 15) << 4);
        blk[128 + 32 * half + j] = static_cast<uint8_t>(v[0] >> 4 | (v[32] >> 4) << 2 |
                                                        (v[64] >> 4) << 4 | (v[96] >> 4) << 6);
      }
    }
  }
}

std::vector<uint8_t> quantize_rows(DType t, const std::vector<float>& x, int rows, int cols) {
  std::vector<uint8_t> out(static_cast<size_t>(rows) * row_bytes(t, cols));
  for (int r = 0; r < rows; ++r) {
    const float* src = x.data() + static_cast<size_t>(r) * cols;
    uint8_t* dst = out.data() + static_cast<size_t>(r) * row_bytes(t, cols);
    if (t == DType::Q4_K) {
      quantize_row_q4_k(src, cols, dst);
    } else {
      quantize_row_q6_k(src, cols, dst);
    }
  }
  return out;
}

}  // namespace smolvlm
