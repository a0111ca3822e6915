// ARMv8 NEON inner kernels, shared by the neon, dotprod and i8mm paths. Each path's .cpp is
// compiled with its own -march (CMakeLists.txt) and everything here has internal linkage, so the
// linker can never hand the plain NEON path a copy that was compiled for a newer extension.
//
// Float GEMM, few activation rows (decoding): an R × C micro-tile keeps R·C accumulators and
// walks the shared K dimension, so each weight vector feeds R FMAs; F16 weights are widened with
// fcvtl (vcvt_f32_f16), BF16 with a 16-bit shift, both in registers.
// Float GEMM, many rows (prefill, vision): W is packed K-major into panels of 16 columns and a
// 6-row micro-tile multiplies each activation scalar into 4 panel vectors (fmla by element).
//
// Q8_0 GEMM (w8a8): per block of 32, a BlockDot policy turns the int8 products into int32x4
// partial sums (ARMv8.0: smull/smlal2 then sadalp; dotprod: two sdot), then one float FMA with
// the product of the two block scales. int16 pair sums cannot overflow: activations are in
// [-127, 127] and weights in [-128, 127], so a pair is at most 2 · 127 · 128 = 32512.
#pragma once

#if !defined(__aarch64__)
#error "gemm_neon.h is for AArch64 only"
#endif

#include <arm_neon.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <utility>

#include "kernels/gemm_driver.h"
#include "kernels/kernel_path.h"

namespace smolvlm::kernels::arm {
namespace {

constexpr int kLanes = 4;

inline float half_to_float(const uint8_t* p) {
  __fp16 h;
  std::memcpy(&h, p, sizeof(h));
  return static_cast<float>(h);
}

// Four weights from k on, widened to float32. Rows may sit at any byte address.
template <DType WT>
inline float32x4_t load_weights(const uint8_t* row, int k) {
  if constexpr (WT == DType::F32) {
    return vreinterpretq_f32_u8(vld1q_u8(row + 4 * static_cast<size_t>(k)));
  } else if constexpr (WT == DType::F16) {
    return vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8(row + 2 * static_cast<size_t>(k))));
  } else {
    const uint16x4_t b = vreinterpret_u16_u8(vld1_u8(row + 2 * static_cast<size_t>(k)));
    return vreinterpretq_f32_u32(vshll_n_u16(b, 16));
  }
}

template <DType WT>
inline float weight_scalar(const uint8_t* row, int k) {
  if constexpr (WT == DType::F32) {
    float v;
    std::memcpy(&v, row + 4 * static_cast<size_t>(k), 4);
    return v;
  } else if constexpr (WT == DType::F16) {
    return half_to_float(row + 2 * static_cast<size_t>(k));
  } else {
    uint16_t h;
    std::memcpy(&h, row + 2 * static_cast<size_t>(k), 2);
    return bf16_to_f32(h);
  }
}

// ---- Float GEMM, dot-product micro-tiles (few rows) -----------------------------------------

constexpr int kFloatRows = 4, kFloatCols = 4;  // 16 accumulators + 4 activations + 1 weight

// out[r·ldo + c] = x[r] · w[c] for an R × C micro-tile.
template <DType WT, int R, int C>
void micro_float(const float* const* x, const uint8_t* const* w, int K, float* out, int ldo) {
  float32x4_t acc[R][C];
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) acc[r][c] = vdupq_n_f32(0.0f);
  }
  int k = 0;
  for (; k + kLanes <= K; k += kLanes) {
    float32x4_t xv[R];
    for (int r = 0; r < R; ++r) xv[r] = vld1q_f32(x[r] + k);
    for (int c = 0; c < C; ++c) {
      const float32x4_t wv = load_weights<WT>(w[c], k);
      for (int r = 0; r < R; ++r) acc[r][c] = vfmaq_f32(acc[r][c], xv[r], wv);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) {
      float s = vaddvq_f32(acc[r][c]);
      for (int j = k; j < K; ++j) s += x[r][j] * weight_scalar<WT>(w[c], j);
      out[r * ldo + c] = s;
    }
  }
}

using MicroFloat = void (*)(const float* const*, const uint8_t* const*, int, float*, int);

