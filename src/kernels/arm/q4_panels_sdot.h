// KernelPath::gemv_q4_panels for the dotprod and i8mm paths: Q4_0 decode from the 16-row panels
// of kernels/q4_panels.h, the layout the x86 VNNI kernel reads. Its 16-byte pieces are what
// sdot by element wants: the bytes at b·256 + g·64 + 16q are 4 weights (group g) of each of
// rows 4q … 4q+3, so `sdot acc.4s, w.16b, x.4b[g]` adds 4 products into each of those rows'
// int32 lanes. Per block of 32 weights × 16 rows: 16 whole-register loads, 16 AND + 16 shifts
// for the two nibble halves, 32 sdot, then the 16 scales (2 loads, 4 fcvtl), 4 conversions and
// 4 FMAs: about 100 instructions, ~6 a row. The file-row kernel (gemv_q4 in gemm_neon.h) spends
// ~12 a row per block (AND, shift, two subtractions of the +8, two sdot, a scalar f16 scale
// load and convert, a multiply, a conversion, an FMA) and a horizontal sum a row at the end.
// The nibbles' +8 comes off as −8·Σx once per block, the starting value of every lane.
// No software prefetch: each thread's rows are one contiguous run of panels, a plain forward
// stream for the cores' hardware prefetchers.
#pragma once

#if !defined(__aarch64__) || !defined(__ARM_FEATURE_DOTPROD)
#error "q4_panels_sdot.h needs AArch64 with dotprod"
#endif

#include <arm_neon.h>

#include <algorithm>

#include "kernels/kernel_path.h"
#include "kernels/q4_panels.h"

namespace smolvlm::kernels::arm {
namespace {

// Group G of one panel block (its 4 registers) into the 16 rows' sums: low nibbles are weights
// 4G … 4G+3 (activation group G, in x0), high nibbles 16+4G … (group G of x1).
template <int G>
inline void panel_group(const uint8_t* nb, int8x16_t x0, int8x16_t x1, int32x4_t* s) {
  const uint8x16_t low4 = vdupq_n_u8(0x0F);
  for (int q = 0; q < 4; ++q) {
    const uint8x16_t v = vld1q_u8(nb + 64 * G + 16 * q);
    s[q] = vdotq_laneq_s32(s[q], vreinterpretq_s8_u8(vandq_u8(v, low4)), x0, G);
    s[q] = vdotq_laneq_s32(s[q], vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), x1, G);
  }
}

// A 16-row panel's sums (4 registers of 4 rows) into y[o0 …], the rows before o_end, plus bias.
inline void store_panel_rows(const float32x4_t acc[4], int o0, int o_end, const float* bias,
                             float* y) {
  float out[16];
  for (int q = 0; q < 4; ++q) vst1q_f32(out + 4 * q, acc[q]);
  const int rows = std::min(16, o_end - o0);
  for (int r = 0; r < rows; ++r) y[o0 + r] = out[r] + (bias ? bias[o0 + r] : 0.0f);
}

inline void gemv_q4_panels_sdot(const ActBlockQ8* xq, const Matrix& w, int o_begin, int o_end,
                                const float* bias, float* y, Scratch& scratch) {
  const int blocks = w.cols / kQ8BlockSize;
  // 8 · Σx per block (the nibbles are w + 8)
  int32_t* eight_sum = scratch.get<int32_t>(0, static_cast<size_t>(blocks));
  for (int b = 0; b < blocks; ++b) {
    eight_sum[static_cast<size_t>(b)] =
        8 * (vaddlvq_s8(vld1q_s8(xq[b].q)) + vaddlvq_s8(vld1q_s8(xq[b].q + 16)));
  }
  const size_t panel_stride = q4_panel_stride(w.cols);
  for (int o0 = o_begin; o0 < o_end; o0 += kQ4PanelRows) {
    const uint8_t* nib = w.panels + static_cast<size_t>(o0 / kQ4PanelRows) * panel_stride;
    const uint8_t* scales = nib + static_cast<size_t>(blocks) * kQ4PanelNibbleBytes;
    float32x4_t acc[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f),
                          vdupq_n_f32(0.0f)};
    for (int b = 0; b < blocks; ++b) {
      const uint8_t* nb = nib + static_cast<size_t>(b) * kQ4PanelNibbleBytes;
      const int8x16_t x0 = vld1q_s8(xq[b].q), x1 = vld1q_s8(xq[b].q + 16);
      const int32x4_t start = vdupq_n_s32(-eight_sum[static_cast<size_t>(b)]);
      int32x4_t s[4] = {start, start, start, start};
      panel_group<0>(nb, x0, x1, s);
      panel_group<1>(nb, x0, x1, s);
      panel_group<2>(nb, x0, x1, s);
      panel_group<3>(nb, x0, x1, s);
      // The 16 rows' f16 scales (bytes: the panels may sit at any even address).
      const uint8_t* sp = scales + static_cast<size_t>(b) * kQ4PanelScaleBytes;
      const float16x8_t h0 = vreinterpretq_f16_u8(vld1q_u8(sp));
      const float16x8_t h1 = vreinterpretq_f16_u8(vld1q_u8(sp + 16));
      const float32x4_t d[4] = {vcvt_f32_f16(vget_low_f16(h0)), vcvt_high_f32_f16(h0),
                                vcvt_f32_f16(vget_low_f16(h1)), vcvt_high_f32_f16(h1)};
      const float xd = xq[b].d;
      for (int q = 0; q < 4; ++q)
        acc[q] = vfmaq_f32(acc[q], vcvtq_f32_s32(s[q]), vmulq_n_f32(d[q], xd));
    }
    store_panel_rows(acc, o0, o_end, bias, y);
  }
}

}  // namespace
}  // namespace smolvlm::kernels::arm
