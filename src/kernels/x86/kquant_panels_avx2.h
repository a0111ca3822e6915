// Many-row (prefill) products on the formats/kquants.h types with 256-bit registers (AVX2, and
// AVX2 with AVX-VNNI): kquant_panels_avx512.h's method at half the width, with q8_panels_avx2.h's
// two ways to the int32 lane sums (DotQ8: |w| × x·sign(w) with vpmaddubsw, or VEX vpdpbusd on
// unsigned activations with a −128·Σq start per half).
//
// Every type decodes to w = scale[i/16] · q + min[i/16] with q int8, so a span of an activation
// block that shares one scale and min (16 values, or 32 for the types whose scale changes every
// 32) contributes scale · x.d · Σ q·xq + min · x.d · Σ xq: the first sum is integer work in
// 8-column panels, the second needs only Σ xq per span, once per activation row. The same w·a8
// sums as the twin (ref::matmul), up to float summation order.
//
// Without VNNI, the types whose codes span at most 64 values (all but IQ4) store them unsigned,
// u = q − qmin, as vpmaddubsw's unsigned operand against the signed activations: two
// instructions per 64 products, where |w| × x·sign(w) takes four per 32 (as many as a float
// FMA does). Σ q·x = Σ u·x + qmin·Σ x, the last an integer per activation half. Pairs are
// ≤ 2·63·127, so two groups add in int16 before vpmaddwd widens them.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <utility>

#include "formats/kquants.h"
#include "kernels/kernel_path.h"
#include "kernels/x86/kquant_panel_pack.h"
#include "kernels/x86/q8_panels_avx2.h"

