// x86 inner kernels, written once over a vector-width traits type (simd_x86.h).
//
// Float GEMM: a micro-tile of R activation rows × C weight rows keeps R·C vector accumulators
// and walks the shared K dimension, so each loaded weight vector feeds R FMAs and each
// activation vector C FMAs; no packing, F16/BF16 weights are widened in registers.
//
// Q8_0 GEMM (w8a8): per block of 32, |w| (unsigned) times x·sign(w) (signed) with
// maddubs → 16 int16 pair sums, madd with ones → 8 int32, then one float FMA with the
// product of the two block scales. int16 cannot overflow: |q| ≤ 127, so a pair is ≤ 32258.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <utility>

#include "kernels/gemm_driver.h"
#include "kernels/kernel_path.h"
#include "kernels/x86/simd_x86.h"

namespace smolvlm::kernels::x86 {
// Internal linkage: every path's translation unit keeps its own copy, compiled for its own -m
// flags; shared inline copies could let the linker hand an AVX2 path AVX-512 code (SIGILL).
namespace {

template <class S, DType WT>
inline typename S::F load_weights(const uint8_t* row, int k) {
  if constexpr (WT == DType::F32) {
    return S::load(reinterpret_cast<const float*>(row) + k);
  } else if constexpr (WT == DType::F16) {
    return S::load_f16(reinterpret_cast<const uint16_t*>(row) + k);
  } else {
    return S::load_bf16(reinterpret_cast<const uint16_t*>(row) + k);
  }
}

template <DType WT>
inline float weight_scalar(const uint8_t* row, int k) {
  if constexpr (WT == DType::F32) {
    float v;
    std::memcpy(&v, row + 4 * static_cast<size_t>(k), 4);
    return v;
  } else {
    uint16_t h;
    std::memcpy(&h, row + 2 * static_cast<size_t>(k), 2);
    return WT == DType::F16 ? f16_to_f32(h) : bf16_to_f32(h);
  }
}

// out[r·ldo + c] = x[r] · w[c] for an R × C micro-tile.
template <class S, DType WT, int R, int C>
void micro_float(const float* const* x, const uint8_t* const* w, int K, float* out, int ldo) {
  typename S::F acc[R][C];
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) acc[r][c] = S::zero();
  }
  int k = 0;
  for (; k + S::kLanes <= K; k += S::kLanes) {
    typename S::F xv[R];
    for (int r = 0; r < R; ++r) xv[r] = S::load(x[r] + k);
    for (int c = 0; c < C; ++c) {
      if constexpr (R == 1) {
        // 128 bytes a call: every 32 (F32) or 64 (16-bit) weights.
        constexpr int kEvery = (WT == DType::F32 ? 32 : 64) / S::kLanes;
        if ((k / S::kLanes) % kEvery == 0) prefetch_stream(w[c] + k * (WT == DType::F32 ? 4 : 2));
      }
      const typename S::F wv = load_weights<S, WT>(w[c], k);
      for (int r = 0; r < R; ++r) acc[r][c] = S::fma(xv[r], wv, acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) {
      float s = S::sum(acc[r][c]);
      for (int j = k; j < K; ++j) s += x[r][j] * weight_scalar<WT>(w[c], j);
      out[r * ldo + c] = s;
    }
  }
}

template <class S, DType WT>
using MicroFloat = void (*)(const float* const*, const uint8_t* const*, int, float*, int);

// Table of every (rows ≤ R, cols ≤ C) micro-tile, for the edges of the matrix.
template <class S, DType WT, int R, int... Cs>
constexpr std::array<MicroFloat<S, WT>, sizeof...(Cs)> row_table(
    std::integer_sequence<int, Cs...>) {
  return {&micro_float<S, WT, R, Cs + 1>...};
}
template <class S, DType WT, int... Rs>
constexpr auto float_table(std::integer_sequence<int, Rs...>) {
  return std::array<std::array<MicroFloat<S, WT>, S::kCols>, sizeof...(Rs)>{
      row_table<S, WT, Rs + 1>(std::make_integer_sequence<int, S::kCols>{})...};
}

template <class S, DType WT>
void gemm_float_typed(const float* x, int n, const Matrix& w, int o_begin, int o_end,
                      const float* bias, float* y, int ldy) {
  constexpr int R = S::kRows, C = S::kCols;
  static constexpr auto table = float_table<S, WT>(std::make_integer_sequence<int, R>{});
  constexpr int kColBlock = 8 * C;  // weight rows kept in L1/L2 while every activation row passes
  gemm_tiles<R, C, kColBlock>(table, x, n, w.cols, w, o_begin, o_end, bias, y, ldy);
}

// ---- Packed float GEMM, for many activation rows (prefill, vision) --------------------------
//
// The classic layout: a slice of W is packed K-major into a panel of P = kTileVecs·kLanes
// output columns ([kc][P], zero-padded), then a micro-tile of kTileRows activation rows
// broadcasts one x value per row and FMAs it against P/kLanes panel vectors. No horizontal
// sums; K is cut into chunks so a panel stays in L2 and the x rows in L1.

template <class S, int R>
void micro_packed(const float* const* x, int k0, int kc, const float* panel, size_t pstride,
                  float* out, int ldo, bool accumulate) {
  constexpr int V = S::kTileVecs;
  typename S::F acc[R][V];
  for (int r = 0; r < R; ++r) {
    for (int v = 0; v < V; ++v)
      acc[r][v] = accumulate ? S::load(out + r * ldo + v * S::kLanes) : S::zero();
  }
  for (int k = 0; k < kc; ++k) {
    typename S::F b[V];
    for (int v = 0; v < V; ++v) b[v] = S::load(panel + k * pstride + v * S::kLanes);
    for (int r = 0; r < R; ++r) {
      const typename S::F a = S::set1(x[r][k0 + k]);
      for (int v = 0; v < V; ++v) acc[r][v] = S::fma(a, b[v], acc[r][v]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int v = 0; v < V; ++v) S::store(out + r * ldo + v * S::kLanes, acc[r][v]);
  }
}

template <class S>
using MicroPacked = void (*)(const float* const*, int, int, const float*, size_t, float*, int,
                             bool);
template <class S, int... Rs>
constexpr std::array<MicroPacked<S>, sizeof...(Rs)> packed_table(
    std::integer_sequence<int, Rs...>) {
  return {&micro_packed<S, Rs + 1>...};
}

// The row loop every packed GEMM shares: one packed panel (P columns wide, `cols` of them real)
// against all n activation rows, R at a time. micro(rows, xr, out, ldo, accumulate) runs the
// micro-tile; full-width panels write straight into y (already offset to the panel's first
// column), a ragged right edge goes through `tile` so the micro-tile never writes past it.
// `first`: the panel's first K chunk (y is overwritten, not accumulated).
template <int R, int P, class T, class Micro>
void panel_rows(const T* x, size_t ldx, int n, int cols, bool first, float* y, int ldy, float* tile,
                Micro&& micro) {
  for (int r0 = 0; r0 < n; r0 += R) {
    const int rows = std::min(R, n - r0);
    const T* xr[R];
    for (int r = 0; r < rows; ++r) xr[r] = x + static_cast<size_t>(r0 + r) * ldx;
    float* yr0 = y + static_cast<size_t>(r0) * ldy;
    if (cols == P) {
      micro(rows, xr, yr0, ldy, !first);
      continue;
    }
    for (int r = 0; r < rows; ++r) {
      for (int c = 0; c < P; ++c)
        tile[r * P + c] = (!first && c < cols) ? yr0[static_cast<size_t>(r) * ldy + c] : 0.0f;
    }
    micro(rows, xr, tile, P, true);
    for (int r = 0; r < rows; ++r)
      std::copy(tile + r * P, tile + r * P + cols, yr0 + static_cast<size_t>(r) * ldy);
  }
}

template <class S, DType WT>
void gemm_packed_typed(const float* x, int n, const Matrix& w, int o_begin, int o_end,
                       const float* bias, float* y, int ldy, Scratch& scratch) {
  constexpr int R = S::kTileRows, P = S::kTileVecs * S::kLanes;
  constexpr int kKc = 256;  // K chunk: a panel of kKc × P floats is 48 KB (AVX-512)
  static constexpr auto table = packed_table<S>(std::make_integer_sequence<int, R>{});
  const int K = w.cols;
  float* panel = scratch.get<float>(0, static_cast<size_t>(kKc) * P);
  float* tile = scratch.get<float>(1, static_cast<size_t>(R) * P);
  for (int o0 = o_begin; o0 < o_end; o0 += P) {
    const int cols = std::min(P, o_end - o0);
    for (int k0 = 0; k0 < K; k0 += kKc) {
      const int kc = std::min(kKc, K - k0);
      // Pack W[o0 .. o0+cols)[k0 .. k0+kc) transposed; missing columns are zero.
      for (int c = 0; c < P; ++c) {
        if (c < cols) {
          const uint8_t* row = w.row(o0 + c);
          for (int k = 0; k < kc; ++k)
            panel[static_cast<size_t>(k) * P + c] = weight_scalar<WT>(row, k0 + k);
        } else {
          for (int k = 0; k < kc; ++k) panel[static_cast<size_t>(k) * P + c] = 0.0f;
        }
      }
      panel_rows<R, P>(x, static_cast<size_t>(K), n, cols, k0 == 0, y + o0, ldy, tile,
                       [&](int rows, const float* const* xr, float* out, int ldo, bool acc) {
                         table[rows - 1](xr, k0, kc, panel, P, out, ldo, acc);
                       });
    }
    if (bias) {
      for (int r = 0; r < n; ++r) {
        float* yr = y + static_cast<size_t>(r) * ldy + o0;
        for (int c = 0; c < cols; ++c) yr[c] += bias[o0 + c];
      }
    }
  }
}

// y[r·ldy + o] = Σ_k x[r·ldx + k] · b[k·ldb + o]: B already K-major (attention's P · V, where
// B is the V rows in place). Full-width column slices feed the micro-tile straight from B, with
// no packing; only a ragged right edge is copied into a zero-padded panel.
template <class S>
void gemm_kn(const float* x, int n, int ldx, int K, const float* b, size_t ldb, int N, float* y,
             int ldy, Scratch& scratch) {
  constexpr int R = S::kTileRows, P = S::kTileVecs * S::kLanes;
  constexpr int kKc = 256;
  static constexpr auto table = packed_table<S>(std::make_integer_sequence<int, R>{});
  float* panel = scratch.get<float>(0, static_cast<size_t>(kKc) * P);
  float* tile = scratch.get<float>(1, static_cast<size_t>(R) * P);
  for (int o0 = 0; o0 < N; o0 += P) {
    const int cols = std::min(P, N - o0);
    for (int k0 = 0; k0 < K; k0 += kKc) {
      const int kc = std::min(kKc, K - k0);
      const float* pan = b + static_cast<size_t>(k0) * ldb + o0;
      size_t pstride = ldb;
      if (cols < P) {
        for (int k = 0; k < kc; ++k) {
          float* dst = panel + static_cast<size_t>(k) * P;
          std::copy(pan + k * ldb, pan + k * ldb + cols, dst);
          std::fill(dst + cols, dst + P, 0.0f);
        }
        pan = panel;
        pstride = P;
      }
      panel_rows<R, P>(x, static_cast<size_t>(ldx), n, cols, k0 == 0, y + o0, ldy, tile,
                       [&](int rows, const float* const* xr, float* out, int ldo, bool acc) {
                         table[rows - 1](xr, k0, kc, pan, pstride, out, ldo, acc);
                       });
    }
  }
}

template <class S>
void gemm_float(const float* x, int n, const Matrix& w, int o_begin, int o_end, const float* bias,
                float* y, int ldy, Scratch& scratch) {
  // Few rows (decoding): dot-product tiles stream W once. Many rows: packed panels.
  if (n >= 2 * S::kTileRows) {
    switch (w.type) {
      case DType::F32:
        return gemm_packed_typed<S, DType::F32>(x, n, w, o_begin, o_end, bias, y, ldy, scratch);
      case DType::F16:
        return gemm_packed_typed<S, DType::F16>(x, n, w, o_begin, o_end, bias, y, ldy, scratch);
      case DType::BF16:
        return gemm_packed_typed<S, DType::BF16>(x, n, w, o_begin, o_end, bias, y, ldy, scratch);
      default:
        break;
    }
  }
  switch (w.type) {
    case DType::F32:
      return gemm_float_typed<S, DType::F32>(x, n, w, o_begin, o_end, bias, y, ldy);
    case DType::F16:
      return gemm_float_typed<S, DType::F16>(x, n, w, o_begin, o_end, bias, y, ldy);
    case DType::BF16:
      return gemm_float_typed<S, DType::BF16>(x, n, w, o_begin, o_end, bias, y, ldy);
    default:
      return generic_path().gemm_float(x, n, w, o_begin, o_end, bias, y, ldy, scratch);
  }
}

// ---- Q8_0 × int8 activations -------------------------------------------------------------

inline float half_to_float(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

inline __m256 hsum_block(__m256i wq_abs, __m256i xq_signed) {
  const __m256i pairs = _mm256_maddubs_epi16(wq_abs, xq_signed);
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}

// R activation rows × C weight rows, all blocks of the row.
template <int R, int C>
void micro_q8(const ActBlockQ8* const* x, const uint8_t* const* w, int blocks, float* out,
              int ldo) {
  __m256 acc[R][C];
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
  }
  for (int b = 0; b < blocks; ++b) {
    __m256i xq[R];
    float xd[R];
    for (int r = 0; r < R; ++r) {
      xq[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[r][b].q));
      xd[r] = x[r][b].d;
    }
    for (int c = 0; c < C; ++c) {
      const uint8_t* blk = w[c] + static_cast<size_t>(b) * kQ8BlockBytes;
      if constexpr (R == 1) {
        if (b % 2 == 0) prefetch_stream(blk);
      }
      const __m256i wq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
      const __m256i wabs = _mm256_sign_epi8(wq, wq);
      const float wd = half_to_float(blk);
      for (int r = 0; r < R; ++r) {
        const __m256 p = hsum_block(wabs, _mm256_sign_epi8(xq[r], wq));
        acc[r][c] = _mm256_fmadd_ps(p, _mm256_set1_ps(wd * xd[r]), acc[r][c]);
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) out[r * ldo + c] = Avx2::sum(acc[r][c]);
  }
}

using MicroQ8 = void (*)(const ActBlockQ8* const*, const uint8_t* const*, int, float*, int);
template <int R, int... Cs>
constexpr std::array<MicroQ8, sizeof...(Cs)> q8_row_table(std::integer_sequence<int, Cs...>) {
  return {&micro_q8<R, Cs + 1>...};
}
constexpr int kQ8Rows = 2, kQ8Cols = 4;  // 8 accumulators, 2 activations, temporaries: 16 ymm
template <int... Rs>
constexpr auto q8_table(std::integer_sequence<int, Rs...>) {
  return std::array<std::array<MicroQ8, kQ8Cols>, sizeof...(Rs)>{
      q8_row_table<Rs + 1>(std::make_integer_sequence<int, kQ8Cols>{})...};
}

inline void gemm_q8(const ActBlockQ8* xq, int n, const Matrix& w, int o_begin, int o_end,
                    const float* bias, float* y, int ldy, Scratch& /*no temporaries*/) {
  static constexpr auto table = q8_table(std::make_integer_sequence<int, kQ8Rows>{});
  constexpr int kColBlock = 64;
  gemm_tiles<kQ8Rows, kQ8Cols, kColBlock>(table, xq, n, w.cols / kQ8BlockSize, w, o_begin, o_end,
                                          bias, y, ldy);
}

// ---- Q4_0 × int8 activations, one row (decoding) -------------------------------------------
//
// A block's 16 bytes hold elements 0–15 in their low nibbles and 16–31 in their high ones, each
// the weight + 8: the high half shifted down beside the low one is already in activation order,
// and those unsigned 0–15 values go straight into vpmaddubsw against the signed activations
// (pairs ≤ 2·15·127, no overflow). That gives Σ(w + 8)·x; the 8·Σx each 4-value lane carries
// too depends only on x, so it is computed once per matmul and subtracted in int32, exactly.
struct Q4ActBlock {
  __m256i x;     // the block's 32 int8 activations
  __m256i corr;  // 8 · Σx over each 4-value int32 lane
  float d;
};

inline void prepare_q4_avx2(const ActBlockQ8* x, int blocks, Q4ActBlock* out) {
  const __m256i eight = _mm256_set1_epi8(8), ones = _mm256_set1_epi16(1);
  for (int b = 0; b < blocks; ++b) {
    out[b].x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].q));
    out[b].corr = _mm256_madd_epi16(_mm256_maddubs_epi16(eight, out[b].x), ones);
    out[b].d = x[b].d;
  }
}

