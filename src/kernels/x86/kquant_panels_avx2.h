// Many-row (prefill) products on the formats/kquants.h types with 256-bit registers (AVX2, and
// AVX2 with AVX-VNNI): kquant_panels_avx512.h's method at half the width, with q8_panels_avx2.h's
// two ways to the int32 lane sums (DotQ8: |w| × x·sign(w) with vpmaddubsw, or VEX vpdpbusd on
// unsigned activations with a −128·Σq start per half).
//
// Every type decodes to w = scale[i/16] · q + min[i/16] with q int8, so a 16-value half of an
// activation block contributes scale · x.d · Σ q·xq + min · x.d · Σ xq: the first sum is integer
// work in 8-column panels, the second needs only Σ xq per half, once per activation row. The
// same w·a8 sums as the twin (ref::matmul), up to float summation order.
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

// The least code of type t in the common form, for the types stored unsigned (u = q − qmin,
// u < 64); 1 for the others (IQ4_NL, IQ4_XS: codes over −127..113).
constexpr int kNotUnsigned = 1;
inline int unsigned_code_offset(DType t) {
  switch (t) {
    case DType::Q6_K:
      return -32;
    case DType::Q5_0:
      return -16;
    case DType::Q3_K:
      return -4;
    case DType::Q2_K:
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q4_1:
    case DType::Q5_1:
      return 0;
    default:
      return kNotUnsigned;
  }
}

inline void pack_kq_panel8(const Matrix& w, int o, int cols, int qmin, KqPanel8Block* out) {
  pack_kq_columns<kKqPanel8Cols>(w, o, cols, qmin, out);
}

// R activation rows (bytes `ldx` apart, offset by 128 with VNNI; block scales `lds` apart;
// per-half d·Σxq `2·lds` apart) × P panels over `blocks` blocks, added to the running sums
// sums[r·lda + p·8 + c] (or starting them, when `first`). The halves run one after the other:
// both halves' int32 sums at once would need more than the 16 ymm registers.
template <bool kVnni, bool kUnsigned, int R, int P>
void micro_kq_panel8(const uint8_t* xb, size_t ldx, const float* xs, const float* xm,
                     const int32_t* xsum, int qmin, size_t lds, const KqPanel8Block* const* panels,
                     int blocks, float* sums, int lda, bool first) {
  static_assert(!(kVnni && kUnsigned));
  if (first) {
    for (int r = 0; r < R; ++r) {
      for (int p = 0; p < P; ++p)
        _mm256_storeu_ps(sums + r * lda + p * kKqPanel8Cols, _mm256_setzero_ps());
    }
  }
  for (int b = 0; b < blocks; ++b) {
    const uint8_t* xblk = xb + static_cast<size_t>(b) * kQ8BlockSize;
    for (int h = 0; h < 2; ++h) {
      __m256i isum[R][P];
      for (int p = 0; p < P; ++p) {
        const __m256i start =
            kVnni ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panels[p][b].corr[h]))
                  : _mm256_setzero_si256();
        for (int r = 0; r < R; ++r) isum[r][p] = start;
      }
      if constexpr (kUnsigned) {
        for (int g = 4 * h; g < 4 * h + 4; g += 2) {
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
              isum[r][p] =
                  _mm256_add_epi32(isum[r][p], _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
            }
          }
        }
        for (int r = 0; r < R; ++r) {  // Σ q·x = Σ u·x + qmin·Σ x
          const size_t at = static_cast<size_t>(r) * lds + static_cast<size_t>(b);
          const __m256i shift = _mm256_set1_epi32(qmin * xsum[2 * at + static_cast<size_t>(h)]);
          for (int p = 0; p < P; ++p) isum[r][p] = _mm256_add_epi32(isum[r][p], shift);
        }
      }
      for (int g = 4 * h; g < 4 * h + 4 && !kUnsigned; ++g) {
        __m256i wg[P], wabs[P];
        for (int p = 0; p < P; ++p) {
          wg[p] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panels[p][b].q[g]));
          if constexpr (!kVnni) wabs[p] = _mm256_abs_epi8(wg[p]);
        }
        for (int r = 0; r < R; ++r) {
          int32_t four;
          std::memcpy(&four, xblk + r * ldx + 4 * g, 4);
          const __m256i xr = _mm256_set1_epi32(four);
          for (int p = 0; p < P; ++p)
            isum[r][p] = DotQ8<kVnni>::add(isum[r][p], xr, wg[p], kVnni ? wg[p] : wabs[p]);
        }
      }
      for (int p = 0; p < P; ++p) {
        const KqPanel8Block& pb = panels[p][b];
        const __m256 scale = _mm256_loadu_ps(pb.scale[h]), min = _mm256_loadu_ps(pb.min[h]);
        for (int r = 0; r < R; ++r) {
          float* s = sums + r * lda + p * kKqPanel8Cols;
          const size_t at = static_cast<size_t>(r) * lds + static_cast<size_t>(b);
          __m256 acc = _mm256_loadu_ps(s);
          acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[r][p]),
                                _mm256_mul_ps(scale, _mm256_set1_ps(xs[at])), acc);
          acc = _mm256_fmadd_ps(min, _mm256_set1_ps(xm[2 * at + static_cast<size_t>(h)]), acc);
          _mm256_storeu_ps(s, acc);
        }
      }
    }
  }
}