// Every (rows ≤ R, cols ≤ C) micro-tile, for the edges of the matrix.
template <DType WT, int R, int... Cs>
constexpr std::array<MicroFloat, sizeof...(Cs)> float_row_table(std::integer_sequence<int, Cs...>) {
  return {&micro_float<WT, R, Cs + 1>...};
}
template <DType WT, int... Rs>
constexpr auto float_table(std::integer_sequence<int, Rs...>) {
  return std::array<std::array<MicroFloat, kFloatCols>, sizeof...(Rs)>{
      float_row_table<WT, Rs + 1>(std::make_integer_sequence<int, kFloatCols>{})...};
}

template <DType WT>
void gemm_float_tiles(const float* x, int n, const Matrix& w, int o_begin, int o_end,
                      const float* bias, float* y, int ldy) {
  constexpr int R = kFloatRows, C = kFloatCols;
  static constexpr auto table = float_table<WT>(std::make_integer_sequence<int, R>{});
  constexpr int kColBlock = 8 * C;  // weight rows kept in cache while every activation row passes
  gemm_tiles<R, C, kColBlock>(table, x, n, w.cols, w, o_begin, o_end, bias, y, ldy);
}

// ---- Float GEMM, packed panels (many rows) --------------------------------------------------

constexpr int kPanelRows = 6, kPanelVecs = 4;  // 24 accumulators + 4 panel vectors + 1 scalar
constexpr int kPanelCols = kPanelVecs * kLanes;

template <int R>
void micro_packed(const float* const* x, int k0, int kc, const float* panel, float* out, int ldo,
                  bool accumulate) {
  constexpr int V = kPanelVecs, P = kPanelCols;
  float32x4_t acc[R][V];
  for (int r = 0; r < R; ++r) {
    for (int v = 0; v < V; ++v) {
      acc[r][v] = accumulate ? vld1q_f32(out + r * ldo + v * kLanes) : vdupq_n_f32(0.0f);
    }
  }
  for (int k = 0; k < kc; ++k) {
    float32x4_t b[V];
    for (int v = 0; v < V; ++v) b[v] = vld1q_f32(panel + k * P + v * kLanes);
    for (int r = 0; r < R; ++r) {
      const float a = x[r][k0 + k];
      for (int v = 0; v < V; ++v) acc[r][v] = vfmaq_n_f32(acc[r][v], b[v], a);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int v = 0; v < V; ++v) vst1q_f32(out + r * ldo + v * kLanes, acc[r][v]);
  }
}

using MicroPacked = void (*)(const float* const*, int, int, const float*, float*, int, bool);
template <int... Rs>
constexpr std::array<MicroPacked, sizeof...(Rs)> packed_table(std::integer_sequence<int, Rs...>) {
  return {&micro_packed<Rs + 1>...};
}

// Panel [kc][P] = W[o0 .. o0+cols)[k0 .. k0+kc) transposed, missing columns zero.
template <DType WT>
void pack_panel(const Matrix& w, int o0, int cols, int k0, int kc, float* panel) {
  constexpr int P = kPanelCols;
  for (int c = 0; c < P; ++c) {
    if (c >= cols) {
      for (int k = 0; k < kc; ++k) panel[static_cast<size_t>(k) * P + c] = 0.0f;
      continue;
    }
    const uint8_t* row = w.row(o0 + c);
    int k = 0;
    for (; k + kLanes <= kc; k += kLanes) {
      const float32x4_t v = load_weights<WT>(row, k0 + k);
      float* dst = panel + static_cast<size_t>(k) * P + c;
      vst1q_lane_f32(dst, v, 0);
      vst1q_lane_f32(dst + P, v, 1);
      vst1q_lane_f32(dst + 2 * P, v, 2);
      vst1q_lane_f32(dst + 3 * P, v, 3);
    }
    for (; k < kc; ++k) panel[static_cast<size_t>(k) * P + c] = weight_scalar<WT>(row, k0 + k);
  }
}