template <int C>
void micro_gemv_q4_avx2(const Q4ActBlock* x, const uint8_t* const* w, int blocks, float* out) {
  __m256 acc[C];
  for (int c = 0; c < C; ++c) acc[c] = _mm256_setzero_ps();
  const __m256i low4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
  for (int b = 0; b < blocks; ++b) {
    const Q4ActBlock& a = x[b];
    for (int c = 0; c < C; ++c) {
      const uint8_t* blk = w[c] + static_cast<size_t>(b) * kQ4BlockBytes;
      if (b % 4 == 0) prefetch_stream(blk);
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
      const __m256i u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), low4);
      const __m256i s =
          _mm256_sub_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(u, a.x), ones), a.corr);
      acc[c] =
          _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(half_to_float(blk) * a.d), acc[c]);
    }
  }
  for (int c = 0; c < C; ++c) out[c] = Avx2::sum(acc[c]);
}

// KernelPath::gemv_q4 for the AVX2 paths: rows [o_begin, o_end) of y = xq · Wᵀ, one row.
inline void gemv_q4_avx2(const ActBlockQ8* xq, const Matrix& w, int o_begin, int o_end,
                         const float* bias, float* y, Scratch& scratch) {
  const int blocks = w.cols / kQ8BlockSize;
  Q4ActBlock* prepared = scratch.get<Q4ActBlock>(0, static_cast<size_t>(blocks));
  prepare_q4_avx2(xq, blocks, prepared);
  gemv_rows<4>(w, o_begin, o_end, bias, y, [&]<int R>(const uint8_t* const* wr, float* out) {
    micro_gemv_q4_avx2<R>(prepared, wr, blocks, out);
  });
}

