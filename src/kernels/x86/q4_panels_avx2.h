// Single-row (decode) Q4_0 product from the 16-row panels (kernels/q4_panels.h) with AVX2:
// vpmaddubsw on the panel's nibbles (unsigned, 0–15) against 4 activation bytes broadcast to
// every lane (signed). Each 32-byte load holds one group of 4 bytes of 8 rows: its low nibbles
// meet activations 4g … 4g+3 of the block, its high nibbles 16+4g … 16+4g+3. A pair of products
// is at most 2·15·127 = 3810 in size, so the 8 such pair sums of a block (4 groups, low and
// high) add up in int16 without overflow (≤ 30480), and one vpmaddwd per block and 8 rows
// widens them to int32: about 4 vector operations per 32 weights, against ~10 for the file
// layout's kernel (gemm_x86.h), which decoded at a third of the DRAM bound on Zen 1.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/kernel_path.h"
#include "kernels/q4_panels.h"
#include "kernels/x86/simd_x86.h"

namespace smolvlm::kernels::x86 {
// Internal linkage: every path's translation unit keeps its own copy, compiled for its own -m
// flags (see simd_x86.h).
namespace {

// A 16-row panel's sums (rows 0–7, 8–15) into y[o0 …], the rows before o_end, plus bias.
inline void store_panel_rows(const __m256 acc[2], int o0, int o_end, const float* bias, float* y) {
  alignas(32) float out[16];
  _mm256_store_ps(out, acc[0]);
  _mm256_store_ps(out + 8, acc[1]);
  const int rows = std::min(16, o_end - o0);
  for (int r = 0; r < rows; ++r) y[o0 + r] = out[r] + (bias ? bias[o0 + r] : 0.0f);
}

// KernelPath::gemv_q4_panels for the 256-bit paths: one panel (16 rows, two registers of 8
// int32 lanes) at a time.
inline void gemv_q4_panels_avx2(const ActBlockQ8* xq, const Matrix& w, int o_begin, int o_end,
                                const float* bias, float* y, Scratch& scratch) {
  const int blocks = w.cols / kQ8BlockSize;
  // 8 · Σx per block (the nibbles are w + 8)
  int32_t* eight_sum = scratch.get<int32_t>(0, static_cast<size_t>(blocks));
  for (int b = 0; b < blocks; ++b) {
    int32_t s = 0;
    for (int i = 0; i < kQ8BlockSize; ++i) s += xq[b].q[i];
    eight_sum[static_cast<size_t>(b)] = 8 * s;
  }
  const __m256i low4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
  const size_t panel_stride = q4_panel_stride(w.cols);
  if (o_begin >= o_end) return;
  // A panel's scales follow its nibbles: the cursor runs over both, a block's share at a time.
  const uint8_t* first = w.panels + static_cast<size_t>(o_begin / kQ4PanelRows) * panel_stride;
  StreamPrefetch prefetch(
      first,
      w.panels + static_cast<size_t>((o_end + kQ4PanelRows - 1) / kQ4PanelRows) * panel_stride);
  for (int o0 = o_begin; o0 < o_end; o0 += kQ4PanelRows) {
    const uint8_t* nib = w.panels + static_cast<size_t>(o0 / kQ4PanelRows) * panel_stride;
    const uint8_t* scales = nib + static_cast<size_t>(blocks) * kQ4PanelNibbleBytes;
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};  // rows 0–7, 8–15
    for (int b = 0; b < blocks; ++b) {
      const uint8_t* nb = nib + static_cast<size_t>(b) * kQ4PanelNibbleBytes;
      prefetch.advance(kQ4PanelNibbleBytes + kQ4PanelScaleBytes);
      int32_t groups[8];  // the block's activations, 4 bytes a group
      std::memcpy(groups, xq[b].q, sizeof(groups));
      __m256i pairs[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
      for (int g = 0; g < 4; ++g) {
        const __m256i x_lo = _mm256_set1_epi32(groups[g]);
        const __m256i x_hi = _mm256_set1_epi32(groups[4 + g]);
        for (int h = 0; h < 2; ++h) {
          const __m256i v =
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(nb + 64 * g + 32 * h));
          pairs[h] =
              _mm256_add_epi16(pairs[h], _mm256_maddubs_epi16(_mm256_and_si256(v, low4), x_lo));
          pairs[h] = _mm256_add_epi16(
              pairs[h],
              _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v, 4), low4), x_hi));
        }
      }
      const __m256i corr = _mm256_set1_epi32(eight_sum[static_cast<size_t>(b)]);
      const __m256 xd = _mm256_set1_ps(xq[b].d);
      const uint8_t* sb = scales + static_cast<size_t>(b) * kQ4PanelScaleBytes;
      for (int h = 0; h < 2; ++h) {
        const __m256i sum = _mm256_sub_epi32(_mm256_madd_epi16(pairs[h], ones), corr);
        const __m256 d = _mm256_mul_ps(
            _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sb + 16 * h))), xd);
        acc[h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), d, acc[h]);
      }
    }
    store_panel_rows(acc, o0, o_end, bias, y);
  }
}

}  // namespace
}  // namespace smolvlm::kernels::x86
