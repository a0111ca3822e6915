// KernelPath::gemv_q4k_panels for the dotprod and i8mm paths: Q4_K decode from the 16-row panels
// of kernels/q4k_panels.h, the layout the x86 kernel (x86/q4k_panels_avx2.h) reads. As for Q4_0
// (q4_panels_sdot.h), its 16-byte pieces are what sdot by element wants: the bytes at
// 512c + 64j + 16q are 4 codes (quad j of chunk c) of each of rows 4q … 4q+3, so
// `sdot acc.4s, codes.16b, x.4b[j % 4]` adds 4 products into each of those rows' int32 lanes; the
// low nibbles meet activation group 2c, the high ones group 2c + 1. Codes are 0–15: fine as s8.
// One half of the panel (8 rows) at a time, as the x86 kernel: per chunk and half (64 values × 8
// rows) 16 register loads (8 ldp), 16 AND + 16 shifts, 32 sdot into 4 accumulators (2 row-quads ×
// 2 groups), then per group the 8 rows' 6-bit scales widened to int32 (1 load, 3 widenings), 2
// integer multiplies, 2 conversions and 2 FMAs with the activation scale: about 110 instructions
// with the 4 activation loads. All 16 rows at once wanted 32 code registers and GCC 12 spilled
// about a dozen of them per chunk (and ~70 more instructions a block); by halves the loop keeps
// everything in registers. The mins (dmin·m·d_x·Σx) once per block for all 16 rows: per group m
// widened and converted (1 load, 6 widenings, 4 conversions) and 4 FMAs with d_x·Σx (made once
// per call), even and odd groups into two accumulators (chains of 4, not 8); d and dmin once per
// block. About 1070 instructions per block of 256 values × 16 rows (GCC 12, counted in the
// object), ~67 a row, ~8.4 per row and 32 values against Q4_0's ~6: the codes' ~580 (256 of them
// sdot) are most of it, the 6-bit scales and the mins most of the rest. The file-row kernel
// (block_q4k in kquant_neon.h) also unpacks each row's 12 scale bytes with scalar code and sums
// each row's lanes at the end.
// The twin is ref::kquant_row_dot (and the generic path's gemv_q4k_panels, the layout's).
// No software prefetch: each thread's rows are one contiguous run of panels, a plain forward
// stream for the cores' hardware prefetchers.
#pragma once

#if !defined(__aarch64__) || !defined(__ARM_FEATURE_DOTPROD)
#error "q4k_panels_sdot.h needs AArch64 with dotprod"
#endif

#include <arm_neon.h>

#include <algorithm>

#include "kernels/arm/q4_panels_sdot.h"
#include "kernels/kernel_path.h"
#include "kernels/q4k_panels.h"

namespace smolvlm::kernels::arm {
namespace {

namespace q4ks {

// Quad J of one chunk, rows 8h … 8h+7 (32 bytes: 4 codes of each of the 8 rows) into the rows'
// sums: low nibbles against activation bytes 4J … 4J+3 of the chunk's first group (xl), high
// nibbles against those of its second (xh). x*[0] holds bytes 0–15, x*[1] bytes 16–31.
template <int J>
inline void quad(const uint8_t* codes, const int8x16_t* xl, const int8x16_t* xh, int32x4_t* lo,
                 int32x4_t* hi) {
  const uint8x16_t low4 = vdupq_n_u8(0x0F);
  for (int q = 0; q < 2; ++q) {
    const uint8x16_t v = vld1q_u8(codes + 64 * J + 16 * q);
    lo[q] = vdotq_laneq_s32(lo[q], vreinterpretq_s8_u8(vandq_u8(v, low4)), xl[J / 4], J % 4);
    hi[q] = vdotq_laneq_s32(hi[q], vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), xh[J / 4], J % 4);
  }
}

// 16 bytes (one per row) as 4 × 4 uint32 lanes, rows 4q … 4q+3 in out[q].
inline void widen16(const uint8_t* p, uint32x4_t* out) {
  const uint8x16_t v = vld1q_u8(p);
  const uint16x8_t a = vmovl_u8(vget_low_u8(v)), b = vmovl_high_u8(v);
  out[0] = vmovl_u16(vget_low_u16(a));
  out[1] = vmovl_high_u16(a);
  out[2] = vmovl_u16(vget_low_u16(b));
  out[3] = vmovl_high_u16(b);
}

// 16 f16 (one per row, bytes: the panels may sit at any even address) as 4 × 4 floats.
inline void halves16(const uint8_t* p, float32x4_t* out) {
  const float16x8_t h0 = vreinterpretq_f16_u8(vld1q_u8(p));
  const float16x8_t h1 = vreinterpretq_f16_u8(vld1q_u8(p + 16));
  out[0] = vcvt_f32_f16(vget_low_f16(h0));
  out[1] = vcvt_high_f32_f16(h0);
  out[2] = vcvt_f32_f16(vget_low_f16(h1));
  out[3] = vcvt_high_f32_f16(h1);
}

// Group g's integer sums of rows 8h … 8h+7 times their 6-bit scales, times the activation
// scale, into `scaled`.
inline void scale_group(const uint8_t* pb, int g, int h, const int32x4_t* dot, float xd,
                        float32x4_t* scaled) {
  const uint16x8_t sc = vmovl_u8(vld1_u8(pb + kQ4kPanelScales + 16 * g + 8 * h));
  const int32x4_t s0 = vmulq_s32(dot[0], vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(sc))));
  const int32x4_t s1 = vmulq_s32(dot[1], vreinterpretq_s32_u32(vmovl_high_u16(sc)));
  scaled[0] = vfmaq_n_f32(scaled[0], vcvtq_f32_s32(s0), xd);
  scaled[1] = vfmaq_n_f32(scaled[1], vcvtq_f32_s32(s1), xd);
}