template <DType WT>
void gemm_float_packed(const float* x, int n, const Matrix& w, int o_begin, int o_end,
                       const float* bias, float* y, int ldy, Scratch& scratch) {
  constexpr int R = kPanelRows, P = kPanelCols;
  constexpr int kKc = 256;  // K chunk: a panel of 256 × 16 floats is 16 KB, half an L1
  static constexpr auto table = packed_table(std::make_integer_sequence<int, R>{});
  const int K = w.cols;
  float* panel = scratch.get<float>(0, static_cast<size_t>(kKc) * P);
  float tile[R * P];
  for (int o0 = o_begin; o0 < o_end; o0 += P) {
    const int cols = std::min(P, o_end - o0);
    for (int k0 = 0; k0 < K; k0 += kKc) {
      const int kc = std::min(kKc, K - k0);
      pack_panel<WT>(w, o0, cols, k0, kc, panel);
      const bool first = k0 == 0;
      for (int r0 = 0; r0 < n; r0 += R) {
        const int rows = std::min(R, n - r0);
        const float* xr[R];
        for (int r = 0; r < rows; ++r) xr[r] = x + static_cast<size_t>(r0 + r) * K;
        float* yt = y + static_cast<size_t>(r0) * ldy + o0;
        if (cols == P) {  // straight into y
          table[rows - 1](xr, k0, kc, panel, yt, ldy, !first);
          continue;
        }
        // A ragged right edge goes through a tile.
        for (int r = 0; r < rows; ++r) {
          for (int c = 0; c < P; ++c)
            tile[r * P + c] = (!first && c < cols) ? yt[r * ldy + c] : 0.0f;
        }
        table[rows - 1](xr, k0, kc, panel, tile, P, true);
        for (int r = 0; r < rows; ++r) std::copy(tile + r * P, tile + r * P + cols, yt + r * ldy);
      }
    }
    if (bias) {
      for (int r = 0; r < n; ++r) {
        float* yr = y + static_cast<size_t>(r) * ldy + o0;
        for (int c = 0; c < cols; ++c) yr[c] += bias[o0 + c];
      }
    }
  }
}

inline void gemm_float(const float* x, int n, const Matrix& w, int o_begin, int o_end,
                       const float* bias, float* y, int ldy, Scratch& scratch) {
  // Few rows (decoding): dot-product tiles stream W once. Many rows: packed panels.
  if (n >= 2 * kPanelRows) {
    switch (w.type) {
      case DType::F32:
        return gemm_float_packed<DType::F32>(x, n, w, o_begin, o_end, bias, y, ldy, scratch);
      case DType::F16:
        return gemm_float_packed<DType::F16>(x, n, w, o_begin, o_end, bias, y, ldy, scratch);
      case DType::BF16:
        return gemm_float_packed<DType::BF16>(x, n, w, o_begin, o_end, bias, y, ldy, scratch);
      default:
        break;
    }
  }
  switch (w.type) {
    case DType::F32:
      return gemm_float_tiles<DType::F32>(x, n, w, o_begin, o_end, bias, y, ldy);
    case DType::F16:
      return gemm_float_tiles<DType::F16>(x, n, w, o_begin, o_end, bias, y, ldy);
    case DType::BF16:
      return gemm_float_tiles<DType::BF16>(x, n, w, o_begin, o_end, bias, y, ldy);
    default:
      return generic_path().gemm_float(x, n, w, o_begin, o_end, bias, y, ldy, scratch);
  }
}

// ---- Q8_0 × int8 activations, dot-product micro-tiles ----------------------------------------

// ARMv8.0: widening multiplies into int16 pair sums, pairwise-accumulated into int32.
struct BlockDotNeon {
  static constexpr int kRows = 2, kCols = 4;
  static int32x4_t block(int8x16_t x0, int8x16_t x1, int8x16_t w0, int8x16_t w1) {
    int16x8_t p0 = vmull_s8(vget_low_s8(x0), vget_low_s8(w0));
    p0 = vmlal_high_s8(p0, x0, w0);
    int16x8_t p1 = vmull_s8(vget_low_s8(x1), vget_low_s8(w1));
    p1 = vmlal_high_s8(p1, x1, w1);
    return vpadalq_s16(vpaddlq_s16(p0), p1);
  }
};

#if defined(__ARM_FEATURE_DOTPROD)
// ARMv8.2 dotprod: sdot sums four int8 products into each int32 lane.
struct BlockDotSdot {
  static constexpr int kRows = 4, kCols = 4;
  static int32x4_t block(int8x16_t x0, int8x16_t x1, int8x16_t w0, int8x16_t w1) {
    return vdotq_s32(vdotq_s32(vdupq_n_s32(0), x0, w0), x1, w1);
  }
};
#endif

