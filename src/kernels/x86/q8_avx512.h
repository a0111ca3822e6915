// Q8_0 × int8-activation GEMM (w8a8) with 512-bit registers: two 32-value blocks per register.
//
// With AVX-512 VNNI, vpdpbusd multiplies unsigned by signed bytes, so activations are offset to
// unsigned (x + 128) and the accumulator starts at −128·Σw (per 4-byte lane), which leaves
// Σ x·w exactly. Without VNNI (AVX-512BW, e.g. Skylake-SP) it is |w| × (x·sign w) with
// vpmaddubsw (pairs ≤ 2·127·127, no saturation) and vpmaddwd. Either way each block's int32 sum is
// scaled by d_w·d_x in float.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>
#include <vector>

#include "kernels/kernel_path.h"
#include "kernels/x86/gemm_x86.h"
#include "kernels/x86/simd_x86.h"

namespace smolvlm::kernels::x86 {
// Internal linkage: every path's translation unit keeps its own copy, compiled for its own -m
// flags; shared inline copies could let the linker hand an AVX2 path AVX-512 code (SIGILL).
namespace {

// Two consecutive 32-byte blocks (or one, zero-padded) as one register.
inline __m512i load_two(const int8_t* a, const int8_t* b) {
  const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a));
  if (!b) return _mm512_zextsi256_si512(lo);
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo),
                            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b)), 1);
}

inline __m512 two_scales(float lo, float hi) {
  return _mm512_insertf32x8(_mm512_set1_ps(lo), _mm256_set1_ps(hi), 1);
}

inline float f16_scale(const uint8_t* blk) {
  uint16_t h;
  std::memcpy(&h, blk, 2);
  return _cvtsh_ss(h);
}

template <bool kVnni, int R, int C>
void micro_q8_512(const ActBlockQ8* const* x, const uint8_t* const* w, int blocks, float* out,
                  int ldo) {
  __m512 acc[R][C];
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
  }
  const __m512i offset = _mm512_set1_epi8(static_cast<char>(0x80));
  for (int b = 0; b < blocks; b += 2) {
    const bool pair = b + 1 < blocks;
    __m512i wq[C], wt[C];  // weights, and the VNNI correction or |w|
    __m512 wd[C];
    for (int c = 0; c < C; ++c) {
      const uint8_t* b0 = w[c] + static_cast<size_t>(b) * kQ8BlockBytes;
      const uint8_t* b1 = pair ? b0 + kQ8BlockBytes : nullptr;
      if constexpr (R == 1) prefetch_stream(b0);
      wq[c] = load_two(reinterpret_cast<const int8_t*>(b0 + 2),
                       b1 ? reinterpret_cast<const int8_t*>(b1 + 2) : nullptr);
      wd[c] = two_scales(f16_scale(b0), pair ? f16_scale(b1) : 0.0f);
      if constexpr (kVnni) {
        wt[c] = _mm512_sub_epi32(_mm512_setzero_si512(),
                                 _mm512_dpbusd_epi32(_mm512_setzero_si512(), offset, wq[c]));
      } else {
        wt[c] = _mm512_abs_epi8(wq[c]);
      }
    }
    for (int r = 0; r < R; ++r) {
      const __m512i xq = load_two(x[r][b].q, pair ? x[r][b + 1].q : nullptr);
      const __m512 xd = two_scales(x[r][b].d, pair ? x[r][b + 1].d : 0.0f);
      for (int c = 0; c < C; ++c) {
        __m512i sum;
        if constexpr (kVnni) {
          sum = _mm512_dpbusd_epi32(wt[c], _mm512_xor_si512(xq, offset), wq[c]);
        } else {
          const __mmask64 neg = _mm512_movepi8_mask(wq[c]);
          const __m512i xs = _mm512_mask_sub_epi8(xq, neg, _mm512_setzero_si512(), xq);
          sum = _mm512_madd_epi16(_mm512_maddubs_epi16(wt[c], xs), _mm512_set1_epi16(1));
        }
        acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(wd[c], xd), acc[r][c]);
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) out[r * ldo + c] = _mm512_reduce_add_ps(acc[r][c]);
  }
}

template <bool kVnni>
using MicroQ8x512 = void (*)(const ActBlockQ8* const*, const uint8_t* const*, int, float*, int);
constexpr int kQ8x512Rows = 4, kQ8x512Cols = 4;
template <bool kVnni, int R, int... Cs>
constexpr std::array<MicroQ8x512<kVnni>, sizeof...(Cs)> q8x512_row(
    std::integer_sequence<int, Cs...>) {
  return {&micro_q8_512<kVnni, R, Cs + 1>...};
}
template <bool kVnni, int... Rs>
constexpr auto q8x512_table(std::integer_sequence<int, Rs...>) {
  return std::array<std::array<MicroQ8x512<kVnni>, kQ8x512Cols>, sizeof...(Rs)>{
      q8x512_row<kVnni, Rs + 1>(std::make_integer_sequence<int, kQ8x512Cols>{})...};
}