// Chunk c (groups 2c and 2c + 1) of one panel block, rows 8h … 8h+7.
inline void chunk(const uint8_t* pb, const ActBlockQ8* xb, int c, int h, float32x4_t* scaled) {
  const uint8_t* codes = pb + kQ4kPanelCodes + 512 * c + 32 * h;
  const int8x16_t xl[2] = {vld1q_s8(xb[2 * c].q), vld1q_s8(xb[2 * c].q + 16)};
  const int8x16_t xh[2] = {vld1q_s8(xb[2 * c + 1].q), vld1q_s8(xb[2 * c + 1].q + 16)};
  const int32x4_t zero = vdupq_n_s32(0);
  int32x4_t lo[2] = {zero, zero}, hi[2] = {zero, zero};
  quad<0>(codes, xl, xh, lo, hi);
  quad<1>(codes, xl, xh, lo, hi);
  quad<2>(codes, xl, xh, lo, hi);
  quad<3>(codes, xl, xh, lo, hi);
  quad<4>(codes, xl, xh, lo, hi);
  quad<5>(codes, xl, xh, lo, hi);
  quad<6>(codes, xl, xh, lo, hi);
  quad<7>(codes, xl, xh, lo, hi);
  scale_group(pb, 2 * c, h, lo, xb[2 * c].d, scaled);
  scale_group(pb, 2 * c + 1, h, hi, xb[2 * c + 1].d, scaled);
}

// Rows 8H … 8H+7 of one panel block: Σ over the groups of sc·d_x·dot, times d, into acc[2H]
// (rows 8H … 8H+3) and acc[2H + 1].
template <int H>
inline void half(const uint8_t* pb, const ActBlockQ8* xb, float32x4_t* acc) {
  float32x4_t scaled[2] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
  for (int c = 0; c < 4; ++c) chunk(pb, xb, c, H, scaled);
  const float16x8_t d = vreinterpretq_f16_u8(vld1q_u8(pb + kQ4kPanelD + 16 * H));
  acc[2 * H] = vfmaq_f32(acc[2 * H], vcvt_f32_f16(vget_low_f16(d)), scaled[0]);
  acc[2 * H + 1] = vfmaq_f32(acc[2 * H + 1], vcvt_high_f32_f16(d), scaled[1]);
}

}  // namespace q4ks

inline void gemv_q4k_panels_sdot(const ActBlockQ8* xq, const Matrix& w, int o_begin, int o_end,
                                 const float* bias, float* y, Scratch& scratch) {
  const int blocks = w.cols / 256;
  // d_x · Σx per 32 activations (the mins' partner), once per call.
  const int groups = w.cols / kQ8BlockSize;
  float* sum32 = scratch.get<float>(0, static_cast<size_t>(groups));
  for (int g = 0; g < groups; ++g) {
    const int s = vaddlvq_s8(vld1q_s8(xq[g].q)) + vaddlvq_s8(vld1q_s8(xq[g].q + 16));
    sum32[g] = xq[g].d * static_cast<float>(s);
  }
  const size_t panel_stride = q4k_panel_stride(w.cols);
  const float32x4_t fzero = vdupq_n_f32(0.0f);
  for (int o0 = o_begin; o0 < o_end; o0 += kQ4kPanelRows) {
    const uint8_t* panel = w.panels + static_cast<size_t>(o0 / kQ4kPanelRows) * panel_stride;
    float32x4_t acc[4] = {fzero, fzero, fzero, fzero};
    for (int b = 0; b < blocks; ++b) {
      const uint8_t* pb = panel + static_cast<size_t>(b) * kQ4kPanelBlockBytes;
      const ActBlockQ8* xb = xq + 8 * b;
      q4ks::half<0>(pb, xb, acc);
      q4ks::half<1>(pb, xb, acc);
      // Σ m·d_x·Σx, even and odd groups apart (two chains of 4 FMAs instead of one of 8).
      float32x4_t mins[2][4] = {{fzero, fzero, fzero, fzero}, {fzero, fzero, fzero, fzero}};
      const float* xs = sum32 + 8 * b;
      for (int g = 0; g < 8; ++g) {
        uint32x4_t m[4];
        q4ks::widen16(pb + kQ4kPanelMins + 16 * g, m);
        for (int q = 0; q < 4; ++q)
          mins[g % 2][q] = vfmaq_n_f32(mins[g % 2][q], vcvtq_f32_u32(m[q]), xs[g]);
      }
      float32x4_t dmin[4];
      q4ks::halves16(pb + kQ4kPanelDmin, dmin);
      for (int q = 0; q < 4; ++q)
        acc[q] = vfmsq_f32(acc[q], dmin[q], vaddq_f32(mins[0][q], mins[1][q]));
    }
    store_panel_rows(acc, o0, o_end, bias, y);
  }
}

}  // namespace
}  // namespace smolvlm::kernels::arm