// R activation rows × C weight rows, all blocks of the row.
template <class D, int R, int C>
void micro_q8(const ActBlockQ8* const* x, const uint8_t* const* w, int blocks, float* out,
              int ldo) {
  float32x4_t acc[R][C];
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) acc[r][c] = vdupq_n_f32(0.0f);
  }
  for (int b = 0; b < blocks; ++b) {
    int8x16_t x0[R], x1[R];
    float xd[R];
    for (int r = 0; r < R; ++r) {
      x0[r] = vld1q_s8(x[r][b].q);
      x1[r] = vld1q_s8(x[r][b].q + 16);
      xd[r] = x[r][b].d;
    }
    for (int c = 0; c < C; ++c) {
      const uint8_t* blk = w[c] + static_cast<size_t>(b) * kQ8BlockBytes;
      const int8x16_t w0 = vreinterpretq_s8_u8(vld1q_u8(blk + 2));
      const int8x16_t w1 = vreinterpretq_s8_u8(vld1q_u8(blk + 18));
      const float wd = half_to_float(blk);
      for (int r = 0; r < R; ++r) {
        const float32x4_t p = vcvtq_f32_s32(D::block(x0[r], x1[r], w0, w1));
        acc[r][c] = vfmaq_n_f32(acc[r][c], p, xd[r] * wd);
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) out[r * ldo + c] = vaddvq_f32(acc[r][c]);
  }
}

using MicroQ8 = void (*)(const ActBlockQ8* const*, const uint8_t* const*, int, float*, int);
template <class D, int R, int... Cs>
constexpr std::array<MicroQ8, sizeof...(Cs)> q8_row_table(std::integer_sequence<int, Cs...>) {
  return {&micro_q8<D, R, Cs + 1>...};
}
template <class D, int... Rs>
constexpr auto q8_table(std::integer_sequence<int, Rs...>) {
  return std::array<std::array<MicroQ8, D::kCols>, sizeof...(Rs)>{
      q8_row_table<D, Rs + 1>(std::make_integer_sequence<int, D::kCols>{})...};
}

template <class D>
void gemm_q8(const ActBlockQ8* xq, int n, const Matrix& w, int o_begin, int o_end,
             const float* bias, float* y, int ldy, Scratch& /*no temporaries*/) {
  constexpr int R = D::kRows, C = D::kCols;
  static constexpr auto table = q8_table<D>(std::make_integer_sequence<int, R>{});
  constexpr int kColBlock = 64;
  gemm_tiles<R, C, kColBlock>(table, xq, n, w.cols / kQ8BlockSize, w, o_begin, o_end, bias, y, ldy);
}

// ---- Q4_0 × int8 activations, one row (decoding) ---------------------------------------------

// The nibbles go straight into the block products, no widened copy of the row: a block's 16
// bytes hold elements 0–15 in their low nibbles and 16–31 in their high ones, each the weight
// + 8, so an AND and a shift give the two int8 halves that D::block multiplies as for Q8_0.
template <class D, int C>
void micro_gemv_q4(const ActBlockQ8* x, const uint8_t* const* w, int blocks, float* out) {
  float32x4_t acc[C];
  for (int c = 0; c < C; ++c) acc[c] = vdupq_n_f32(0.0f);
  const uint8x16_t low4 = vdupq_n_u8(0x0F);
  const int8x16_t eight = vdupq_n_s8(8);
  for (int b = 0; b < blocks; ++b) {
    const int8x16_t x0 = vld1q_s8(x[b].q), x1 = vld1q_s8(x[b].q + 16);
    const float xd = x[b].d;
    for (int c = 0; c < C; ++c) {
      const uint8_t* blk = w[c] + static_cast<size_t>(b) * kQ4BlockBytes;
      const uint8x16_t v = vld1q_u8(blk + 2);
      const int8x16_t w0 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, low4)), eight);
      const int8x16_t w1 = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), eight);
      const float32x4_t p = vcvtq_f32_s32(D::block(x0, x1, w0, w1));
      acc[c] = vfmaq_n_f32(acc[c], p, xd * half_to_float(blk));
    }
  }
  for (int c = 0; c < C; ++c) out[c] = vaddvq_f32(acc[c]);
}