inline void quantize_row_q8(const float* x, int cols, ActBlockQ8* out) {
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  for (int b = 0; b < cols / kQ8BlockSize; ++b) {
    const float* xb = x + static_cast<size_t>(b) * kQ8BlockSize;
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    for (int i = 0; i < 4; ++i) {
      v[i] = _mm256_loadu_ps(xb + 8 * i);
      amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign_mask, v[i]));
    }
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float d = _mm_cvtss_f32(m) / 127.0f;
    const float inv = d != 0.0f ? 1.0f / d : 0.0f;
    out[b].d = d;
    // Round half away from zero, as the reference's lround: add ±0.5 then truncate.
    __m256i q32[4];
    for (int i = 0; i < 4; ++i) {
      const __m256 s = _mm256_mul_ps(v[i], _mm256_set1_ps(inv));
      const __m256 half = _mm256_or_ps(_mm256_and_ps(s, sign_mask), _mm256_set1_ps(0.5f));
      q32[i] = _mm256_cvttps_epi32(_mm256_add_ps(s, half));
    }
    const __m256i q16a = _mm256_packs_epi32(q32[0], q32[1]);
    const __m256i q16b = _mm256_packs_epi32(q32[2], q32[3]);
    __m256i q8 = _mm256_packs_epi16(q16a, q16b);
    // packs works per 128-bit lane: restore element order.
    q8 = _mm256_permutevar8x32_epi32(q8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[b].q), q8);
  }
}

