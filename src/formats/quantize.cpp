#include "formats/quantize.h"

#include <smolvlm/error.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

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

namespace {
// Q4_K (levels 15) and Q5_K (levels 31): per 32, scale = (max − min(0, min)) / levels and
// min = −min(0, min), as 6-bit multiples of the block's f16 d and dmin (the largest / 63).
void quantize_row_affine_k(const float* x, int cols, uint8_t* out, int levels) {
  const bool five = levels == 31;
  const size_t bytes = five ? 176 : 144;
  for (int b = 0; b < cols / 256; ++b) {
    const float* xb = x + static_cast<size_t>(b) * 256;
    uint8_t* blk = out + static_cast<size_t>(b) * bytes;
    std::memset(blk, 0, bytes);
    float scale[8], min[8], max_scale = 0, max_min = 0;
    for (int s = 0; s < 8; ++s) {
      float lo = 0, hi = -INFINITY;
      for (int i = 0; i < 32; ++i) {
        lo = std::min(lo, xb[32 * s + i]);
        hi = std::max(hi, xb[32 * s + i]);
      }
      scale[s] = (hi - lo) / static_cast<float>(levels);
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
      q[i] = s > 0 ? round_clamp((xb[i] + m) / s, 0, levels) : 0;
    }
    uint8_t* qh = blk + 16;
    uint8_t* qs = blk + (five ? 48 : 16);
    for (int c = 0; c < 4; ++c) {
      for (int j = 0; j < 32; ++j) {
        const int lo = q[64 * c + j], hi = q[64 * c + 32 + j];
        qs[32 * c + j] = static_cast<uint8_t>((lo & 15) | (hi & 15) << 4);
        if (five) qh[j] |= static_cast<uint8_t>((lo >> 4) << (2 * c) | (hi >> 4) << (2 * c + 1));
      }
    }
  }
}
}  // namespace

void quantize_row_q4_k(const float* x, int cols, uint8_t* out) {
  quantize_row_affine_k(x, cols, out, 15);
}
void quantize_row_q5_k(const float* x, int cols, uint8_t* out) {
  quantize_row_affine_k(x, cols, out, 31);
}

void quantize_row_q3_k(const float* x, int cols, uint8_t* out) {
  for (int b = 0; b < cols / 256; ++b) {
    const float* xb = x + static_cast<size_t>(b) * 256;
    uint8_t* blk = out + static_cast<size_t>(b) * 110;
    std::memset(blk, 0, 110);
    float scale[16], max_abs = 0;
    for (int g = 0; g < 16; ++g) {
      float m = 0;  // the value of largest magnitude, with its sign: it becomes −4
      for (int i = 0; i < 16; ++i) {
        if (std::fabs(xb[16 * g + i]) > std::fabs(m)) m = xb[16 * g + i];
      }
      scale[g] = m / -4.0f;
      max_abs = std::max(max_abs, std::fabs(scale[g]));
    }
    put_f16(blk + 108, max_abs / 31.0f);
    uint16_t h;
    std::memcpy(&h, blk + 108, 2);
    const float d = f16_to_f32(h);
    int sc[16];
    for (int g = 0; g < 16; ++g) sc[g] = d > 0 ? round_clamp(scale[g] / d, -32, 31) : 0;
    uint8_t* sp = blk + 96;  // 16 six-bit scales + 32: low nibbles in 0..7, high bits in 8..11
    for (int j = 0; j < 16; ++j) {
      const int v = sc[j] + 32;
      sp[j % 8] |= static_cast<uint8_t>((v & 15) << (j < 8 ? 0 : 4));
      sp[8 + j % 4] |= static_cast<uint8_t>((v >> 4) << (2 * (j / 4)));
    }
    for (int i = 0; i < 256; ++i) {
      const float s = d * static_cast<float>(sc[i / 16]);
      const int code = (s != 0 ? round_clamp(xb[i] / s, -4, 3) : 0) + 4;  // 0..7
      const int hh = i / 128, k = (i % 128) / 32, j = i % 32;
      blk[32 + 32 * hh + j] |= static_cast<uint8_t>((code & 3) << (2 * k));
      blk[j] |= static_cast<uint8_t>((code >> 2) << (4 * hh + k));
    }
  }
}

void quantize_row_q2_k(const float* x, int cols, uint8_t* out) {
  for (int b = 0; b < cols / 256; ++b) {
    const float* xb = x + static_cast<size_t>(b) * 256;
    uint8_t* blk = out + static_cast<size_t>(b) * 84;
    std::memset(blk, 0, 84);
    float scale[16], min[16], max_scale = 0, max_min = 0;
    for (int g = 0; g < 16; ++g) {
      float lo = 0, hi = -INFINITY;
      for (int i = 0; i < 16; ++i) {
        lo = std::min(lo, xb[16 * g + i]);
        hi = std::max(hi, xb[16 * g + i]);
      }
      scale[g] = (hi - lo) / 3.0f;
      min[g] = -lo;
      max_scale = std::max(max_scale, scale[g]);
      max_min = std::max(max_min, min[g]);
    }
    put_f16(blk + 80, max_scale / 15.0f);
    put_f16(blk + 82, max_min / 15.0f);
    uint16_t h;
    std::memcpy(&h, blk + 80, 2);
    const float d = f16_to_f32(h);
    std::memcpy(&h, blk + 82, 2);
    const float dmin = f16_to_f32(h);
    int sc[16], mn[16];
    for (int g = 0; g < 16; ++g) {
      sc[g] = d > 0 ? round_clamp(scale[g] / d, 0, 15) : 0;
      mn[g] = dmin > 0 ? round_clamp(min[g] / dmin, 0, 15) : 0;
      blk[g] = static_cast<uint8_t>(sc[g] | mn[g] << 4);
    }
    for (int i = 0; i < 256; ++i) {
      const float s = d * static_cast<float>(sc[i / 16]), m = dmin * static_cast<float>(mn[i / 16]);
      const int q = s > 0 ? round_clamp((xb[i] + m) / s, 0, 3) : 0;
      const int hh = i / 128, k = (i % 128) / 32, j = i % 32;
      blk[16 + 32 * hh + j] |= static_cast<uint8_t>(q << (2 * k));
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
    switch (t) {
      case DType::Q2_K:
        quantize_row_q2_k(src, cols, dst);
        break;
      case DType::Q3_K:
        quantize_row_q3_k(src, cols, dst);
        break;
      case DType::Q4_K:
        quantize_row_q4_k(src, cols, dst);
        break;
      case DType::Q5_K:
        quantize_row_q5_k(src, cols, dst);
        break;
      case DType::Q6_K:
        quantize_row_q6_k(src, cols, dst);
        break;
      default:
        throw Error(std::string("no writer for type ") + dtype_name(t));
    }
  }
  return out;
}

}  // namespace smolvlm