// KernelPath::gemv_q4: rows [o_begin, o_end) of y = xq · Wᵀ for one activation row.
template <class D>
void gemv_q4(const ActBlockQ8* xq, const Matrix& w, int o_begin, int o_end, const float* bias,
             float* y, Scratch& /*no temporaries*/) {
  const int blocks = w.cols / kQ8BlockSize;
  gemv_rows<4>(w, o_begin, o_end, bias, y, [&]<int R>(const uint8_t* const* wr, float* out) {
    micro_gemv_q4<D, R>(xq, wr, blocks, out);
  });
}

// ---- Activation quantiser, axpy --------------------------------------------------------------

inline void quantize_row_q8(const float* x, int cols, ActBlockQ8* out) {
  for (int b = 0; b < cols / kQ8BlockSize; ++b) {
    const float* xb = x + static_cast<size_t>(b) * kQ8BlockSize;
    float32x4_t v[8];
    float32x4_t amax = vdupq_n_f32(0.0f);
    for (int i = 0; i < 8; ++i) {
      v[i] = vld1q_f32(xb + kLanes * i);
      amax = vmaxq_f32(amax, vabsq_f32(v[i]));
    }
    const float d = vmaxvq_f32(amax) / 127.0f;
    const float inv = d != 0.0f ? 1.0f / d : 0.0f;
    out[b].d = d;
    // fcvtas rounds half away from zero, as the reference's lround.
    int16x8_t q16[4];
    for (int i = 0; i < 4; ++i) {
      const int32x4_t lo = vcvtaq_s32_f32(vmulq_n_f32(v[2 * i], inv));
      const int32x4_t hi = vcvtaq_s32_f32(vmulq_n_f32(v[2 * i + 1], inv));
      q16[i] = vcombine_s16(vqmovn_s32(lo), vqmovn_s32(hi));
    }
    vst1q_s8(out[b].q, vcombine_s8(vqmovn_s16(q16[0]), vqmovn_s16(q16[1])));
    vst1q_s8(out[b].q + 16, vcombine_s8(vqmovn_s16(q16[2]), vqmovn_s16(q16[3])));
  }
}

inline void axpy(float a, const float* x, float* y, int n) {
  int i = 0;
  for (; i + kLanes <= n; i += kLanes)
    vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), a));
  for (; i < n; ++i) y[i] += a * x[i];
}

// Attention's weighted sum of V rows for one query: heads of up to 64 floats keep the sum in 16
// registers, two rows per step so consecutive FMAs into one accumulator do not wait.
inline void weighted_rows(const float* w, int n, const float* rows, size_t stride, int d,
                          float* out) {
  constexpr int kMax = 64 / kLanes;
  const int nv = d / kLanes;
  if (d % kLanes != 0 || nv > kMax) {
    std::fill(out, out + d, 0.0f);
    for (int j = 0; j < n; ++j) axpy(w[j], rows + j * stride, out, d);
    return;
  }
  float32x4_t a0[kMax], a1[kMax];
  for (int v = 0; v < nv; ++v) a0[v] = a1[v] = vdupq_n_f32(0.0f);
  int j = 0;
  for (; j + 2 <= n; j += 2) {
    const float* r0 = rows + j * stride;
    const float* r1 = r0 + stride;
    for (int v = 0; v < nv; ++v) {
      a0[v] = vfmaq_n_f32(a0[v], vld1q_f32(r0 + v * kLanes), w[j]);
      a1[v] = vfmaq_n_f32(a1[v], vld1q_f32(r1 + v * kLanes), w[j + 1]);
    }
  }
  if (j < n) {
    for (int v = 0; v < nv; ++v)
      a0[v] = vfmaq_n_f32(a0[v], vld1q_f32(rows + j * stride + v * kLanes), w[j]);
  }
  for (int v = 0; v < nv; ++v) vst1q_f32(out + v * kLanes, vaddq_f32(a0[v], a1[v]));
}