template <class S>
void axpy(float a, const float* x, float* y, int n) {
  const typename S::F av = S::set1(a);
  int i = 0;
  for (; i + S::kLanes <= n; i += S::kLanes)
    S::store(y + i, S::fma(av, S::load(x + i), S::load(y + i)));
  for (; i < n; ++i) y[i] += a * x[i];
}

// Rows of up to 128 floats (all SmolVLM2 heads are 64) keep the sum in registers; the row
// loop is unrolled by two so consecutive FMAs into one accumulator do not wait on each other.
template <class S>
void weighted_rows(const float* w, int n, const float* rows, size_t stride, int d, float* out) {
  constexpr int kMax = 128 / S::kLanes;
  const int nv = d / S::kLanes;
  if (d % S::kLanes != 0 || nv > kMax) {
    std::fill(out, out + d, 0.0f);
    for (int j = 0; j < n; ++j) axpy<S>(w[j], rows + j * stride, out, d);
    return;
  }
  typename S::F a0[kMax], a1[kMax];
  for (int v = 0; v < nv; ++v) a0[v] = a1[v] = S::zero();
  int j = 0;
  for (; j + 2 <= n; j += 2) {
    const typename S::F w0 = S::set1(w[j]), w1 = S::set1(w[j + 1]);
    const float* r0 = rows + j * stride;
    const float* r1 = r0 + stride;
    for (int v = 0; v < nv; ++v) {
      a0[v] = S::fma(w0, S::load(r0 + v * S::kLanes), a0[v]);
      a1[v] = S::fma(w1, S::load(r1 + v * S::kLanes), a1[v]);
    }
  }
  if (j < n) {
    const typename S::F w0 = S::set1(w[j]);
    for (int v = 0; v < nv; ++v)
      a0[v] = S::fma(w0, S::load(rows + j * stride + v * S::kLanes), a0[v]);
  }
  for (int v = 0; v < nv; ++v) S::store(out + v * S::kLanes, S::add(a0[v], a1[v]));
}