namespace smolvlm::kernels::x86 {
// Internal linkage: each path's translation unit keeps its own copy for its own -m flags.
namespace {

constexpr int kKqPanel8Cols = 8;
constexpr int kKqPanel8TileRows = 4;
// Blocks of K per slice: 2 panels × 16 blocks × 448 bytes = 14 KB of packed weights in L1.
constexpr int kKqPanel8SliceBlocks = 16;

using KqPanel8Block = KqPanelBlockOf<kKqPanel8Cols>;

// How type t's codes go through the panels.
struct KqPanel8Form {
  bool as_unsigned;  // codes stored less their least, u = q − qmin (vpmaddubsw's unsigned side)
  int qmin;          // that least code (0 for the signed form)
  int span;          // values per scale and min: 16, or 32 where both halves of a block share them
  // Every vpmaddubsw pair of a span adds in int16 before one vpmaddwd widens them: (span/2)
  // products of u < bound with |x| ≤ 128 stay within int16 (Q4_K, Q4_1: 16·15·128; Q2_K, Q3_K).
  bool span_in_int16;
  bool has_min;
};

inline KqPanel8Form kq_panel8_form(DType t, bool vnni) {
  KqPanel8Form f{};
  const KquantCodes codes = kquant_codes(t);
  const int bound = codes.unsigned_bound;
  f.as_unsigned = !vnni && bound > 0;
  f.qmin = f.as_unsigned ? codes.least : 0;
  f.span = kquant_scales_per_32(t) ? 32 : 16;
  f.span_in_int16 = f.as_unsigned && (f.span / 2) * (bound - 1) * 128 <= 32767;
  f.has_min = kquant_has_min(t);
  return f;
}

inline void pack_kq_panel8(const Matrix& w, int o, int cols, int qmin, KqPanel8Block* out) {
  pack_kq_columns<kKqPanel8Cols>(w, o, cols, qmin, out);
}

// R activation rows (bytes `ldx` apart, offset by 128 with VNNI; block scales `lds` apart; per
// span of kSpan values, d·Σxq in xm and Σxq in xsum, 32/kSpan a block) × P panels over `blocks`
// blocks, added to the running sums sums[r·lda + p·8 + c] (or starting them, when `first`).
// One float epilogue per span: with kSpan 32 both halves' integer sums go into one register.
// The spans run one after the other: two spans' int32 sums at once would need more than the 16
// ymm registers.
template <bool kVnni, bool kUnsigned, int kSpan, bool kSpanInInt16, int R, int P>
void micro_kq_panel8(const uint8_t* xb, size_t ldx, const float* xs, const float* xm,
                     const int32_t* xsum, int qmin, bool has_min, size_t lds,
                     const KqPanel8Block* const* panels, int blocks, float* sums, int lda,
                     bool first) {
  static_assert(!(kVnni && kUnsigned));
  static_assert(!kSpanInInt16 || kUnsigned);
  constexpr int kSpans = kQ8BlockSize / kSpan, kGroups = kSpan / 4;
  if (first) {
    for (int r = 0; r < R; ++r) {
      for (int p = 0; p < P; ++p)
        _mm256_storeu_ps(sums + r * lda + p * kKqPanel8Cols, _mm256_setzero_ps());
    }
  }
  const __m256i ones16 = _mm256_set1_epi16(1);
  for (int b = 0; b < blocks; ++b) {
    const uint8_t* xblk = xb + static_cast<size_t>(b) * kQ8BlockSize;
    for (int s = 0; s < kSpans; ++s) {
      const int g0 = s * kGroups, h0 = s * (kSpan / 16);  // first group, first half of the span
      __m256i isum[R][P];
      if constexpr (kSpanInInt16) {
        // One group's pairs, into the int16 sums (started by the first group). The loop stays
        // rolled: unrolled, GCC hoists every group's products ahead of the adds and spills them.
        const auto add_group = [&](int g, bool start) {
          __m256i wg[P];
          for (int p = 0; p < P; ++p)
            wg[p] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panels[p][b].q[g]));
          for (int r = 0; r < R; ++r) {
            int32_t four;
            std::memcpy(&four, xblk + r * ldx + 4 * g, 4);
            const __m256i xr = _mm256_set1_epi32(four);
            for (int p = 0; p < P; ++p) {
              const __m256i pairs = _mm256_maddubs_epi16(wg[p], xr);
              isum[r][p] = start ? pairs : _mm256_add_epi16(isum[r][p], pairs);
            }
          }
        };
        add_group(g0, true);
#pragma GCC unroll 1
        for (int g = g0 + 1; g < g0 + kGroups; ++g) add_group(g, false);
        for (int r = 0; r < R; ++r) {
          for (int p = 0; p < P; ++p) isum[r][p] = _mm256_madd_epi16(isum[r][p], ones16);
        }
      } else if constexpr (kUnsigned) {
        for (int r = 0; r < R; ++r) {
          for (int p = 0; p < P; ++p) isum[r][p] = _mm256_setzero_si256();
        }
        for (int g = g0; g < g0 + kGroups; g += 2) {  // two groups' pairs add in int16
          __m256i w0[P], w1[P];
          for (int p = 0; p < P; ++p) {
            w0[p] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panels[p][b].q[g]));
            w1[p] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panels[p][b].q[g + 1]));
          }
          for (int r = 0; r < R; ++r) {
            int32_t four0, four1;
            std::memcpy(&four0, xblk + r * ldx + 4 * g, 4);
            std::memcpy(&four1, xblk + r * ldx + 4 * g + 4, 4);
            const __m256i x0 = _mm256_set1_epi32(four0), x1 = _mm256_set1_epi32(four1);
            for (int p = 0; p < P; ++p) {
              const __m256i pairs = _mm256_add_epi16(_mm256_maddubs_epi16(w0[p], x0),
                                                     _mm256_maddubs_epi16(w1[p], x1));
              isum[r][p] = _mm256_add_epi32(isum[r][p], _mm256_madd_epi16(pairs, ones16));
            }
          }
        }
      } else {
        for (int p = 0; p < P; ++p) {
          __m256i start = _mm256_setzero_si256();
          if constexpr (kVnni) {
            for (int h = h0; h < h0 + kSpan / 16; ++h)
              start = _mm256_add_epi32(
                  start,
                  _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panels[p][b].corr[h])));
          }
          for (int r = 0; r < R; ++r) isum[r][p] = start;
        }
        for (int g = g0; g < g0 + kGroups; ++g)
          add_signed_group<kVnni>(isum, panels, b, g, xblk, ldx);
      }
      if (kUnsigned && qmin != 0) {  // Σ q·x = Σ u·x + qmin·Σ x
        for (int r = 0; r < R; ++r) {
          const size_t at = (static_cast<size_t>(r) * lds + static_cast<size_t>(b)) * kSpans;
          const __m256i shift = _mm256_set1_epi32(qmin * xsum[at + static_cast<size_t>(s)]);
          for (int p = 0; p < P; ++p) isum[r][p] = _mm256_add_epi32(isum[r][p], shift);
        }
      }
      for (int p = 0; p < P; ++p) {
        const KqPanel8Block& pb = panels[p][b];
        const __m256 scale = _mm256_loadu_ps(pb.scale[h0]), min = _mm256_loadu_ps(pb.min[h0]);
        for (int r = 0; r < R; ++r) {
          float* sr = sums + r * lda + p * kKqPanel8Cols;
          const size_t at = static_cast<size_t>(r) * lds + static_cast<size_t>(b);
          __m256 acc = _mm256_loadu_ps(sr);
          acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[r][p]),
                                _mm256_mul_ps(scale, _mm256_set1_ps(xs[at])), acc);
          if (has_min)
            acc =
                _mm256_fmadd_ps(min, _mm256_set1_ps(xm[at * kSpans + static_cast<size_t>(s)]), acc);
          _mm256_storeu_ps(sr, acc);
        }
      }
    }
  }
}

