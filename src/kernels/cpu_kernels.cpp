// Portable fast kernels: cache-blocked, written so the compiler vectorises the inner loops,
// spread over the global thread pool. Results equal kernels::ref up to float summation order.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/kernels.h"
#include "util/thread_pool.h"

namespace smolvlm::kernels {

namespace {

constexpr int kLanes = 8;  // independent partial sums: lets the compiler use SIMD lanes

// Dot products of R activation rows with one weight row.
template <int R>
inline void dot_rows(const float* const* xr, const float* w, int in, float* out) {
  float acc[R][kLanes] = {};
  int i = 0;
  for (; i + kLanes <= in; i += kLanes) {
    for (int r = 0; r < R; ++r) {
      for (int l = 0; l < kLanes; ++l) acc[r][l] += xr[r][i + l] * w[i + l];
    }
  }
  for (int r = 0; r < R; ++r) {
    float s = 0.0f;
    for (int l = 0; l < kLanes; ++l) s += acc[r][l];
    for (int j = i; j < in; ++j) s += xr[r][j] * w[j];
    out[r] = s;
  }
}

}  // namespace

void dequantize_row(const Matrix& w, int r, float* out) { ref::dequantize_row(w, r, out); }

void matmul(const float* x, int n, const Matrix& w, const float* bias, float* y) {
  // Threads split the output features, so each reads only its slice of W (decode is bound by
  // streaming W). Activation rows go in blocks of 4 to reuse each loaded weight row. Weights
  // that are not F32 are widened a block of rows at a time into a per-thread buffer.
  constexpr int kRowBlock = 4;
  constexpr int kColBlock = 64;  // weight rows kept hot while a block of x rows passes over them
  const int in = w.cols, out = w.rows;
  global_pool().parallel_for(static_cast<size_t>(out), [&](size_t o_begin, size_t o_end) {
    std::vector<float> widened;
    for (size_t ob = o_begin; ob < o_end; ob += kColBlock) {
      const size_t oe = std::min(o_end, ob + kColBlock);
      const float* wblock;
      if (w.type == DType::F32 && reinterpret_cast<uintptr_t>(w.data) % alignof(float) == 0) {
        wblock = reinterpret_cast<const float*>(w.row(static_cast<int>(ob)));
      } else {
        widened.resize((oe - ob) * static_cast<size_t>(in));
        for (size_t o = ob; o < oe; ++o) dequantize_row(w, static_cast<int>(o), widened.data() + (o - ob) * in);
        wblock = widened.data();
      }
      for (int r0 = 0; r0 < n; r0 += kRowBlock) {
        const int rows = std::min(kRowBlock, n - r0);
        const float* xr[kRowBlock];
        for (int r = 0; r < rows; ++r) xr[r] = x + static_cast<size_t>(r0 + r) * in;
        for (size_t o = ob; o < oe; ++o) {
          const float* wr = wblock + (o - ob) * static_cast<size_t>(in);
          float res[kRowBlock];
          switch (rows) {
            case 4: dot_rows<4>(xr, wr, in, res); break;
            case 3: dot_rows<3>(xr, wr, in, res); break;
            case 2: dot_rows<2>(xr, wr, in, res); break;
            default: dot_rows<1>(xr, wr, in, res); break;
          }
          const float b = bias ? bias[o] : 0.0f;
          for (int r = 0; r < rows; ++r) y[static_cast<size_t>(r0 + r) * out + o] = res[r] + b;
        }
      }
    }
  });
}

void layer_norm(const float* x, int n, int d, const float* weight, const float* bias, float eps,
                float* y) {
  global_pool().parallel_for(static_cast<size_t>(n), [&](size_t b, size_t e) {
    ref::layer_norm(x + b * d, static_cast<int>(e - b), d, weight, bias, eps, y + b * d);
  });
}

void rms_norm(const float* x, int n, int d, const float* weight, float eps, float* y) {
  ref::rms_norm(x, n, d, weight, eps, y);
}

void gelu_tanh_inplace(float* x, size_t n) {
  global_pool().parallel_for(n, [&](size_t b, size_t e) { ref::gelu_tanh_inplace(x + b, e - b); });
}

void silu_mul(const float* gate, const float* up, float* out, size_t n) {
  ref::silu_mul(gate, up, out, n);
}

void add_inplace(float* x, const float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] += y[i];
}

void rope(float* x, int heads, int head_dim, int pos, const float* inv_freq) {
  ref::rope(x, heads, head_dim, pos, inv_freq);
}

void attention(const AttentionShape& s, const float* q, const float* k, const float* v,
               const unsigned char* key_mask, float* out) {
  // Each (query row, head) pair is independent: spread them over the pool; every worker keeps
  // one row of scores (never the whole nq × nk matrix).
  const int group = s.heads / s.kv_heads;
  const size_t tasks = static_cast<size_t>(s.nq) * s.heads;
  global_pool().parallel_for(tasks, [&](size_t begin, size_t end) {
    std::vector<float> scores(static_cast<size_t>(s.nk));
    for (size_t t = begin; t < end; ++t) {
      const int i = static_cast<int>(t / s.heads), h = static_cast<int>(t % s.heads);
      const int last_key = s.causal ? std::min(s.q_pos0 + i, s.nk - 1) : s.nk - 1;
      const float* qh = q + static_cast<size_t>(i) * s.q_stride + h * s.head_dim;
      const int kvh = h / group;
      float maxv = -std::numeric_limits<float>::infinity();
      for (int j = 0; j <= last_key; ++j) {
        if (key_mask && !key_mask[j]) continue;
        const float* kj = k + static_cast<size_t>(j) * s.kv_stride + kvh * s.head_dim;
        float acc[kLanes] = {};
        int d = 0;
        for (; d + kLanes <= s.head_dim; d += kLanes) {
          for (int l = 0; l < kLanes; ++l) acc[l] += qh[d + l] * kj[d + l];
        }
        float dot = 0.0f;
        for (int l = 0; l < kLanes; ++l) dot += acc[l];
        for (; d < s.head_dim; ++d) dot += qh[d] * kj[d];
        scores[j] = dot * s.scale;
        maxv = std::max(maxv, scores[j]);
      }
      float sum = 0.0f;
      for (int j = 0; j <= last_key; ++j) {
        if (key_mask && !key_mask[j]) {
          scores[j] = 0.0f;
          continue;
        }
        scores[j] = std::exp(scores[j] - maxv);
        sum += scores[j];
      }
      const float inv = 1.0f / sum;
      float* oh = out + static_cast<size_t>(i) * s.out_stride + h * s.head_dim;
      std::fill(oh, oh + s.head_dim, 0.0f);
      for (int j = 0; j <= last_key; ++j) {
        const float p = scores[j] * inv;
        if (p == 0.0f) continue;
        const float* vj = v + static_cast<size_t>(j) * s.kv_stride + kvh * s.head_dim;
        for (int d = 0; d < s.head_dim; ++d) oh[d] += p * vj[d];
      }
    }
  });
}

}  // namespace smolvlm::kernels