// Decode attention's q·k: per query row, kLanes keys at a time, each key's head_dim products
// summed in one vector (the row's q stays in registers), then the kLanes vectors reduced at once
// (S::transpose_sums). Head dims that are not a multiple of the lanes (or over 128) take the
// plain loop.
template <class S>
void dot_rows(const float* q, int m, int hd, const float* k, size_t stride, int n, float* scores,
              int lds) {
  constexpr int L = S::kLanes, kMaxVecs = 128 / L;
  const int nv = hd / L;
  if (hd % L != 0 || nv > kMaxVecs) {
    generic_path().dot_rows(q, m, hd, k, stride, n, scores, lds);
    return;
  }
  for (int r = 0; r < m; ++r) {
    typename S::F qv[kMaxVecs];
    for (int v = 0; v < nv; ++v) qv[v] = S::load(q + static_cast<size_t>(r) * hd + v * L);
    float* out = scores + static_cast<size_t>(r) * lds;
    auto key_sum = [&](int j) {
      const float* kj = k + static_cast<size_t>(j) * stride;
      typename S::F acc = S::mul(qv[0], S::load(kj));
      for (int v = 1; v < nv; ++v) acc = S::fma(qv[v], S::load(kj + v * L), acc);
      return acc;
    };
    int j = 0;
    for (; j + L <= n; j += L) {
      typename S::F acc[L];
      for (int i = 0; i < L; ++i) acc[i] = key_sum(j + i);
      S::store(out + j, S::transpose_sums(acc));
    }
    for (; j < n; ++j) out[j] = S::sum(key_sum(j));
  }
}