// One pair of activation blocks prepared for the single-row (decode) GEMV: with the weights
// flipped to unsigned (w ⊕ 0x80 = w + 128) and the activations as the signed operand,
// vpdpbusd gives Σ(w + 128)·x; starting the accumulator at −128·Σx (per 4-byte lane) leaves
// Σ w·x. That correction depends only on x, so it is computed once per matmul, not per weight.
struct GemvPair {
  __m512i xq;     // two blocks of int8 activations
  __m512i corr;   // −128 · Σx over each 4-byte lane (Q8_0: weights offset by 128)
  __m512i corr4;  // −8 · Σx over each 4-byte lane (Q4_0: nibbles are the weight + 8)
  __m512 xd;      // the two activation scales, 8 lanes each
};

inline void prepare_gemv(const ActBlockQ8* x, int blocks, GemvPair* out) {
  const __m512i zero = _mm512_setzero_si512();
  for (int b = 0; b < blocks; b += 2) {
    const bool pair = b + 1 < blocks;
    GemvPair& p = out[b / 2];
    p.xq = load_two(x[b].q, pair ? x[b + 1].q : nullptr);
    p.corr = _mm512_sub_epi32(
        zero, _mm512_dpbusd_epi32(zero, _mm512_set1_epi8(static_cast<char>(0x80)), p.xq));
    p.corr4 = _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, _mm512_set1_epi8(8), p.xq));
    p.xd = two_scales(x[b].d, pair ? x[b + 1].d : 0.0f);
  }
}

// Both f16 block scales of a pair, widened in registers: lanes 0–7 the first, 8–15 the second.
inline __m512 weight_scales_pair(const uint8_t* b0, bool pair, size_t block_bytes) {
  uint16_t lo, hi = 0;
  std::memcpy(&lo, b0, 2);
  if (pair) std::memcpy(&hi, b0 + block_bytes, 2);
  const __m256i h =
      _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16(static_cast<short>(lo))),
                              _mm_set1_epi16(static_cast<short>(hi)), 1);
  return _mm512_cvtph_ps(h);
}

// A pair of Q8_0 blocks as unsigned bytes (w ⊕ 0x80 = w + 128), in activation order.
inline __m512i q8_pair_unsigned(const uint8_t* b0, bool pair) {
  return _mm512_xor_si512(
      load_two(reinterpret_cast<const int8_t*>(b0 + 2),
               pair ? reinterpret_cast<const int8_t*>(b0 + kQ8BlockBytes + 2) : nullptr),
      _mm512_set1_epi8(static_cast<char>(0x80)));
}

// A pair of Q4_0 blocks as unsigned bytes 0..15 (the weight + 8), in activation order: a
// block's byte j holds value j in its low nibble and value j + 16 in its high one, so the four
// 128-bit lanes are (low, high) nibbles of the first block, then of the second.
inline __m512i q4_pair_unsigned(const uint8_t* b0, bool pair) {
  const __m128i v0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b0 + 2));
  const __m128i v1 = pair
                         ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(b0 + kQ4BlockBytes + 2))
                         : _mm_setzero_si128();
  __m512i t = _mm512_inserti32x4(_mm512_castsi128_si512(v0), v0, 1);
  t = _mm512_inserti32x4(_mm512_inserti32x4(t, v1, 2), v1, 3);
  // 64-bit shifts by 4 in lanes 1 and 3 bring each byte's high nibble down; the mask drops what
  // crossed over from the next byte.
  const __m512i shifts = _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0);
  return _mm512_and_si512(_mm512_srlv_epi64(t, shifts), _mm512_set1_epi8(0x0F));
}

// C weight rows against one prepared activation row: one vpdpbusd per 64 weights. kQ4: the
// rows are Q4_0 (18-byte blocks), else Q8_0 (34-byte blocks).
template <int C, bool kQ4>
void micro_gemv_vnni(const GemvPair* x, const uint8_t* const* w, int blocks, float* out) {
  constexpr size_t kBlockBytes = kQ4 ? kQ4BlockBytes : kQ8BlockBytes;
  __m512 acc[C];
  for (int c = 0; c < C; ++c) acc[c] = _mm512_setzero_ps();
  for (int b = 0; b < blocks; b += 2) {
    const GemvPair& xp = x[b / 2];
    const bool pair = b + 1 < blocks;
    for (int c = 0; c < C; ++c) {
      const uint8_t* b0 = w[c] + static_cast<size_t>(b) * kBlockBytes;
      prefetch_stream(b0);
      const __m512i sum = kQ4 ? _mm512_dpbusd_epi32(xp.corr4, q4_pair_unsigned(b0, pair), xp.xq)
                              : _mm512_dpbusd_epi32(xp.corr, q8_pair_unsigned(b0, pair), xp.xq);
      acc[c] =
          _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum),
                          _mm512_mul_ps(weight_scales_pair(b0, pair, kBlockBytes), xp.xd), acc[c]);
    }
  }
  for (int c = 0; c < C; ++c) out[c] = _mm512_reduce_add_ps(acc[c]);
}