using MicroKqPanel8 = void (*)(const uint8_t*, size_t, const float*, const float*, const int32_t*,
                               int, bool, size_t, const KqPanel8Block* const*, int, float*, int,
                               bool);
using KqPanel8Table = std::array<std::array<MicroKqPanel8, 2>, kKqPanel8TileRows>;
template <bool kVnni, bool kUnsigned, int kSpan, bool kSpanInInt16, int... Rs>
constexpr KqPanel8Table kq_panel8_table(std::integer_sequence<int, Rs...>) {
  return {std::array<MicroKqPanel8, 2>{
      &micro_kq_panel8<kVnni, kUnsigned, kSpan, kSpanInInt16, Rs + 1, 1>,
      &micro_kq_panel8<kVnni, kUnsigned, kSpan, kSpanInInt16, Rs + 1, 2>}...};
}
template <bool kVnni, bool kUnsigned, int kSpan, bool kSpanInInt16>
constexpr KqPanel8Table kKqPanel8Table = kq_panel8_table<kVnni, kUnsigned, kSpan, kSpanInInt16>(
    std::make_integer_sequence<int, kKqPanel8TileRows>{});

// The micro-kernels for form f (the unsigned forms only where there is no VNNI).
template <bool kVnni>
const KqPanel8Table& kq_panel8_kernels(const KqPanel8Form& f) {
  if constexpr (!kVnni) {
    if (f.as_unsigned) {
      if (f.span == 32)
        return f.span_in_int16 ? kKqPanel8Table<false, true, 32, true>
                               : kKqPanel8Table<false, true, 32, false>;
      return f.span_in_int16 ? kKqPanel8Table<false, true, 16, true>
                             : kKqPanel8Table<false, true, 16, false>;
    }
  }
  return f.span == 32 ? kKqPanel8Table<kVnni, false, 32, false>
                      : kKqPanel8Table<kVnni, false, 16, false>;
}