// ---- Element-wise steps ------------------------------------------------------------------

// Norms in float vectors with two accumulators (the twin sums in double: a row of 768 values
// differs from it by ~1e-7 relative). Widths that are not a multiple of the lanes take the twin.
// Σ (x − shift), or Σ (x − shift)² with kSquare, over one row of d values.
template <class S, bool kSquare>
float lane_sum2(const float* x, int d, typename S::F shift) {
  auto step = [&](typename S::F acc, const float* p) {
    const typename S::F v = S::sub(S::load(p), shift);
    return kSquare ? S::fma(v, v, acc) : S::add(acc, v);
  };
  typename S::F a0 = S::zero(), a1 = S::zero();
  int i = 0;
  for (; i + 2 * S::kLanes <= d; i += 2 * S::kLanes) {
    a0 = step(a0, x + i);
    a1 = step(a1, x + i + S::kLanes);
  }
  for (; i < d; i += S::kLanes) a0 = step(a0, x + i);
  return S::sum(S::add(a0, a1));
}

template <class S>
void layer_norm(const float* x, int n, int d, const float* weight, const float* bias, float eps,
                float* y) {
  if (d % S::kLanes != 0) return ref::layer_norm(x, n, d, weight, bias, eps, y);
  for (int r = 0; r < n; ++r) {
    const float* xr = x + static_cast<size_t>(r) * d;
    float* yr = y + static_cast<size_t>(r) * d;
    const float mean = lane_sum2<S, false>(xr, d, S::zero()) / static_cast<float>(d);
    const typename S::F m = S::set1(mean);
    const float var = lane_sum2<S, true>(xr, d, m) / static_cast<float>(d);
    const typename S::F inv = S::set1(1.0f / std::sqrt(var + eps));
    for (int i = 0; i < d; i += S::kLanes) {
      const typename S::F t = S::mul(S::mul(S::sub(S::load(xr + i), m), inv), S::load(weight + i));
      S::store(yr + i, S::add(t, S::load(bias + i)));
    }
  }
}

