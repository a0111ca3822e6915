// Many-row (prefill) products on the formats/kquants.h types with AVX-512 VNNI: the weights in
// int8 panels, the activations quantised per 32 as for decode — the reference's w·a8 sums
// (ref::matmul), not a float GEMM on widened rows.
//
// Every type decodes to w = scale[i/16] · q + min[i/16] with q int8 (formats/kquants.h), so a
// 16-value half of an activation block contributes
//   scale · x.d · Σ q·xq  +  min · x.d · Σ xq
// The first sum is integer work in the same panels as the Q8_0 GEMM (q8_avx512.h: 16 columns,
// one register per group of 4 K values, vpdpbusd against 4 unsigned activation bytes broadcast);
// each half keeps its own int32 sum and its own −128·Σq correction, because the types with a
// scale per 16 (Q6_K, Q3_K, Q2_K) change scale inside an activation block. The second needs only
// Σ xq per half, computed once per activation row.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <utility>

#include "kernels/kernel_path.h"
#include "kernels/x86/kquant_panel_pack.h"

namespace smolvlm::kernels::x86 {
namespace {

constexpr int kKqPanelCols = 16;
constexpr int kKqPanelTileRows = 4;
// Blocks of K per slice: 2 panels × 8 blocks × 896 bytes = 14 KB of packed weights stay in L1
// while every activation row passes.
constexpr int kKqPanelSliceBlocks = 8;

using KqPanelBlock = KqPanelBlockOf<kKqPanelCols>;
inline void pack_kq_panel(const Matrix& w, int o, int cols, KqPanelBlock* out) {
  pack_kq_columns<kKqPanelCols>(w, o, cols, 0, out);
}

// R activation rows (unsigned bytes `ldx` apart; block scales `lds` apart; per-half
// d·Σxq `2·lds` apart) × P panels over `blocks` blocks, added to the running sums
// acc[r·lda + p·16 + c] (or starting them, when `first`).
template <int R, int P>
void micro_kq_panel(const uint8_t* xu, size_t ldx, const float* xs, const float* xm, size_t lds,
                    const KqPanelBlock* const* panels, int blocks, float* sums, int lda,
                    bool first) {
  __m512 acc[R][P];
  for (int r = 0; r < R; ++r) {
    for (int p = 0; p < P; ++p) {
      acc[r][p] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(sums + r * lda + p * kKqPanelCols);
    }
  }
  for (int b = 0; b < blocks; ++b) {
    const uint8_t* xb = xu + static_cast<size_t>(b) * kQ8BlockSize;
    __m512i isum[2][R][P];
    for (int h = 0; h < 2; ++h) {
      for (int p = 0; p < P; ++p) {
        const __m512i corr = _mm512_loadu_si512(panels[p][b].corr[h]);
        for (int r = 0; r < R; ++r) isum[h][r][p] = corr;
      }
      for (int g = 4 * h; g < 4 * h + 4; ++g) {
        __m512i wg[P];
        for (int p = 0; p < P; ++p) wg[p] = _mm512_loadu_si512(panels[p][b].q[g]);
        for (int r = 0; r < R; ++r) {
          int32_t four;
          std::memcpy(&four, xb + r * ldx + 4 * g, 4);
          const __m512i xr = _mm512_set1_epi32(four);
          for (int p = 0; p < P; ++p) isum[h][r][p] = _mm512_dpbusd_epi32(isum[h][r][p], xr, wg[p]);
        }
      }
    }
    for (int r = 0; r < R; ++r) {
      const __m512 xd = _mm512_set1_ps(xs[r * lds + static_cast<size_t>(b)]);
      const float* xmr = xm + 2 * (r * lds + static_cast<size_t>(b));
      const __m512 xm0 = _mm512_set1_ps(xmr[0]), xm1 = _mm512_set1_ps(xmr[1]);
      for (int p = 0; p < P; ++p) {
        const KqPanelBlock& pb = panels[p][b];
        __m512 a = acc[r][p];
        a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[0][r][p]),
                            _mm512_mul_ps(_mm512_loadu_ps(pb.scale[0]), xd), a);
        a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[1][r][p]),
                            _mm512_mul_ps(_mm512_loadu_ps(pb.scale[1]), xd), a);
        a = _mm512_fmadd_ps(_mm512_loadu_ps(pb.min[0]), xm0, a);
        acc[r][p] = _mm512_fmadd_ps(_mm512_loadu_ps(pb.min[1]), xm1, a);
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int p = 0; p < P; ++p) _mm512_storeu_ps(sums + r * lda + p * kKqPanelCols, acc[r][p]);
  }
}