// KernelPath::gemm_kquant for the 256-bit paths: rows [o_begin, o_end) of W, two panels (16
// columns) packed at a time, then every activation row passes over them, K in L1-sized slices.
template <bool kVnni>
void gemm_kquant_panels8(const ActBlockQ8* xq, int n, const Matrix& w, int o_begin, int o_end,
                         const float* bias, float* y, int ldy, Scratch& scratch) {
  const KqPanel8Form form = kq_panel8_form(w.type, kVnni);
  const KqPanel8Table& table = kq_panel8_kernels<kVnni>(form);
  const int spans = kQ8BlockSize / form.span;
  const int blocks = w.cols / kQ8BlockSize;
  const size_t ldx = static_cast<size_t>(blocks) * kQ8BlockSize, lds = static_cast<size_t>(blocks);
  // In `scratch`: slots 0-2 the activation bytes, their scales and d·Σxq per span; 3 the packed
  // panels; 4 the running sums; 5 Σxq per span.
  uint8_t* xb = scratch.get<uint8_t>(0, ldx * static_cast<size_t>(n));
  float* xs = scratch.get<float>(1, lds * static_cast<size_t>(n));
  float* xm = scratch.get<float>(2, static_cast<size_t>(spans) * lds * static_cast<size_t>(n));
  int32_t* xsum =
      scratch.get<int32_t>(5, static_cast<size_t>(spans) * lds * static_cast<size_t>(n));
  const __m256i offset = _mm256_set1_epi8(static_cast<char>(kVnni ? 0x80 : 0));
  for (size_t i = 0; i < static_cast<size_t>(n) * lds; ++i) {
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq[i].q));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(xb + i * kQ8BlockSize),
                        _mm256_xor_si256(q, offset));
    xs[i] = xq[i].d;
    // Σ q per 16: sums of pairs (vpmaddubsw against ones), then of 8 pairs per 128-bit half.
    const __m256i pairs = _mm256_maddubs_epi16(_mm256_set1_epi8(1), q);
    __m256i s = _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
    s = _mm256_hadd_epi32(s, s);
    s = _mm256_hadd_epi32(s, s);
    const int32_t half0 = _mm256_cvtsi256_si32(s), half1 = _mm256_extract_epi32(s, 4);
    if (spans == 2) {
      xsum[2 * i] = half0;
      xsum[2 * i + 1] = half1;
    } else {
      xsum[i] = half0 + half1;
    }
    for (int sp = 0; sp < spans; ++sp) {
      const size_t at = static_cast<size_t>(spans) * i + static_cast<size_t>(sp);
      xm[at] = xq[i].d * static_cast<float>(xsum[at]);
    }
  }
  KqPanel8Block* packed = scratch.get<KqPanel8Block>(3, static_cast<size_t>(blocks) * 2);
  constexpr int R = kKqPanel8TileRows, C = 2 * kKqPanel8Cols;
  float* sums = scratch.get<float>(4, static_cast<size_t>(n) * C);  // [n, 16]
  for (int o = o_begin; o < o_end; o += C) {
    const int cols = std::min(C, o_end - o);
    const int np = cols > kKqPanel8Cols ? 2 : 1;
    pack_kq_panel8(w, o, std::min(cols, kKqPanel8Cols), form.qmin, packed);
    if (np == 2)
      pack_kq_panel8(w, o + kKqPanel8Cols, cols - kKqPanel8Cols, form.qmin, packed + blocks);
    for (int kb = 0; kb < blocks; kb += kKqPanel8SliceBlocks) {
      const int nb = std::min(kKqPanel8SliceBlocks, blocks - kb);
      const KqPanel8Block* panels[2] = {packed + kb, packed + blocks + kb};
      for (int r0 = 0; r0 < n; r0 += R) {
        const int rows = std::min(R, n - r0);
        const size_t x0 = static_cast<size_t>(r0) * lds + static_cast<size_t>(kb);
        const size_t xs0 = x0 * static_cast<size_t>(spans);
        table[rows - 1][np - 1](xb + static_cast<size_t>(r0) * ldx + kb * kQ8BlockSize, ldx,
                                xs + x0, xm + xs0, xsum + xs0, form.qmin, form.has_min, lds, panels,
                                nb, sums + static_cast<size_t>(r0) * C, C, kb == 0);
      }
    }
    for (int r = 0; r < n; ++r) {
      float* yr = y + static_cast<size_t>(r) * ldy + o;
      const float* sr = sums + static_cast<size_t>(r) * C;
      for (int c = 0; c < cols; ++c) yr[c] = sr[c] + (bias ? bias[o + c] : 0.0f);
    }
  }
}

}  // namespace
}  // namespace smolvlm::kernels::x86