template <class S>
void rms_norm(const float* x, int n, int d, const float* weight, float eps, float* y) {
  if (d % S::kLanes != 0) return ref::rms_norm(x, n, d, weight, eps, y);
  for (int r = 0; r < n; ++r) {
    const float* xr = x + static_cast<size_t>(r) * d;
    float* yr = y + static_cast<size_t>(r) * d;
    const float ss = lane_sum2<S, true>(xr, d, S::zero());
    const typename S::F inv = S::set1(1.0f / std::sqrt(ss / static_cast<float>(d) + eps));
    for (int i = 0; i < d; i += S::kLanes)
      S::store(yr + i, S::mul(S::mul(S::load(xr + i), inv), S::load(weight + i)));
  }
}

template <class S>
float row_max(const float* x, int n) {
  float m = x[0];
  int i = 0;
  if (n >= S::kLanes) {
    typename S::F acc = S::load(x);
    for (i = S::kLanes; i + S::kLanes <= n; i += S::kLanes) acc = S::max(acc, S::load(x + i));
    alignas(64) float lanes[S::kLanes];
    S::store(lanes, acc);
    for (float v : lanes) m = std::max(m, v);
  }
  for (; i < n; ++i) m = std::max(m, x[i]);
  return m;
}

template <class S>
float exp_shift_sum(float* x, int n, float shift) {
  typename S::F acc = S::zero();
  const typename S::F sh = S::set1(shift);
  int i = 0;
  for (; i + S::kLanes <= n; i += S::kLanes) {
    const typename S::F e = vexp<S>(S::sub(S::load(x + i), sh));
    S::store(x + i, e);
    acc = S::add(acc, e);
  }
  float sum = S::sum(acc);
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - shift);
    sum += x[i];
  }
  return sum;
}

// 0.5·x·(1 + tanh(u)) = x · e^{2u} / (e^{2u} + 1) = x − x / (e^{2u} + 1), u = √(2/π)(x +
// 0.044715x³).
template <class S>
void gelu_tanh(float* x, size_t n) {
  const typename S::F k = S::set1(0.7978845608028654f), c = S::set1(0.044715f), one = S::set1(1.0f);
  size_t i = 0;
  for (; i + S::kLanes <= n; i += S::kLanes) {
    const typename S::F v = S::load(x + i);
    const typename S::F u = S::mul(k, S::fma(S::mul(c, v), S::mul(v, v), v));
    const typename S::F e = vexp<S>(S::add(u, u));
    S::store(x + i, S::sub(v, S::div(v, S::add(e, one))));
  }
  if (i < n) ref::gelu_tanh_inplace(x + i, n - i);
}

// silu(g)·u = g·u / (1 + e^{−g})
template <class S>
void silu_mul(const float* gate, const float* up, float* out, size_t n) {
  const typename S::F one = S::set1(1.0f);
  size_t i = 0;
  for (; i + S::kLanes <= n; i += S::kLanes) {
    const typename S::F g = S::load(gate + i);
    const typename S::F e = vexp<S>(S::sub(S::zero(), g));
    S::store(out + i, S::div(S::mul(g, S::load(up + i)), S::add(one, e)));
  }
  if (i < n) ref::silu_mul(gate + i, up + i, out + i, n - i);
}

}  // namespace
}  // namespace smolvlm::kernels::x86
