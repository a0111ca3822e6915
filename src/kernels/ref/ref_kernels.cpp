// Plain reference kernels: the math written out once, in the obvious order, no tricks.
#include <smolvlm/error.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "formats/kquants.h"
#include "kernels/kernels.h"
#include "kernels/q4k_panels.h"

namespace smolvlm::kernels::ref {

float q4_block_to_int8(const uint8_t* block, int8_t* q) {
  constexpr int kHalf = kQ8BlockSize / 2;
  for (int j = 0; j < kHalf; ++j) {
    q[j] = static_cast<int8_t>((block[2 + j] & 0x0F) - 8);
    q[j + kHalf] = static_cast<int8_t>((block[2 + j] >> 4) - 8);
  }
  uint16_t h;
  std::memcpy(&h, block, 2);
  return f16_to_f32(h);
}

void dequantize_row(const Matrix& w, int r, float* out) {
  const uint8_t* src = w.row(r);
  switch (w.type) {
    case DType::F32:
      std::memcpy(out, src, sizeof(float) * static_cast<size_t>(w.cols));
      return;
    case DType::F16:
    case DType::BF16:
      for (int i = 0; i < w.cols; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        out[i] = w.type == DType::F16 ? f16_to_f32(h) : bf16_to_f32(h);
      }
      return;
    case DType::Q8_0:
      for (int b = 0; b < w.cols / kQ8BlockSize; ++b) {
        const uint8_t* blk = src + b * kQ8BlockBytes;
        uint16_t d;
        std::memcpy(&d, blk, 2);
        const float scale = f16_to_f32(d);
        for (int i = 0; i < kQ8BlockSize; ++i) {
          out[b * kQ8BlockSize + i] = scale * static_cast<float>(static_cast<int8_t>(blk[2 + i]));
        }
      }
      return;
    case DType::Q4_0:
      for (int b = 0; b < w.cols / kQ8BlockSize; ++b) {
        int8_t q[kQ8BlockSize];
        uint8_t from_panel[kQ4BlockBytes];
        const float scale = q4_block_to_int8(stored_block(w, r, b, from_panel), q);
        for (int i = 0; i < kQ8BlockSize; ++i)
          out[b * kQ8BlockSize + i] = scale * static_cast<float>(q[i]);
      }
      return;
    default:
      if (is_kquant_type(w.type)) {
        const int n = block_elems(w.type);
        UnpackedBlock u;
        for (int b = 0; b < w.cols / n; ++b) {
          // From decode panels where W has them (kernels/q4k_panels.h): the file's pages of such
          // a matrix are not read again.
          unpack_stored_block(w, r, b, u);
          for (int i = 0; i < n; ++i)
            out[b * n + i] = u.scale[i / 16] * static_cast<float>(u.q[i]) + u.min[i / 16];
        }
        return;
      }
      throw Error(std::string("no kernel for weights of type ") + dtype_name(w.type));
  }
}

float kquant_row_dot(const Matrix& w, int r, const float* xd, const int8_t* xq) {
  const int n = block_elems(w.type);
  UnpackedBlock u;
  float acc = 0.0f;
  for (int b = 0; b < w.cols / n; ++b) {
    unpack_stored_block(w, r, b, u);  // the file's block, or its decode panels' copy
    for (int g = 0; g < n / 16; ++g) {
      const int i0 = b * n + g * 16;
      const float dx = xd[i0 / kQ8BlockSize];
      int32_t dot = 0, sum = 0;
      for (int i = 0; i < 16; ++i) {
        dot += static_cast<int32_t>(u.q[g * 16 + i]) * xq[i0 + i];
        sum += xq[i0 + i];
      }
      acc += u.scale[g] * dx * static_cast<float>(dot) + u.min[g] * dx * static_cast<float>(sum);
    }
  }
  return acc;
}

namespace {
struct RefBlock {
  float d;
  int8_t q[kQ8BlockSize];
};

// Symmetric int8 per block: d = max|x| / 127, q = round-half-away(x / d).
std::vector<RefBlock> quantize_q8(const float* x, int cols) {
  std::vector<RefBlock> out(static_cast<size_t>(cols / kQ8BlockSize));
  for (size_t b = 0; b < out.size(); ++b) {
    float amax = 0.0f;
    for (int i = 0; i < kQ8BlockSize; ++i)
      amax = std::max(amax, std::fabs(x[b * kQ8BlockSize + i]));
    const float d = amax / 127.0f;
    const float inv = d != 0.0f ? 1.0f / d : 0.0f;
    out[b].d = d;
    for (int i = 0; i < kQ8BlockSize; ++i) {
      out[b].q[i] = static_cast<int8_t>(std::lround(x[b * kQ8BlockSize + i] * inv));
    }
  }
  return out;
}
}  // namespace

void matmul(const float* x, int n, const Matrix& w, const float* bias, float* y) {
  if (w.type == DType::Q8_0 || w.type == DType::Q4_0) {  // w8a8 / w4a8: integer dots per block
    for (int r = 0; r < n; ++r) {
      const std::vector<RefBlock> xq = quantize_q8(x + static_cast<size_t>(r) * w.cols, w.cols);
      for (int o = 0; o < w.rows; ++o) {
        const uint8_t* wr = w.row(o);
        float acc = 0.0f;
        for (size_t b = 0; b < xq.size(); ++b) {
          int8_t q[kQ8BlockSize];
          float dw;
          if (w.type == DType::Q8_0) {
            const uint8_t* blk = wr + b * kQ8BlockBytes;
            uint16_t h;
            std::memcpy(&h, blk, 2);
            dw = f16_to_f32(h);
            std::memcpy(q, blk + 2, kQ8BlockSize);
          } else {
            dw = q4_block_to_int8(wr + b * kQ4BlockBytes, q);
          }
          int32_t sum = 0;
          for (int i = 0; i < kQ8BlockSize; ++i) sum += q[i] * xq[b].q[i];
          acc += static_cast<float>(sum) * (dw * xq[b].d);
        }
        y[static_cast<size_t>(r) * w.rows + o] = acc + (bias ? bias[o] : 0.0f);
      }
    }
    return;
  }
  if (is_kquant_type(w.type)) {  // w·a8: integer dots per 16 values, the block's scales and mins
    std::vector<float> xd(static_cast<size_t>(w.cols / kQ8BlockSize));
    std::vector<int8_t> xq(static_cast<size_t>(w.cols));
    for (int r = 0; r < n; ++r) {
      const std::vector<RefBlock> blocks = quantize_q8(x + static_cast<size_t>(r) * w.cols, w.cols);
      for (size_t b = 0; b < blocks.size(); ++b) {
        xd[b] = blocks[b].d;
        std::memcpy(xq.data() + b * kQ8BlockSize, blocks[b].q, kQ8BlockSize);
      }
      for (int o = 0; o < w.rows; ++o) {
        y[static_cast<size_t>(r) * w.rows + o] =
            kquant_row_dot(w, o, xd.data(), xq.data()) + (bias ? bias[o] : 0.0f);
      }
    }
    return;
  }
  std::vector<float> row(static_cast<size_t>(w.cols));
  for (int o = 0; o < w.rows; ++o) {
    ref::dequantize_row(w, o, row.data());
    for (int r = 0; r < n; ++r) {
      const float* xr = x + static_cast<size_t>(r) * w.cols;
      float acc = 0.0f;
      for (int i = 0; i < w.cols; ++i) acc += xr[i] * row[static_cast<size_t>(i)];
      y[static_cast<size_t>(r) * w.rows + o] = acc + (bias ? bias[o] : 0.0f);
    }
  }
}

void matmul_bf16(const float* x, int n, const Matrix& w, const float* bias, float* y) {
  const auto round = [](float v) { return bf16_to_f32(f32_to_bf16(v)); };
  std::vector<float> row(static_cast<size_t>(w.cols)), xr(row.size());
  for (int o = 0; o < w.rows; ++o) {
    ref::dequantize_row(w, o, row.data());
    for (float& v : row) v = round(v);
    for (int r = 0; r < n; ++r) {
      for (int i = 0; i < w.cols; ++i)
        xr[static_cast<size_t>(i)] = round(x[static_cast<size_t>(r) * w.cols + i]);
      float acc = 0.0f;
      for (int i = 0; i < w.cols; ++i)
        acc += xr[static_cast<size_t>(i)] * row[static_cast<size_t>(i)];
      y[static_cast<size_t>(r) * w.rows + o] = acc + (bias ? bias[o] : 0.0f);
    }
  }
}

void layer_norm(const float* x, int n, int d, const float* weight, const float* bias, float eps,
                float* y) {
  for (int r = 0; r < n; ++r) {
    const float* xr = x + static_cast<size_t>(r) * d;
    float* yr = y + static_cast<size_t>(r) * d;
    double mean = 0.0;
    for (int i = 0; i < d; ++i) mean += xr[i];
    mean /= d;
    double var = 0.0;
    for (int i = 0; i < d; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    var /= d;
    const float inv = static_cast<float>(1.0 / std::sqrt(var + eps));
    const float m = static_cast<float>(mean);
    for (int i = 0; i < d; ++i) yr[i] = (xr[i] - m) * inv * weight[i] + bias[i];
  }
}

void rms_norm(const float* x, int n, int d, const float* weight, float eps, float* y) {
  for (int r = 0; r < n; ++r) {
    const float* xr = x + static_cast<size_t>(r) * d;
    float* yr = y + static_cast<size_t>(r) * d;
    double ss = 0.0;
    for (int i = 0; i < d; ++i) ss += static_cast<double>(xr[i]) * xr[i];
    const float inv = static_cast<float>(1.0 / std::sqrt(ss / d + eps));
    for (int i = 0; i < d; ++i) yr[i] = xr[i] * inv * weight[i];
  }
}

void gelu_tanh_inplace(float* x, size_t n) {
  const float k = 0.7978845608028654f;  // sqrt(2/pi)
  for (size_t i = 0; i < n; ++i) {
    const float v = x[i];
    x[i] = 0.5f * v * (1.0f + std::tanh(k * (v + 0.044715f * v * v * v)));
  }
}

void silu_mul(const float* gate, const float* up, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void rope(float* x, int heads, int head_dim, int pos, const float* inv_freq) {
  const int half = head_dim / 2;
  for (int h = 0; h < heads; ++h) {
    float* v = x + static_cast<size_t>(h) * head_dim;
    for (int i = 0; i < half; ++i) {
      const float angle = static_cast<float>(pos) * inv_freq[i];  // float32, as HF computes it
      const float c = std::cos(angle), s = std::sin(angle);
      const float a = v[i], b = v[i + half];
      v[i] = a * c - b * s;
      v[i + half] = b * c + a * s;
    }
  }
}

namespace {

// Both twins in one loop. bf16: q·scale, K, the softmax numerators and V are rounded to bf16
// before their products, and the sum of the numerators divides the output at the end, as the
// fast path does; otherwise plain float32, scaled after the dot product.
void attention_impl(const AttentionShape& s, const float* q, const float* k, const float* v,
                    const unsigned char* key_mask, float* out, bool bf16) {
  const auto r = [bf16](float x) { return bf16 ? bf16_to_f32(f32_to_bf16(x)) : x; };
  const int group = s.heads / s.kv_heads;
  std::vector<float> scores(static_cast<size_t>(s.nk));
  for (int i = 0; i < s.nq; ++i) {
    const int last_key = s.causal ? s.q_pos0 + i : s.nk - 1;
    for (int h = 0; h < s.heads; ++h) {
      const float* qh = q + static_cast<size_t>(i) * s.q_stride + h * s.head_dim;
      const int kvh = h / group;
      float maxv = -std::numeric_limits<float>::infinity();
      for (int j = 0; j <= last_key; ++j) {
        if (key_mask && !key_mask[j]) {
          scores[j] = -std::numeric_limits<float>::infinity();
          continue;
        }
        const float* kj = k + kv_head_offset(s, kvh) + static_cast<size_t>(j) * s.kv_stride;
        float dot = 0.0f;
        if (bf16) {
          for (int d = 0; d < s.head_dim; ++d) dot += r(qh[d] * s.scale) * r(kj[d]);
          scores[j] = dot;
        } else {
          for (int d = 0; d < s.head_dim; ++d) dot += qh[d] * kj[d];
          scores[j] = dot * s.scale;
        }
        maxv = std::max(maxv, scores[j]);
      }
      float sum = 0.0f;
      for (int j = 0; j <= last_key; ++j) {
        scores[j] = std::isinf(scores[j]) && scores[j] < 0 ? 0.0f : std::exp(scores[j] - maxv);
        sum += scores[j];
      }
      float* oh = out + static_cast<size_t>(i) * s.out_stride + h * s.head_dim;
      for (int d = 0; d < s.head_dim; ++d) oh[d] = 0.0f;
      for (int j = 0; j <= last_key; ++j) {
        const float p = bf16 ? r(scores[j]) : scores[j] / sum;
        const float* vj = v + kv_head_offset(s, kvh) + static_cast<size_t>(j) * s.kv_stride;
        for (int d = 0; d < s.head_dim; ++d) oh[d] += p * r(vj[d]);
      }
      if (bf16) {
        for (int d = 0; d < s.head_dim; ++d) oh[d] /= sum;
      }
    }
  }
}

}  // namespace

void attention(const AttentionShape& s, const float* q, const float* k, const float* v,
               const unsigned char* key_mask, float* out) {
  attention_impl(s, q, k, v, key_mask, out, false);
}

void attention_bf16(const AttentionShape& s, const float* q, const float* k, const float* v,
                    float* out) {
  attention_impl(s, q, k, v, nullptr, out, true);
}

}  // namespace smolvlm::kernels::ref