inline float row_max(const float* x, int n) {
  float m = x[0];
  int i = 0;
  if (n >= kLanes) {
    float32x4_t acc = vld1q_f32(x);
    for (i = kLanes; i + kLanes <= n; i += kLanes) acc = vmaxq_f32(acc, vld1q_f32(x + i));
    m = vmaxvq_f32(acc);
  }
  for (; i < n; ++i) m = std::max(m, x[i]);
  return m;
}

// ---- Element-wise steps (softmax numerators, GELU-tanh, SiLU) ------------------------------

// e^x per lane: x = n·ln2 + r, |r| ≤ ln2/2 (ln2 split in two parts so r stays exact), e^r by
// the degree-6 minimax polynomial of Cephes' expf, then 2^n built in the exponent bits. About
// 1 ulp. x is clamped to [-87, 88] so 2^n stays a normal float: tiny inputs give ~1e-38, not 0.
inline float32x4_t vexpq(float32x4_t x) {
  x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-87.0f)), vdupq_n_f32(88.0f));
  const float32x4_t n = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f));
  float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
  r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
  float32x4_t p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), vdupq_n_f32(1.9875691500e-4f), r);
  p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
  p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
  p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
  p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, vmulq_f32(r, r));
  const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
  return vmulq_f32(p, vreinterpretq_f32_s32(e));
}

// x[i] = e^(x[i] − shift); returns the sum.
inline float exp_shift_sum(float* x, int n, float shift) {
  float32x4_t acc = vdupq_n_f32(0.0f);
  const float32x4_t sh = vdupq_n_f32(shift);
  int i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const float32x4_t e = vexpq(vsubq_f32(vld1q_f32(x + i), sh));
    vst1q_f32(x + i, e);
    acc = vaddq_f32(acc, e);
  }
  float sum = vaddvq_f32(acc);
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - shift);
    sum += x[i];
  }
  return sum;
}

// 0.5·x·(1 + tanh(u)) written as x − x / (e^{2u} + 1), u = √(2/π)·(x + 0.044715·x³): no tanh,
// and no inf/NaN at either end (e^{2u} is clamped, so x/(e^{2u} + 1) goes to 0 or x).
inline void gelu_tanh(float* x, size_t n) {
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const float32x4_t v = vld1q_f32(x + i);
    const float32x4_t v3 = vmulq_f32(vmulq_f32(v, v), v);
    const float32x4_t u = vmulq_n_f32(vfmaq_n_f32(v, v3, 0.044715f), 0.7978845608028654f);
    const float32x4_t e = vexpq(vaddq_f32(u, u));
    vst1q_f32(x + i, vsubq_f32(v, vdivq_f32(v, vaddq_f32(e, vdupq_n_f32(1.0f)))));
  }
  if (i < n) ref::gelu_tanh_inplace(x + i, n - i);
}

// out = silu(gate) · up = gate · up / (1 + e^{−gate})
inline void silu_mul(const float* gate, const float* up, float* out, size_t n) {
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const float32x4_t g = vld1q_f32(gate + i);
    const float32x4_t e = vexpq(vnegq_f32(g));
    vst1q_f32(out + i, vdivq_f32(vmulq_f32(g, vld1q_f32(up + i)), vaddq_f32(e, vdupq_n_f32(1.0f))));
  }
  if (i < n) ref::silu_mul(gate + i, up + i, out + i, n - i);
}

// A path made of these kernels; only the integer products differ between neon, dotprod and
// i8mm.
constexpr KernelPath make_path(const char* name, decltype(KernelPath::gemm_q8) q8_gemm,
                               decltype(KernelPath::gemv_q4) q4_gemv) {
  // Left null: gemm_kn (attention transposes V for gemm_float) and the bf16 entries (the A76
  // has no bf16 arithmetic). Q4_0 with several rows is widened to Q8_0 blocks (kernels.cpp).
  return {.name = name,
          .gemm_float = gemm_float,
          .gemm_q8 = q8_gemm,
          .gemv_q4 = q4_gemv,
          .quantize_row_q8 = quantize_row_q8,
          .axpy = axpy,
          .exp_shift_sum = exp_shift_sum,
          .gelu_tanh = gelu_tanh,
          .silu_mul = silu_mul,
          .row_max = row_max,
          .weighted_rows = weighted_rows};
}

}  // namespace
}  // namespace smolvlm::kernels::arm
