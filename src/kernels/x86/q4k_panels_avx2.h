// Single-row (decode) Q4_K product from the 16-row panels (kernels/q4k_panels.h), 256-bit: each
// 32-byte load holds one quad of 4 code bytes of 8 rows; its low nibbles meet 4 activation bytes
// of group 2c broadcast to every lane, its high nibbles 4 of group 2c + 1, so every product lands
// in its row's lane and no horizontal sum is needed. Without VNNI a pair sum of vpmaddubsw is at
// most 2·15·127 = 3810, so a group's 8 of them add up in int16 (≤ 30480) and one vpmaddwd per
// group and 8 rows widens them; with VNNI (AVX-512 VL or AVX-VNNI) vpdpbusd adds into int32.
// Per group and 8 rows: the integer sum times the rows' 6-bit scales (vpmulld), then one FMA with
// the activation scale; the mins (dmin·m·d_x·Σx) one FMA; d and dmin once per block.
// The twin is ref::kquant_row_dot (and the generic path's gemv_q4k_panels, the layout's).
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/kernel_path.h"
#include "kernels/q4k_panels.h"
#include "kernels/x86/kquant_x86.h"
#include "kernels/x86/q4_panels_avx2.h"
#include "kernels/x86/simd_x86.h"

namespace smolvlm::kernels::x86 {
// Internal linkage: every path's translation unit keeps its own copy, compiled for its own -m
// flags (see simd_x86.h).
namespace {

namespace q4kp {

#if (defined(__AVX512VNNI__) && defined(__AVX512VL__)) || defined(__AVXVNNI__)
constexpr bool kVnni = true;
inline __m256i dpbusd(__m256i acc, __m256i u, __m256i s) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
  return _mm256_dpbusd_epi32(acc, u, s);
#else
  return _mm256_dpbusd_avx_epi32(acc, u, s);
#endif
}
#else
constexpr bool kVnni = false;
#endif

// acc (int16 pair sums, or int32 with VNNI) += codes · x, 4 products per 32-bit lane.
inline __m256i add_products(__m256i acc, __m256i codes, __m256i x) {
#if (defined(__AVX512VNNI__) && defined(__AVX512VL__)) || defined(__AVXVNNI__)
  return dpbusd(acc, codes, x);
#else
  return _mm256_add_epi16(acc, _mm256_maddubs_epi16(codes, x));
#endif
}
// The int32 sums of each lane.
inline __m256i lane_sums(__m256i acc) {
  if constexpr (kVnni) return acc;
  return _mm256_madd_epi16(acc, _mm256_set1_epi16(1));
}
// 4 activation bytes in every 32-bit lane (a broadcast load: no shuffle).
inline __m256i broadcast4(const int8_t* p) {
  return _mm256_castps_si256(_mm256_broadcast_ss(reinterpret_cast<const float*>(p)));
}
inline __m256i load8_u8_epi32(const uint8_t* p) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

}  // namespace q4kp

// KernelPath::gemv_q4k_panels for the 256-bit paths: one panel (16 rows, two registers of 8
// lanes) at a time.
inline void gemv_q4k_panels_avx2(const ActBlockQ8* xq, const Matrix& w, int o_begin, int o_end,
                                 const float* bias, float* y, Scratch& scratch) {
  const int blocks = w.cols / 256;
  const kq::ActRow x = kq::act_row(xq, w.cols, scratch);
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const size_t panel_stride = q4k_panel_stride(w.cols);
  if (o_begin >= o_end) return;
  StreamPrefetch prefetch(
      w.panels + static_cast<size_t>(o_begin / kQ4kPanelRows) * panel_stride,
      w.panels + static_cast<size_t>((o_end + kQ4kPanelRows - 1) / kQ4kPanelRows) * panel_stride);
  for (int o0 = o_begin; o0 < o_end; o0 += kQ4kPanelRows) {
    const uint8_t* panel = w.panels + static_cast<size_t>(o0 / kQ4kPanelRows) * panel_stride;
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};  // rows 0–7, 8–15
    for (int b = 0; b < blocks; ++b) {
      const uint8_t* pb = panel + static_cast<size_t>(b) * kQ4kPanelBlockBytes;
      prefetch.advance(kQ4kPanelBlockBytes);
      const ActBlockQ8* xb = x.q + 8 * b;
      // One half (8 rows) at a time: few registers live, no spills.
      for (int h = 0; h < 2; ++h) {
        // Σ sc·d_x·dot and Σ m·d_x·Σx over the groups, even and odd groups apart: four short
        // chains of FMAs instead of two long ones (their latency, not the ports, bounded it).
        __m256 scaled[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
        __m256 mins[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
        for (int c = 0; c < 4; ++c) {
          const uint8_t* codes = pb + kQ4kPanelCodes + 512 * c + 32 * h;
          const int8_t* lo_x = xb[2 * c].q;  // groups 2c (low nibbles) and 2c + 1 (high)
          const int8_t* hi_x = xb[2 * c + 1].q;
          __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
          for (int j = 0; j < 8; ++j) {
            const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + 64 * j));
            lo = q4kp::add_products(lo, _mm256_and_si256(v, low4), q4kp::broadcast4(lo_x + 4 * j));
            hi = q4kp::add_products(hi, _mm256_and_si256(_mm256_srli_epi16(v, 4), low4),
                                    q4kp::broadcast4(hi_x + 4 * j));
          }
          for (int half = 0; half < 2; ++half) {
            const int g = 2 * c + half;
            const __m256i dot =
                _mm256_mullo_epi32(q4kp::lane_sums(half ? hi : lo),
                                   q4kp::load8_u8_epi32(pb + kQ4kPanelScales + 16 * g + 8 * h));
            scaled[half] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_broadcast_ss(&xb[g].d),
                                           scaled[half]);
            const __m256 m =
                _mm256_cvtepi32_ps(q4kp::load8_u8_epi32(pb + kQ4kPanelMins + 16 * g + 8 * h));
            mins[half] = _mm256_fmadd_ps(m, _mm256_broadcast_ss(x.sum32 + 8 * b + g), mins[half]);
          }
        }
        const __m256 d = _mm256_cvtph_ps(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(pb + kQ4kPanelD + 16 * h)));
        const __m256 dmin = _mm256_cvtph_ps(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(pb + kQ4kPanelDmin + 16 * h)));
        acc[h] = _mm256_fmadd_ps(d, _mm256_add_ps(scaled[0], scaled[1]), acc[h]);
        acc[h] = _mm256_fnmadd_ps(dmin, _mm256_add_ps(mins[0], mins[1]), acc[h]);
      }
    }
    store_panel_rows(acc, o0, o_end, bias, y);
  }
}

}  // namespace
}  // namespace smolvlm::kernels::x86
