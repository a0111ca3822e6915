// Decode (one activation row) for the formats/kquants.h types on the NEON paths (neon,
// dotprod, i8mm; each path's .cpp instantiates it with its own integer dot). Unlike the AVX2
// kernel (x86/kquant_x86.h), which first writes each block out in the common form, the blocks
// here are decoded in registers, 16 or 32 values at a time, straight into the integer dots:
//
//   Q4_K / Q5_K  nibbles (AND / shift), Q5_K's fifth bit by a bit test on qh;
//                per 32 values one dot, scaled by d·sc·dx, and the min term −dmin·m·dx·Σq
//   Q6_K         nibble | 2 bits of qh << 4, minus 32; the two 16-value dots of an activation
//                block are combined with their int8 scales in int32 (exact: |Σ| < 2^24)
//   IQ4_NL/IQ4_XS nibbles looked up in kIq4nlValues by tbl
//   Q4_1/Q5_0/Q5_1 nibbles (+ the 32 fifth bits of qh spread to bytes by tbl + bit test)
//   Q2_K / Q3_K  2-bit fields by constant shifts (+ Q3_K's hmask bit), int32-combined per 16
//
// The activation sums Σq per 16 (for the mins) are made once per call. ref::kquant_row_dot is the
// twin; the sums differ from it only in float rounding order.
#pragma once

#if !defined(__aarch64__)
#error "kquant_neon.h is for AArch64 only"
#endif

#include <arm_neon.h>

#include <cstring>

#include "formats/kquants.h"
#include "kernels/kernel_path.h"

