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

#include "kernels/kernel_path.h"

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

template <bool kVnni>
void gemm_q8_512(const ActBlockQ8* xq, int n, const Matrix& w, int o_begin, int o_end,
                 const float* bias, float* y, int ldy) {
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

}  // namespace
}  // namespace smolvlm::kernels::x86