using MicroKqPanel8 = void (*)(const uint8_t*, size_t, const float*, const float*, const int32_t*,
                               int, size_t, const KqPanel8Block* const*, int, float*, int, bool);
template <bool kVnni, bool kUnsigned, int... Rs>
constexpr std::array<std::array<MicroKqPanel8, 2>, sizeof...(Rs)> kq_panel8_table(
    std::integer_sequence<int, Rs...>) {
  return {std::array<MicroKqPanel8, 2>{&micro_kq_panel8<kVnni, kUnsigned, Rs + 1, 1>,
                                       &micro_kq_panel8<kVnni, kUnsigned, Rs + 1, 2>}...};
}

// KernelPath::gemm_kquant for the 256-bit paths: rows [o_begin, o_end) of W, two panels (16
// columns) packed at a time, then every activation row passes over them, K in L1-sized slices.
template <bool kVnni>
void gemm_kquant_panels8(const ActBlockQ8* xq, int n, const Matrix& w, int o_begin, int o_end,
                         const float* bias, float* y, int ldy, Scratch& scratch) {
  static constexpr auto signed_table =
      kq_panel8_table<kVnni, false>(std::make_integer_sequence<int, kKqPanel8TileRows>{});
  static constexpr auto unsigned_table =
      kq_panel8_table<false, !kVnni>(std::make_integer_sequence<int, kKqPanel8TileRows>{});
  const int offset_code = unsigned_code_offset(w.type);
  const bool as_unsigned = !kVnni && offset_code != kNotUnsigned;
  const int qmin = as_unsigned ? offset_code : 0;
  const auto& table = as_unsigned ? unsigned_table : signed_table;
  const int blocks = w.cols / kQ8BlockSize;
  const size_t ldx = static_cast<size_t>(blocks) * kQ8BlockSize, lds = static_cast<size_t>(blocks);
  // In `scratch`: slots 0-2 the activation bytes, their scales and d·Σxq per half; 3 the packed
  // panels; 4 the running sums; 5 Σxq per half.
  uint8_t* xb = scratch.get<uint8_t>(0, ldx * static_cast<size_t>(n));
  float* xs = scratch.get<float>(1, lds * static_cast<size_t>(n));
  float* xm = scratch.get<float>(2, 2 * lds * static_cast<size_t>(n));
  int32_t* xsum = scratch.get<int32_t>(5, 2 * lds * static_cast<size_t>(n));
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
    xsum[2 * i] = _mm256_cvtsi256_si32(s);
    xsum[2 * i + 1] = _mm256_extract_epi32(s, 4);
    xm[2 * i] = xq[i].d * static_cast<float>(xsum[2 * i]);
    xm[2 * i + 1] = xq[i].d * static_cast<float>(xsum[2 * i + 1]);
  }
  KqPanel8Block* packed = scratch.get<KqPanel8Block>(3, static_cast<size_t>(blocks) * 2);
  constexpr int R = kKqPanel8TileRows, C = 2 * kKqPanel8Cols;
  float* sums = scratch.get<float>(4, static_cast<size_t>(n) * C);  // [n, 16]
  for (int o = o_begin; o < o_end; o += C) {
    const int cols = std::min(C, o_end - o);
    const int np = cols > kKqPanel8Cols ? 2 : 1;
    pack_kq_panel8(w, o, std::min(cols, kKqPanel8Cols), qmin, packed);
    if (np == 2) pack_kq_panel8(w, o + kKqPanel8Cols, cols - kKqPanel8Cols, qmin, packed + blocks);
    for (int kb = 0; kb < blocks; kb += kKqPanel8SliceBlocks) {
      const int nb = std::min(kKqPanel8SliceBlocks, blocks - kb);
      const KqPanel8Block* panels[2] = {packed + kb, packed + blocks + kb};
      for (int r0 = 0; r0 < n; r0 += R) {
        const int rows = std::min(R, n - r0);
        const size_t x0 = static_cast<size_t>(r0) * lds + static_cast<size_t>(kb);
        table[rows - 1][np - 1](xb + static_cast<size_t>(r0) * ldx + kb * kQ8BlockSize, ldx,
                                xs + x0, xm + 2 * x0, xsum + 2 * x0, qmin, lds, panels, nb,
                                sums + static_cast<size_t>(r0) * C, C, kb == 0);
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