// The single-row (decode) product for Q8_0 or Q4_0 weights, rows [o_begin, o_end).
template <bool kQ4>
void gemv_vnni(const ActBlockQ8* xq, const Matrix& w, int o_begin, int o_end, const float* bias,
               float* y) {
  const int blocks = w.cols / kQ8BlockSize;
  thread_local std::vector<GemvPair> prepared;
  prepared.resize(static_cast<size_t>(blocks + 1) / 2);
  prepare_gemv(xq, blocks, prepared.data());
  constexpr int C = 8;
  int o = o_begin;
  for (; o + C <= o_end; o += C) {
    const uint8_t* wr[C];
    for (int c = 0; c < C; ++c) wr[c] = w.row(o + c);
    micro_gemv_vnni<C, kQ4>(prepared.data(), wr, blocks, y + o);
  }
  for (; o < o_end; ++o) {
    const uint8_t* wr[1] = {w.row(o)};
    micro_gemv_vnni<1, kQ4>(prepared.data(), wr, blocks, y + o);
  }
  if (bias) {
    for (int i = o_begin; i < o_end; ++i) y[i] += bias[i];
  }
}

// KernelPath::gemv_q4 for the VNNI paths.
inline void gemv_q4_vnni(const ActBlockQ8* xq, const Matrix& w, int o_begin, int o_end,
                         const float* bias, float* y) {
  gemv_vnni<true>(xq, w, o_begin, o_end, bias, y);
}

template <bool kVnni>
void gemm_q8_512(const ActBlockQ8* xq, int n, const Matrix& w, int o_begin, int o_end,
                 const float* bias, float* y, int ldy) {
  if constexpr (kVnni) {
    if (n == 1) {
      gemv_vnni<false>(xq, w, o_begin, o_end, bias, y);
      return;
    }
  }
  static constexpr auto table = q8x512_table<kVnni>(std::make_integer_sequence<int, kQ8x512Rows>{});
  constexpr int R = kQ8x512Rows, C = kQ8x512Cols;
  const int blocks = w.cols / kQ8BlockSize;
  constexpr int kColBlock = 64;  // weight rows kept in L2 while all activation rows pass
  float tile[R * C];
  for (int ob = o_begin; ob < o_end; ob += kColBlock) {
    const int oe = std::min(o_end, ob + kColBlock);
    for (int r0 = 0; r0 < n; r0 += R) {
      const int rows = std::min(R, n - r0);
      const ActBlockQ8* xr[R];
      for (int r = 0; r < rows; ++r) xr[r] = xq + static_cast<size_t>(r0 + r) * blocks;
      for (int o = ob; o < oe; o += C) {
        const int cols = std::min(C, oe - o);
        const uint8_t* wr[C];
        for (int c = 0; c < cols; ++c) wr[c] = w.row(o + c);
        table[rows - 1][cols - 1](xr, wr, blocks, tile, C);
        for (int r = 0; r < rows; ++r) {
          float* yr = y + static_cast<size_t>(r0 + r) * ldy + o;
          for (int c = 0; c < cols; ++c) yr[c] = tile[r * C + c] + (bias ? bias[o + c] : 0.0f);
        }
      }
    }
  }
}

// The entries the AVX-512 paths share; each path adds its Q8_0 kernels (and bf16 ones).
// Internal linkage, like everything here: each path's translation unit builds its own table from
// code compiled with its own -m flags.
constexpr KernelPath avx512_entries(const char* name) {
  return {.name = name,
          .gemm_float = gemm_float<Avx512>,
          .quantize_row_q8 = quantize_row_q8,
          .axpy = axpy<Avx2>,
          .exp_shift_sum = exp_shift_sum<Avx512>,
          .gelu_tanh = gelu_tanh<Avx512>,
          .silu_mul = silu_mul<Avx512>,
          .row_max = row_max<Avx512>,
          .weighted_rows = weighted_rows<Avx512>,
          .gemm_kn = gemm_kn<Avx512>};
}

}  // namespace
}  // namespace smolvlm::kernels::x86