namespace smolvlm::kernels::arm {
namespace {

// 16 int8 products summed into 4 int32 lanes (each lane: 4 neighbouring products).
// ARMv8.0: widening multiplies into int16 (|x·w| ≤ 127 · 128), pairwise-added into int32.
struct Dot16Neon {
  static int32x4_t dot(int32x4_t acc, int8x16_t x, int8x16_t w) {
    const int16x8_t p = vmlal_high_s8(vmull_s8(vget_low_s8(x), vget_low_s8(w)), x, w);
    return vpadalq_s16(acc, p);
  }
};
#if defined(__ARM_FEATURE_DOTPROD)
struct Dot16Sdot {
  static int32x4_t dot(int32x4_t acc, int8x16_t x, int8x16_t w) { return vdotq_s32(acc, x, w); }
};
#endif

namespace kqn {

inline float f16_at(const uint8_t* p) {
  __fp16 h;
  std::memcpy(&h, p, sizeof(h));
  return static_cast<float>(h);
}
inline int8x16_t s8(uint8x16_t v) { return vreinterpretq_s8_u8(v); }

// dx · Σ of each 16-value half of an activation block, into two[0], two[1].
inline void half_sums(const ActBlockQ8& x, float* two) {
  two[0] = x.d * static_cast<float>(vaddlvq_s8(vld1q_s8(x.q)));
  two[1] = x.d * static_cast<float>(vaddlvq_s8(vld1q_s8(x.q + 16)));
}

// Per-call activation facts: xs16[g] = dx · Σ of the 16 activations of group g.
inline const float* activation_sums(const ActBlockQ8* xq, int cols, Scratch& scratch) {
  float* xs16 = scratch.get<float>(0, static_cast<size_t>(cols / 16));
  for (int b = 0; b < cols / kQ8BlockSize; ++b) half_sums(xq[b], xs16 + 2 * b);
  return xs16;
}

// One 32-value activation block against 32 weights w0 (values 0–15), w1 (16–31).
template <class D>
inline int32x4_t dot32(const ActBlockQ8& x, int8x16_t w0, int8x16_t w1) {
  return D::dot(D::dot(vdupq_n_s32(0), vld1q_s8(x.q), w0), vld1q_s8(x.q + 16), w1);
}
// The same with a separate int scale for each half (per-16 scales), summed in int32.
template <class D>
inline int32x4_t dot32_scaled(const ActBlockQ8& x, int8x16_t w0, int8x16_t w1, int s0, int s1) {
  const int32x4_t p0 = D::dot(vdupq_n_s32(0), vld1q_s8(x.q), w0);
  const int32x4_t p1 = D::dot(vdupq_n_s32(0), vld1q_s8(x.q + 16), w1);
  return vmlaq_n_s32(vmulq_n_s32(p0, s0), p1, s1);
}

// Q4_K / Q5_K: one block of 256 against 8 activation blocks; returns the min term.
template <class D, bool kFive>
inline float block_q4k(const uint8_t* b, const ActBlockQ8* x, const float* xs16, float32x4_t& acc) {
  const float d = f16_at(b), dmin = f16_at(b + 2);
  int sc[8], mn[8];
  for (int s = 0; s < 8; ++s) kquant_scale_min(b + 4, s, sc[s], mn[s]);
  const uint8_t* qs = b + (kFive ? 48 : 16);
  const uint8x16_t low4 = vdupq_n_u8(0x0F);
  uint8x16_t qh0 = vdupq_n_u8(0), qh1 = vdupq_n_u8(0);
  if constexpr (kFive) {
    qh0 = vld1q_u8(b + 16);
    qh1 = vld1q_u8(b + 32);
  }
  const uint8x16_t sixteen = vdupq_n_u8(0x10);
  float min_term = 0.0f;
  for (int c = 0; c < 4; ++c) {
    const uint8x16_t v0 = vld1q_u8(qs + 32 * c), v1 = vld1q_u8(qs + 32 * c + 16);
    uint8x16_t lo0 = vandq_u8(v0, low4), lo1 = vandq_u8(v1, low4);
    uint8x16_t hi0 = vshrq_n_u8(v0, 4), hi1 = vshrq_n_u8(v1, 4);
    if constexpr (kFive) {
      // Bit 2c of qh[j] is value 64c + j's fifth bit, bit 2c + 1 value 64c + 32 + j's.
      const uint8x16_t mlo = vdupq_n_u8(static_cast<uint8_t>(1u << (2 * c)));
      const uint8x16_t mhi = vdupq_n_u8(static_cast<uint8_t>(2u << (2 * c)));
      lo0 = vorrq_u8(lo0, vandq_u8(vtstq_u8(qh0, mlo), sixteen));
      lo1 = vorrq_u8(lo1, vandq_u8(vtstq_u8(qh1, mlo), sixteen));
      hi0 = vorrq_u8(hi0, vandq_u8(vtstq_u8(qh0, mhi), sixteen));
      hi1 = vorrq_u8(hi1, vandq_u8(vtstq_u8(qh1, mhi), sixteen));
    }
    const int s = 2 * c;
    const int32x4_t plo = dot32<D>(x[s], s8(lo0), s8(lo1));
    const int32x4_t phi = dot32<D>(x[s + 1], s8(hi0), s8(hi1));
    acc = vfmaq_n_f32(acc, vcvtq_f32_s32(plo), d * static_cast<float>(sc[s]) * x[s].d);
    acc = vfmaq_n_f32(acc, vcvtq_f32_s32(phi), d * static_cast<float>(sc[s + 1]) * x[s + 1].d);
    min_term += static_cast<float>(mn[s]) * (xs16[2 * s] + xs16[2 * s + 1]) +
                static_cast<float>(mn[s + 1]) * (xs16[2 * s + 2] + xs16[2 * s + 3]);
  }
  return -dmin * min_term;
}

// Q6_K: 256 values, int8 scales per 16.
template <class D>
inline void block_q6k(const uint8_t* b, const ActBlockQ8* x, float32x4_t& acc) {
  const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = f16_at(b + 208);
  const uint8x16_t low4 = vdupq_n_u8(0x0F), two_bits = vdupq_n_u8(0x30);
  const int8x16_t off = vdupq_n_s8(32);
  for (int h = 0; h < 2; ++h) {
    const uint8_t* ql = b + 64 * h;
    const uint8_t* qh = b + 128 + 32 * h;
    const uint8x16_t a0 = vld1q_u8(ql), a1 = vld1q_u8(ql + 16);       // k = 0 (low), 2 (high)
    const uint8x16_t c0 = vld1q_u8(ql + 32), c1 = vld1q_u8(ql + 48);  // k = 1 (low), 3 (high)
    const uint8x16_t h0 = vld1q_u8(qh), h1 = vld1q_u8(qh + 16);
    // Bits 2k..2k+1 of qh moved to bits 4..5.
    const uint8x16_t q[4][2] = {
        {vorrq_u8(vandq_u8(a0, low4), vandq_u8(vshlq_n_u8(h0, 4), two_bits)),
         vorrq_u8(vandq_u8(a1, low4), vandq_u8(vshlq_n_u8(h1, 4), two_bits))},
        {vorrq_u8(vandq_u8(c0, low4), vandq_u8(vshlq_n_u8(h0, 2), two_bits)),
         vorrq_u8(vandq_u8(c1, low4), vandq_u8(vshlq_n_u8(h1, 2), two_bits))},
        {vorrq_u8(vshrq_n_u8(a0, 4), vandq_u8(h0, two_bits)),
         vorrq_u8(vshrq_n_u8(a1, 4), vandq_u8(h1, two_bits))},
        {vorrq_u8(vshrq_n_u8(c0, 4), vandq_u8(vshrq_n_u8(h0, 2), two_bits)),
         vorrq_u8(vshrq_n_u8(c1, 4), vandq_u8(vshrq_n_u8(h1, 2), two_bits))}};
    for (int k = 0; k < 4; ++k) {
      const int g = 8 * h + 2 * k;
      const int32x4_t p = dot32_scaled<D>(x[4 * h + k], vsubq_s8(s8(q[k][0]), off),
                                          vsubq_s8(s8(q[k][1]), off), sc[g], sc[g + 1]);
      acc = vfmaq_n_f32(acc, vcvtq_f32_s32(p), d * x[4 * h + k].d);
    }
  }
}

// Q3_K: 256 values, 2 bits of qs + hmask's bit (clear: minus 4), 6-bit scales − 32 per 16.
template <class D>
inline void block_q3k(const uint8_t* b, const ActBlockQ8* x, float32x4_t& acc) {
  int8_t sc[16];
  q3k_scales(b + 96, sc);
  const float d = f16_at(b + 108);
  const uint8x16_t three = vdupq_n_u8(3);
  const uint8x16_t m0 = vld1q_u8(b), m1 = vld1q_u8(b + 16);
  const int8x16_t four = vdupq_n_s8(4);
  for (int h = 0; h < 2; ++h) {
    const uint8x16_t q0 = vld1q_u8(b + 32 + 32 * h), q1 = vld1q_u8(b + 48 + 32 * h);
    const uint8x16_t f[4][2] = {
        {vandq_u8(q0, three), vandq_u8(q1, three)},
        {vandq_u8(vshrq_n_u8(q0, 2), three), vandq_u8(vshrq_n_u8(q1, 2), three)},
        {vandq_u8(vshrq_n_u8(q0, 4), three), vandq_u8(vshrq_n_u8(q1, 4), three)},
        {vshrq_n_u8(q0, 6), vshrq_n_u8(q1, 6)}};
    for (int k = 0; k < 4; ++k) {
      // 4 where hmask's bit 4h + k is clear, else 0.
      const uint8x16_t bit = vdupq_n_u8(static_cast<uint8_t>(1u << (4 * h + k)));
      const int8x16_t sub0 = vbicq_s8(four, s8(vtstq_u8(m0, bit)));
      const int8x16_t sub1 = vbicq_s8(four, s8(vtstq_u8(m1, bit)));
      const int g = 8 * h + 2 * k;
      const int32x4_t p = dot32_scaled<D>(x[4 * h + k], vsubq_s8(s8(f[k][0]), sub0),
                                          vsubq_s8(s8(f[k][1]), sub1), sc[g] - 32, sc[g + 1] - 32);
      acc = vfmaq_n_f32(acc, vcvtq_f32_s32(p), d * x[4 * h + k].d);
    }
  }
}

// Q2_K: 256 values of 2 bits, 4-bit scale and min per 16; returns the min term.
template <class D>
inline float block_q2k(const uint8_t* b, const ActBlockQ8* x, const float* xs16, float32x4_t& acc) {
  const float d = f16_at(b + 80), dmin = f16_at(b + 82);
  const uint8x16_t three = vdupq_n_u8(3);
  float min_term = 0.0f;
  for (int g = 0; g < 16; ++g) min_term += static_cast<float>(b[g] >> 4) * xs16[g];
  for (int h = 0; h < 2; ++h) {
    const uint8x16_t q0 = vld1q_u8(b + 16 + 32 * h), q1 = vld1q_u8(b + 32 + 32 * h);
    const uint8x16_t f[4][2] = {
        {vandq_u8(q0, three), vandq_u8(q1, three)},
        {vandq_u8(vshrq_n_u8(q0, 2), three), vandq_u8(vshrq_n_u8(q1, 2), three)},
        {vandq_u8(vshrq_n_u8(q0, 4), three), vandq_u8(vshrq_n_u8(q1, 4), three)},
        {vshrq_n_u8(q0, 6), vshrq_n_u8(q1, 6)}};
    for (int k = 0; k < 4; ++k) {
      const int g = 8 * h + 2 * k;
      const int32x4_t p =
          dot32_scaled<D>(x[4 * h + k], s8(f[k][0]), s8(f[k][1]), b[g] & 0x0F, b[g + 1] & 0x0F);
      acc = vfmaq_n_f32(acc, vcvtq_f32_s32(p), d * x[4 * h + k].d);
    }
  }
  return -dmin * min_term;
}

// IQ4_XS: 256 values, 8 sub-blocks of 32 with 6-bit scales − 32, nibbles index kIq4nlValues.
template <class D>
inline void block_iq4xs(const uint8_t* b, const ActBlockQ8* x, int8x16_t table, float32x4_t& acc) {
  const float d = f16_at(b);
  uint16_t scales_h;
  std::memcpy(&scales_h, b + 2, 2);
  const uint8x16_t low4 = vdupq_n_u8(0x0F);
  for (int s = 0; s < 8; ++s) {
    const int ls = ((b[4 + s / 2] >> (4 * (s % 2))) & 0x0F) | (((scales_h >> (2 * s)) & 3) << 4);
    const uint8x16_t v = vld1q_u8(b + 8 + 16 * s);
    const int8x16_t w0 = vqtbl1q_s8(table, vandq_u8(v, low4));
    const int8x16_t w1 = vqtbl1q_s8(table, vshrq_n_u8(v, 4));
    acc = vfmaq_n_f32(acc, vcvtq_f32_s32(dot32<D>(x[s], w0, w1)),
                      d * static_cast<float>(ls - 32) * x[s].d);
  }
}

// The 32 fifth bits of Q5_0 / Q5_1 (bit j of qh: value j) as 0x10 / 0 bytes, values 0–15, 16–31.
inline void fifth_bits(const uint8_t* qhp, uint8x16_t& h0, uint8x16_t& h1) {
  uint32_t qh;
  std::memcpy(&qh, qhp, 4);
  const uint8x16_t bytes = vreinterpretq_u8_u32(vdupq_n_u32(qh));
  // Lane j takes byte j / 8 and tests bit j % 8.
  static const uint8_t kPick0[16] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};
  static const uint8_t kPick1[16] = {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3};
  static const uint8_t kBit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
  const uint8x16_t bit = vld1q_u8(kBit), sixteen = vdupq_n_u8(0x10);
  h0 = vandq_u8(vtstq_u8(vqtbl1q_u8(bytes, vld1q_u8(kPick0)), bit), sixteen);
  h1 = vandq_u8(vtstq_u8(vqtbl1q_u8(bytes, vld1q_u8(kPick1)), bit), sixteen);
}

// The 32-value types, one block: returns its min term (0 for the symmetric ones).
template <class D>
inline float block32(DType t, const uint8_t* b, const ActBlockQ8& x, const float* xs16,
                     int8x16_t table, float32x4_t& acc) {
  const uint8x16_t low4 = vdupq_n_u8(0x0F);
  const float d = f16_at(b);
  const float dx = d * x.d;
  switch (t) {
    case DType::IQ4_NL: {
      const uint8x16_t v = vld1q_u8(b + 2);
      const int8x16_t w0 = vqtbl1q_s8(table, vandq_u8(v, low4));
      const int8x16_t w1 = vqtbl1q_s8(table, vshrq_n_u8(v, 4));
      acc = vfmaq_n_f32(acc, vcvtq_f32_s32(dot32<D>(x, w0, w1)), dx);
      return 0.0f;
    }
    case DType::Q4_1: {
      const uint8x16_t v = vld1q_u8(b + 4);
      acc = vfmaq_n_f32(
          acc, vcvtq_f32_s32(dot32<D>(x, s8(vandq_u8(v, low4)), s8(vshrq_n_u8(v, 4)))), dx);
      return f16_at(b + 2) * (xs16[0] + xs16[1]);
    }
    default: {  // Q5_0, Q5_1
      const bool has_min = t == DType::Q5_1;
      const uint8_t* qhp = b + (has_min ? 4 : 2);
      uint8x16_t h0, h1;
      fifth_bits(qhp, h0, h1);
      const uint8x16_t v = vld1q_u8(qhp + 4);
      int8x16_t w0 = s8(vorrq_u8(vandq_u8(v, low4), h0));
      int8x16_t w1 = s8(vorrq_u8(vshrq_n_u8(v, 4), h1));
      if (!has_min) {
        w0 = vsubq_s8(w0, vdupq_n_s8(16));
        w1 = vsubq_s8(w1, vdupq_n_s8(16));
      }
      acc = vfmaq_n_f32(acc, vcvtq_f32_s32(dot32<D>(x, w0, w1)), dx);
      return has_min ? f16_at(b + 2) * (xs16[0] + xs16[1]) : 0.0f;
    }
  }
}

template <class D>
float row_dot(DType t, const uint8_t* row, int cols, const ActBlockQ8* xq, const float* xs16,
              int8x16_t table) {
  const int n = block_elems(t);
  const size_t bb = block_bytes(t);
  const int per = n / kQ8BlockSize;  // activation blocks per weight block
  float32x4_t acc = vdupq_n_f32(0.0f);
  float min_term = 0.0f;
  for (int wb = 0; wb < cols / n; ++wb) {
    const uint8_t* b = row + static_cast<size_t>(wb) * bb;
    const ActBlockQ8* x = xq + static_cast<size_t>(wb) * per;
    const float* xs = xs16 + static_cast<size_t>(wb) * (n / 16);
    switch (t) {
      case DType::Q4_K:
        min_term += block_q4k<D, false>(b, x, xs, acc);
        break;
      case DType::Q5_K:
        min_term += block_q4k<D, true>(b, x, xs, acc);
        break;
      case DType::Q6_K:
        block_q6k<D>(b, x, acc);
        break;
      case DType::Q3_K:
        block_q3k<D>(b, x, acc);
        break;
      case DType::Q2_K:
        min_term += block_q2k<D>(b, x, xs, acc);
        break;
      case DType::IQ4_XS:
        block_iq4xs<D>(b, x, table, acc);
        break;
      default:
        min_term += block32<D>(t, b, *x, xs, table, acc);
        break;
    }
  }
  return vaddvq_f32(acc) + min_term;
}

}  // namespace kqn

// KernelPath::gemv_kquant: rows [o_begin, o_end) of y = xq · Wᵀ (+ bias), one activation row.
template <class D>
void gemv_kquant(const ActBlockQ8* xq, const Matrix& w, int o_begin, int o_end, const float* bias,
                 float* y, Scratch& scratch) {
  const float* xs16 = kqn::activation_sums(xq, w.cols, scratch);
  const int8x16_t table = vld1q_s8(kIq4nlValues);
  for (int o = o_begin; o < o_end; ++o) {
    y[o] = kqn::row_dot<D>(w.type, w.row(o), w.cols, xq, xs16, table) + (bias ? bias[o] : 0.0f);
  }
}

}  // namespace
}  // namespace smolvlm::kernels::arm
