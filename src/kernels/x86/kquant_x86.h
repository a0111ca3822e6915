// Decode (one activation row) for the formats/kquants.h types on AVX2 (the AVX-512 paths reuse
// it): each weight block is decoded into the common form (int8 values, a scale and a min per
// 16), Q4_K / Q5_K / Q6_K with SIMD shuffles and the others with the plain decoder, then dotted
// with the int8 activations by vpmaddubsw, 32 values a step. ref::kquant_row_dot is the twin.
#pragma once

#include <immintrin.h>

#include <cstring>
#include <vector>

#include "formats/kquants.h"
#include "kernels/kernel_path.h"

namespace smolvlm::kernels::x86 {
// Internal linkage, as simd_x86.h: each path's translation unit keeps its own copy, compiled for
// its own -m flags (a shared inline copy could hand an AVX2-only CPU AVX-512 code).
namespace {

namespace kq {

inline __m256i load32(const uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}
inline void store32(int8_t* p, __m256i v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
// Bits [shift, shift + bits) of every byte (shift by a variable count, per 16-bit lane, masked
// back to the byte).
inline __m256i byte_bits(__m256i v, int shift, int mask) {
  return _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(shift)),
                          _mm256_set1_epi8(static_cast<char>(mask)));
}
inline float half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

inline void unpack_q4k_q5k(DType t, const uint8_t* b, UnpackedBlock& u) {
  const float d = half(b), dmin = half(b + 2);
  const bool five = t == DType::Q5_K;
  const uint8_t* qs = b + (five ? 48 : 16);
  const __m256i qh = five ? load32(b + 16) : _mm256_setzero_si256();
  for (int c = 0; c < 4; ++c) {
    const __m256i v = load32(qs + 32 * c);
    __m256i lo = byte_bits(v, 0, 0x0F), hi = byte_bits(v, 4, 0x0F);
    if (five) {
      lo = _mm256_or_si256(lo, _mm256_slli_epi16(byte_bits(qh, 2 * c, 1), 4));
      hi = _mm256_or_si256(hi, _mm256_slli_epi16(byte_bits(qh, 2 * c + 1, 1), 4));
    }
    store32(u.q + 64 * c, lo);
    store32(u.q + 64 * c + 32, hi);
  }
  for (int s = 0; s < 8; ++s) {
    int sc, m;
    kquant_scale_min(b + 4, s, sc, m);
    u.scale[2 * s] = u.scale[2 * s + 1] = d * static_cast<float>(sc);
    u.min[2 * s] = u.min[2 * s + 1] = -(dmin * static_cast<float>(m));
  }
}

inline void unpack_q6k(const uint8_t* b, UnpackedBlock& u) {
  const __m256i off = _mm256_set1_epi8(32);
  for (int h = 0; h < 2; ++h) {
    const __m256i ql0 = load32(b + 64 * h), ql1 = load32(b + 64 * h + 32);
    const __m256i qh = load32(b + 128 + 32 * h);
    const __m256i low[4] = {byte_bits(ql0, 0, 0x0F), byte_bits(ql1, 0, 0x0F),
                            byte_bits(ql0, 4, 0x0F), byte_bits(ql1, 4, 0x0F)};
    for (int k = 0; k < 4; ++k) {
      const __m256i high = _mm256_slli_epi16(byte_bits(qh, 2 * k, 3), 4);
      store32(u.q + 128 * h + 32 * k, _mm256_sub_epi8(_mm256_or_si256(low[k], high), off));
    }
  }
  const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = half(b + 208);
  for (int g = 0; g < 16; ++g) {
    u.scale[g] = d * static_cast<float>(sc[g]);
    u.min[g] = 0.0f;
  }
}

inline void unpack(DType t, const uint8_t* b, UnpackedBlock& u) {
  switch (t) {
    case DType::Q4_K:
    case DType::Q5_K:
      unpack_q4k_q5k(t, b, u);
      return;
    case DType::Q6_K:
      unpack_q6k(b, u);
      return;
    default:
      unpack_block(t, b, u);
  }
}

}  // namespace kq

// KernelPath::gemv_kquant: rows [o_begin, o_end) of y = xq · Wᵀ (+ bias), one activation row.
inline void gemv_kquant_avx2(const ActBlockQ8* xq, const Matrix& w, int o_begin, int o_end,
                             const float* bias, float* y) {
  const int n = block_elems(w.type);
  const size_t bb = block_bytes(w.type);
  const int wblocks = w.cols / n, groups = n / 16;
  // dx · Σ xq over each 16 activations, for the mins.
  thread_local std::vector<float> xsum;
  xsum.resize(static_cast<size_t>(w.cols / 16));
  for (int b = 0; b < w.cols / kQ8BlockSize; ++b) {
    for (int h = 0; h < 2; ++h) {
      int s = 0;
      for (int i = 0; i < 16; ++i) s += xq[b].q[16 * h + i];
      xsum[static_cast<size_t>(2 * b + h)] = xq[b].d * static_cast<float>(s);
    }
  }
  const __m256i ones = _mm256_set1_epi16(1);
  alignas(32) UnpackedBlock u;
  for (int o = o_begin; o < o_end; ++o) {
    const uint8_t* row = w.row(o);
    __m256 acc = _mm256_setzero_ps();
    float acc_min = 0.0f;
    for (int wb = 0; wb < wblocks; ++wb) {
      kq::unpack(w.type, row + static_cast<size_t>(wb) * bb, u);
      const ActBlockQ8* xb = xq + static_cast<size_t>(wb) * (n / kQ8BlockSize);
      for (int k = 0; k < n / kQ8BlockSize; ++k) {
        const __m256i wv = kq::load32(reinterpret_cast<const uint8_t*>(u.q + 32 * k));
        const __m256i xv = kq::load32(reinterpret_cast<const uint8_t*>(xb[k].q));
        const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xv, wv));
        const __m256 f = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones));
        const __m256 sv = _mm256_set_m128(_mm_set1_ps(u.scale[2 * k + 1] * xb[k].d),
                                          _mm_set1_ps(u.scale[2 * k] * xb[k].d));
        acc = _mm256_fmadd_ps(f, sv, acc);
      }
      const float* xs = xsum.data() + static_cast<size_t>(wb) * groups;
      for (int g = 0; g < groups; ++g) acc_min += u.min[g] * xs[g];
    }
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    y[o] = _mm_cvtss_f32(s) + acc_min + (bias ? bias[o] : 0.0f);
  }
}

}  // namespace
}  // namespace smolvlm::kernels::x86
