// The portable path: plain C++ shaped so the compiler vectorises the inner loops (independent
// partial sums), for any CPU. Faster paths replace it where the CPU allows.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/kernel_path.h"
#include "kernels/q4_panels.h"

namespace smolvlm::kernels {

namespace {

constexpr int kLanes = 8;

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

void gemm_float(const float* x, int n, const Matrix& w, int o_begin, int o_end, const float* bias,
                float* y, int ldy, Scratch& scratch) {
  constexpr int kRowBlock = 4;   // activation rows sharing each loaded weight row
  constexpr int kColBlock = 64;  // weight rows kept hot while the activation rows pass
  const int in = w.cols;
  float* widened = nullptr;
  for (int ob = o_begin; ob < o_end; ob += kColBlock) {
    const int oe = std::min(o_end, ob + kColBlock);
    // Row o of the block as float32: in place when the weights are aligned float32, else
    // widened into the caller's scratch.
    const bool in_place = w.type == DType::F32 &&
                          reinterpret_cast<uintptr_t>(w.data) % alignof(float) == 0 &&
                          w.row_stride() % alignof(float) == 0;
    if (!in_place) {
      widened = scratch.get<float>(0, static_cast<size_t>(oe - ob) * in);
      for (int o = ob; o < oe; ++o)
        ref::dequantize_row(w, o, widened + static_cast<size_t>(o - ob) * in);
    }
    auto weight_row = [&](int o) {
      return in_place ? reinterpret_cast<const float*>(w.row(o))
                      : widened + static_cast<size_t>(o - ob) * in;
    };
    for (int r0 = 0; r0 < n; r0 += kRowBlock) {
      const int rows = std::min(kRowBlock, n - r0);
      const float* xr[kRowBlock];
      for (int r = 0; r < rows; ++r) xr[r] = x + static_cast<size_t>(r0 + r) * in;
      for (int o = ob; o < oe; ++o) {
        const float* wr = weight_row(o);
        float res[kRowBlock];
        switch (rows) {
          case 4:
            dot_rows<4>(xr, wr, in, res);
            break;
          case 3:
            dot_rows<3>(xr, wr, in, res);
            break;
          case 2:
            dot_rows<2>(xr, wr, in, res);
            break;
          default:
            dot_rows<1>(xr, wr, in, res);
            break;
        }
        const float b = bias ? bias[o] : 0.0f;
        for (int r = 0; r < rows; ++r) y[static_cast<size_t>(r0 + r) * ldy + o] = res[r] + b;
      }
    }
  }
}

void gemm_q8(const ActBlockQ8* xq, int n, const Matrix& w, int o_begin, int o_end,
             const float* bias, float* y, int ldy, Scratch&) {
  const int blocks = w.cols / kQ8BlockSize;
  for (int o = o_begin; o < o_end; ++o) {
    const uint8_t* wr = w.row(o);
    for (int r = 0; r < n; ++r) {
      const ActBlockQ8* xb = xq + static_cast<size_t>(r) * blocks;
      float acc = 0.0f;
      for (int b = 0; b < blocks; ++b) {
        const uint8_t* blk = wr + static_cast<size_t>(b) * kQ8BlockBytes;
        uint16_t dw;
        std::memcpy(&dw, blk, 2);
        const int8_t* q = reinterpret_cast<const int8_t*>(blk + 2);
        int32_t sum = 0;
        for (int i = 0; i < kQ8BlockSize; ++i) sum += q[i] * xb[b].q[i];
        acc += static_cast<float>(sum) * (f16_to_f32(dw) * xb[b].d);
      }
      y[static_cast<size_t>(r) * ldy + o] = acc + (bias ? bias[o] : 0.0f);
    }
  }
}

void quantize_row_q8(const float* x, int cols, ActBlockQ8* out) {
  for (int b = 0; b < cols / kQ8BlockSize; ++b) {
    const float* xb = x + static_cast<size_t>(b) * kQ8BlockSize;
    float amax = 0.0f;
    for (int i = 0; i < kQ8BlockSize; ++i) amax = std::max(amax, std::fabs(xb[i]));
    const float d = amax / 127.0f;
    const float inv = d != 0.0f ? 1.0f / d : 0.0f;
    out[b].d = d;
    for (int i = 0; i < kQ8BlockSize; ++i)
      out[b].q[i] = static_cast<int8_t>(std::lround(xb[i] * inv));
  }
}

void axpy(float a, const float* x, float* y, int n) {
  for (int i = 0; i < n; ++i) y[i] += a * x[i];
}

float exp_shift_sum(float* x, int n, float shift) {
  float sum = 0.0f;
  for (int i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - shift);
    sum += x[i];
  }
  return sum;
}

float row_max(const float* x, int n) {
  float m = x[0];
  for (int i = 1; i < n; ++i) m = std::max(m, x[i]);
  return m;
}

void dot_rows(const float* q, int m, int hd, const float* k, size_t stride, int n, float* scores,
              int lds) {
  for (int r = 0; r < m; ++r) {
    const float* qr = q + static_cast<size_t>(r) * hd;
    for (int j = 0; j < n; ++j) {
      const float* kj = k + static_cast<size_t>(j) * stride;
      float s = 0.0f;
      for (int d = 0; d < hd; ++d) s += qr[d] * kj[d];
      scores[static_cast<size_t>(r) * lds + j] = s;
    }
  }
}

// Each row from its panel blocks: integer sums per block, scaled in block order.
void gemv_q4_panels(const ActBlockQ8* xq, const Matrix& w, int o_begin, int o_end,
                    const float* bias, float* y, Scratch&) {
  const int blocks = w.cols / kQ8BlockSize;
  for (int o = o_begin; o < o_end; ++o) {
    float acc = 0.0f;
    for (int b = 0; b < blocks; ++b) {
      uint8_t block[kQ4BlockBytes];
      q4_panel_block(w, o, b, block);
      int8_t q[kQ8BlockSize];
      const float d = ref::q4_block_to_int8(block, q);
      int32_t sum = 0;
      for (int i = 0; i < kQ8BlockSize; ++i) sum += static_cast<int32_t>(q[i]) * xq[b].q[i];
      acc += d * xq[b].d * static_cast<float>(sum);
    }
    y[o] = acc + (bias ? bias[o] : 0.0f);
  }
}

// Each row by the plain twin, the activation blocks split into scales and values once.
void gemv_kquant(const ActBlockQ8* xq, const Matrix& w, int o_begin, int o_end, const float* bias,
                 float* y, Scratch& scratch) {
  const int blocks = w.cols / kQ8BlockSize;
  float* xd = scratch.get<float>(0, static_cast<size_t>(blocks));
  int8_t* xv = scratch.get<int8_t>(1, static_cast<size_t>(w.cols));
  for (int b = 0; b < blocks; ++b) {
    xd[b] = xq[b].d;
    std::memcpy(xv + static_cast<size_t>(b) * kQ8BlockSize, xq[b].q, kQ8BlockSize);
  }
  for (int o = o_begin; o < o_end; ++o)
    y[o] = ref::kquant_row_dot(w, o, xd, xv) + (bias ? bias[o] : 0.0f);
}

// Every entry dispatch fills for other paths is here (see kernel_path.h); the capabilities it
// lacks (bf16, Q4_0 single-row, weighted rows, K-major products) stay null.
const KernelPath kGeneric = {.name = "generic",
                             .gemm_float = gemm_float,
                             .gemm_q8 = gemm_q8,
                             .quantize_row_q8 = quantize_row_q8,
                             .axpy = axpy,
                             .exp_shift_sum = exp_shift_sum,
                             .gelu_tanh = ref::gelu_tanh_inplace,
                             .silu_mul = ref::silu_mul,
                             .row_max = row_max,
                             .dot_rows = dot_rows,
                             .layer_norm = ref::layer_norm,
                             .rms_norm = ref::rms_norm,
                             .gemv_q4_panels = gemv_q4_panels,
                             // The twin reads a Q4_K matrix's panels where it has them
                             // (unpack_stored_block).
                             .gemv_q4k_panels = gemv_kquant,
                             .gemv_kquant = gemv_kquant};

}  // namespace

const KernelPath& generic_path() { return kGeneric; }

}  // namespace smolvlm::kernels