using MicroKqPanel = void (*)(const uint8_t*, size_t, const float*, const float*, size_t,
                              const KqPanelBlock* const*, int, float*, int, bool);
template <int... Rs>
constexpr std::array<std::array<MicroKqPanel, 2>, sizeof...(Rs)> kq_panel_table(
    std::integer_sequence<int, Rs...>) {
  return {std::array<MicroKqPanel, 2>{&micro_kq_panel<Rs + 1, 1>, &micro_kq_panel<Rs + 1, 2>}...};
}

// KernelPath::gemm_kquant for the VNNI paths: rows [o_begin, o_end) of W, two panels (32
// columns) packed at a time, then every activation row passes over them, K in L1-sized slices.
inline void gemm_kquant_panels(const ActBlockQ8* xq, int n, const Matrix& w, int o_begin, int o_end,
                               const float* bias, float* y, int ldy, Scratch& scratch) {
  static constexpr auto table = kq_panel_table(std::make_integer_sequence<int, kKqPanelTileRows>{});
  const int blocks = w.cols / kQ8BlockSize;
  const size_t ldx = static_cast<size_t>(blocks) * kQ8BlockSize, lds = static_cast<size_t>(blocks);
  // The activations as unsigned bytes (x ⊕ 0x80 = x + 128), their scales, and d·Σxq per half.
  // In `scratch`: slots 0-2 these, 3 the packed panels, 4 the running sums.
  uint8_t* xu = scratch.get<uint8_t>(0, ldx * static_cast<size_t>(n));
  float* xs = scratch.get<float>(1, lds * static_cast<size_t>(n));
  float* xm = scratch.get<float>(2, 2 * lds * static_cast<size_t>(n));
  const __m256i offset = _mm256_set1_epi8(static_cast<char>(0x80));
  for (size_t i = 0; i < static_cast<size_t>(n) * lds; ++i) {
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq[i].q));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(xu + i * kQ8BlockSize),
                        _mm256_xor_si256(q, offset));
    xs[i] = xq[i].d;
    for (int h = 0; h < 2; ++h) {
      int32_t sum = 0;
      for (int j = 16 * h; j < 16 * h + 16; ++j) sum += xq[i].q[j];
      xm[2 * i + static_cast<size_t>(h)] = xq[i].d * static_cast<float>(sum);
    }
  }
  KqPanelBlock* packed = scratch.get<KqPanelBlock>(3, static_cast<size_t>(blocks) * 2);
  constexpr int R = kKqPanelTileRows, C = 2 * kKqPanelCols;
  float* sums = scratch.get<float>(4, static_cast<size_t>(n) * C);  // [n, 32]: running sums
  for (int o = o_begin; o < o_end; o += C) {
    const int cols = std::min(C, o_end - o);
    const int np = cols > kKqPanelCols ? 2 : 1;
    pack_kq_panel(w, o, std::min(cols, kKqPanelCols), packed);
    if (np == 2) pack_kq_panel(w, o + kKqPanelCols, cols - kKqPanelCols, packed + blocks);
    for (int kb = 0; kb < blocks; kb += kKqPanelSliceBlocks) {
      const int nb = std::min(kKqPanelSliceBlocks, blocks - kb);
      const KqPanelBlock* panels[2] = {packed + kb, packed + blocks + kb};
      for (int r0 = 0; r0 < n; r0 += R) {
        const int rows = std::min(R, n - r0);
        const size_t x0 = static_cast<size_t>(r0) * lds + static_cast<size_t>(kb);
        table[rows - 1][np - 1](xu + static_cast<size_t>(r0) * ldx + kb * kQ8BlockSize, ldx,
                                xs + x0, xm + 2 * x0, lds, panels, nb,
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
