// Decode (one activation row) for the formats/kquants.h types on AVX2 (the AVX-512 paths reuse
// it, with vpdpbusd where the path has VNNI). ref::kquant_row_dot is the twin.
//
// Q4_K, Q5_K and Q6_K have kernels of their own that work from the block bytes in registers,
// two weight rows at a time (each activation load is shared): the codes are unsigned (Q4_K
// 0..15, Q5_K 0..31, Q6_K 0..63 before its −32), so u8·s8 products need no sign trick, and each
// 32 codes meet one activation block. The integer sums of a block's eight 32-groups are
// gathered into one vector (lane g: group g), so one float multiply-add per block applies the
// eight float scales d·sc[g]·x.d[g]; the mins (Q4_K / Q5_K: dmin·m[g]·x.d[g]·Σx) and Q6_K's
// −32 (32·Σ sc·Σx per 16) come from the activation sums computed once per call.
//
// The other types are decoded a block at a time by the plain decoder into the common form
// (int8 values, a scale and a min per 16), then dotted 32 values a step.
#pragma once

#include <immintrin.h>

#include "formats/kquants.h"
#include "kernels/kernel_path.h"

namespace smolvlm::kernels::x86 {
// Internal linkage, as simd_x86.h: each path's translation unit keeps its own copy, compiled for
// its own -m flags (a shared inline copy could hand an AVX2-only CPU AVX-512 code).
namespace {

namespace kq {

inline __m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Σ of each 4 products u8·s8, as int32 (no saturation: our codes are at most 63).
inline __m256i dot_u8s8(__m256i u, __m256i s) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
#elif defined(__AVXVNNI__)
  return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), u, s);
#else
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

// Lane g of the result: the sum of v[g]'s eight lanes.
inline __m256i sum_each(const __m256i v[8]) {
  // a = [v0..v3: sums of lanes 0-3 | v0..v3: sums of lanes 4-7], b the same for v4..v7.
  const __m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
  const __m256i b = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
  return _mm256_add_epi32(_mm256_blend_epi32(a, b, 0xF0), _mm256_permute2x128_si256(a, b, 0x21));
}

// What the decode kernels need of the activation row, computed once per call.
struct ActRow {
  const ActBlockQ8* q;
  const float* d;        // per 32: the block scale
  const float* sum32;    // per 32: d · Σ q (the Q4_K / Q5_K mins)
  const int16_t* sum16;  // per 16: Σ q (Q6_K's −32)
};
// The three arrays live in `scratch` (slots 0 to 2), the calling participant's.
inline ActRow act_row(const ActBlockQ8* xq, int cols, Scratch& scratch) {
  const auto blocks = static_cast<size_t>(cols / kQ8BlockSize);
  float* d = scratch.get<float>(0, blocks);
  float* sum32 = scratch.get<float>(1, blocks);
  int16_t* sum16 = scratch.get<int16_t>(2, 2 * blocks);
  const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
  for (size_t b = 0; b < blocks; ++b) {
    // Sums of 4, then of 16 (lane 0 of each 128-bit half: the block's two 16s).
    __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, load32(xq[b].q)), ones16);
    s = _mm256_hadd_epi32(s, s);
    s = _mm256_hadd_epi32(s, s);
    const int s0 = _mm256_cvtsi256_si32(s), s1 = _mm256_extract_epi32(s, 4);
    d[b] = xq[b].d;
    sum32[b] = xq[b].d * static_cast<float>(s0 + s1);
    sum16[2 * b] = static_cast<int16_t>(s0);
    sum16[2 * b + 1] = static_cast<int16_t>(s1);
  }
  return {xq, d, sum32, sum16};
}

// Decode streams the weights from DRAM: the hardware prefetchers alone kept one thread at about
// half of the bandwidth a plain sequential read gets (they stop at each 4 KB page); asking for
// the bytes this far ahead doubled it (Zen 4, 2026-12-07).
constexpr int kPrefetchAhead = 2048;
inline void prefetch_ahead(const uint8_t* b, int bytes) {
  for (int o = 0; o < bytes; o += 64)
    _mm_prefetch(reinterpret_cast<const char*>(b + kPrefetchAhead + o), _MM_HINT_T0);
}

// The super-scales and the 6-bit scales and mins of a Q4_K / Q5_K block, as floats per 32-group.
struct Q4kScales {
  __m256 d, dmin, sc, m;
};
inline Q4kScales q4k_scales(const uint8_t* b) {
  // Bytes 0-3: d, dmin (f16); 4-15 the scales: A = 4..7, B = 8..11, C = 12..15, where
  // sc[j] = A[j] & 63, m[j] = B[j] & 63, sc[4 + j] = C[j] & 15 | A[j] >> 6 << 4 and
  // m[4 + j] = C[j] >> 4 | B[j] >> 6 << 4, j < 4.
  const __m128i s = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b));
  const __m128i p1 =
      _mm_shuffle_epi8(s, _mm_setr_epi8(4, 5, 6, 7, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15));
  const __m128i p2 =
      _mm_shuffle_epi8(s, _mm_setr_epi8(-1, -1, -1, -1, 4, 5, 6, 7, -1, -1, -1, -1, 8, 9, 10, 11));
  const __m128i low = _mm_and_si128(_mm_srlv_epi32(p1, _mm_setr_epi32(0, 0, 0, 4)),
                                    _mm_setr_epi32(0x3F3F3F3F, 0x0F0F0F0F, 0x3F3F3F3F, 0x0F0F0F0F));
  const __m128i high =
      _mm_and_si128(_mm_srli_epi32(p2, 2), _mm_setr_epi32(0, 0x30303030, 0, 0x30303030));
  const __m128i sm = _mm_or_si128(low, high);  // sc[0..7], m[0..7]
  const __m128 dd = _mm_cvtph_ps(s);
  return {_mm256_broadcastss_ps(dd), _mm256_broadcastss_ps(_mm_movehdup_ps(dd)),
          _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(sm)),
          _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_unpackhi_epi64(sm, sm)))};
}

// out[r] = rows[r] · x over `blocks` Q4_K (kFive: Q5_K) blocks.
template <bool kFive, int R>
inline void q4k_rows(const ActRow& x, const uint8_t* const* rows, int blocks, float* out) {
  constexpr size_t kBlockBytes = kFive ? 176 : 144;
  const __m256i nibble = _mm256_set1_epi8(0x0F), fifth = _mm256_set1_epi8(0x10);
  __m256 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  for (int wb = 0; wb < blocks; ++wb) {
    const ActBlockQ8* xb = x.q + 8 * wb;
    const __m256 xd = _mm256_loadu_ps(x.d + 8 * wb), xs = _mm256_loadu_ps(x.sum32 + 8 * wb);
    for (int r = 0; r < R; ++r) {
      const uint8_t* b = rows[r] + kBlockBytes * static_cast<size_t>(wb);
      const uint8_t* qs = b + (kFive ? 48 : 16);
      prefetch_ahead(b, static_cast<int>(kBlockBytes));
      __m256i qh = kFive ? load32(b + 16) : _mm256_setzero_si256();
      __m256i v[8];
      for (int c = 0; c < 4; ++c) {
        // Chunk c: low nibbles are group 2c, high nibbles group 2c + 1 (Q5_K: bits 2c and
        // 2c + 1 of qh are their fifth bits).
        const __m256i w = load32(qs + 32 * c);
        __m256i lo = _mm256_and_si256(w, nibble);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(w, 4), nibble);
        if constexpr (kFive) {
          lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(qh, 4), fifth));
          hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(qh, 3), fifth));
          qh = _mm256_srli_epi16(qh, 2);
        }
        v[2 * c] = dot_u8s8(lo, load32(xb[2 * c].q));
        v[2 * c + 1] = dot_u8s8(hi, load32(xb[2 * c + 1].q));
      }
      const Q4kScales s = q4k_scales(b);
      const __m256 scale = _mm256_mul_ps(_mm256_mul_ps(s.sc, s.d), xd);
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum_each(v)), scale, acc[r]);
      acc[r] = _mm256_fnmadd_ps(_mm256_mul_ps(s.m, s.dmin), xs, acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = hsum(acc[r]);
}

// The shuffle that spreads int16 scales 2k (low 128 bits) and 2k + 1 (high) over their lanes.
inline __m256i q6k_pair(int k) {
  const auto pair = [](int i) { return static_cast<short>((2 * i + 1) << 8 | 2 * i); };
  return _mm256_set_m128i(_mm_set1_epi16(pair(2 * k + 1)), _mm_set1_epi16(pair(2 * k)));
}

// out[r] = rows[r] · x over `blocks` Q6_K blocks.
template <int R>
inline void q6k_rows(const ActRow& x, const uint8_t* const* rows, int blocks, float* out) {
  constexpr size_t kBlockBytes = 210;
  const __m256i nibble = _mm256_set1_epi8(0x0F), two = _mm256_set1_epi8(0x30);
  const __m256i pairs[4] = {q6k_pair(0), q6k_pair(1), q6k_pair(2), q6k_pair(3)};
  __m256 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  for (int wb = 0; wb < blocks; ++wb) {
    const ActBlockQ8* xb = x.q + 8 * wb;
    const __m256 xd = _mm256_loadu_ps(x.d + 8 * wb);
    const __m256i xs = load32(x.sum16 + 16 * wb);
    for (int r = 0; r < R; ++r) {
      const uint8_t* b = rows[r] + kBlockBytes * static_cast<size_t>(wb);
      prefetch_ahead(b, static_cast<int>(kBlockBytes));
      const __m256i sc =
          _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 192)));
      // Per 32-group: Σ sc · Σx over its two 16s, for the codes' −32.
      const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(sc, xs), 5);
      __m256i v[8];
      for (int h = 0; h < 2; ++h) {
        // Half h: value 128h + 32k + j is a nibble of ql (k: which 32 bytes, low or high) and
        // bits 2k, 2k + 1 of qh[j]; its scales are 8h + 2k (j < 16) and 8h + 2k + 1.
        // Two literal shuffles: at -O1 the immediate of `h ? a : b` is not folded.
        const __m256i scales =
            h ? _mm256_permute4x64_epi64(sc, 0xEE) : _mm256_permute4x64_epi64(sc, 0x44);
        const __m256i ql0 = load32(b + 64 * h), ql1 = load32(b + 64 * h + 32);
        const __m256i qh = load32(b + 128 + 32 * h);
        const __m256i code[4] = {
            _mm256_or_si256(_mm256_and_si256(ql0, nibble),
                            _mm256_and_si256(_mm256_slli_epi16(qh, 4), two)),
            _mm256_or_si256(_mm256_and_si256(ql1, nibble),
                            _mm256_and_si256(_mm256_slli_epi16(qh, 2), two)),
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), nibble),
                            _mm256_and_si256(qh, two)),
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), nibble),
                            _mm256_and_si256(_mm256_srli_epi16(qh, 2), two))};
        for (int k = 0; k < 4; ++k) {
          const __m256i p = _mm256_maddubs_epi16(code[k], load32(xb[4 * h + k].q));
          v[4 * h + k] = _mm256_madd_epi16(p, _mm256_shuffle_epi8(scales, pairs[k]));
        }
      }
      const __m256i dot = _mm256_sub_epi32(sum_each(v), offset);
      const __m256 d = _mm256_set1_ps(_cvtsh_ss(static_cast<uint16_t>(b[208] | b[209] << 8)));
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_mul_ps(xd, d), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = hsum(acc[r]);
}

template <DType T, int R>
inline void rows_dot(const ActRow& x, const uint8_t* const* rows, int blocks, float* out) {
  if constexpr (T == DType::Q6_K) {
    q6k_rows<R>(x, rows, blocks, out);
  } else {
    q4k_rows<T == DType::Q5_K, R>(x, rows, blocks, out);
  }
}

// Rows [o_begin, o_end) kRows at a time, the rest one by one.
template <DType T>
inline void gemv_typed(const ActRow& x, const Matrix& w, int o_begin, int o_end, const float* bias,
                       float* y) {
  constexpr int kRows = 2;
  const int blocks = w.cols / 256;
  int o = o_begin;
  const auto finish = [&](int o0, const float* out, int n) {
    for (int r = 0; r < n; ++r) y[o0 + r] = out[r] + (bias ? bias[o0 + r] : 0.0f);
  };
  for (; o + kRows <= o_end; o += kRows) {
    const uint8_t* rows[kRows];
    float out[kRows];
    for (int r = 0; r < kRows; ++r) rows[r] = w.row(o + r);
    rows_dot<T, kRows>(x, rows, blocks, out);
    finish(o, out, kRows);
  }
  for (; o < o_end; ++o) {
    const uint8_t* row = w.row(o);
    float out;
    rows_dot<T, 1>(x, &row, blocks, &out);
    finish(o, &out, 1);
  }
}

// The other types: each block decoded into the common form, then dotted 32 values a step.
inline void gemv_unpacked(const ActBlockQ8* xq, const Matrix& w, int o_begin, int o_end,
                          const float* bias, float* y, Scratch& scratch) {
  const int n = block_elems(w.type);
  const size_t bb = block_bytes(w.type);
  const int wblocks = w.cols / n, groups = n / 16;
  const ActRow x = act_row(xq, w.cols, scratch);
  const __m256i ones = _mm256_set1_epi16(1);
  alignas(32) UnpackedBlock u;
  for (int o = o_begin; o < o_end; ++o) {
    const uint8_t* row = w.row(o);
    __m256 acc = _mm256_setzero_ps();
    float acc_min = 0.0f;
    for (int wb = 0; wb < wblocks; ++wb) {
      unpack_block(w.type, row + static_cast<size_t>(wb) * bb, u);
      const ActBlockQ8* xb = xq + static_cast<size_t>(wb) * (n / kQ8BlockSize);
      for (int k = 0; k < n / kQ8BlockSize; ++k) {
        const __m256i wv = load32(u.q + 32 * k);
        const __m256i xv = load32(xb[k].q);
        const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xv, wv));
        const __m256 f = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones));
        const __m256 sv = _mm256_set_m128(_mm_set1_ps(u.scale[2 * k + 1] * xb[k].d),
                                          _mm_set1_ps(u.scale[2 * k] * xb[k].d));
        acc = _mm256_fmadd_ps(f, sv, acc);
      }
      // The mins: Σ min · (dx · Σ xq) per 16 activations (that rounding, as before: files of
      // these types are held to llama.cpp's answers, and some of them part at near-ties).
      const size_t g0 = static_cast<size_t>(wb) * groups;
      for (int g = 0; g < groups; ++g)
        acc_min += u.min[g] * (x.d[(g0 + g) / 2] * static_cast<float>(x.sum16[g0 + g]));
    }
    y[o] = hsum(acc) + acc_min + (bias ? bias[o] : 0.0f);
  }
}

}  // namespace kq

// KernelPath::gemv_kquant: rows [o_begin, o_end) of y = xq · Wᵀ (+ bias), one activation row.
inline void gemv_kquant_avx2(const ActBlockQ8* xq, const Matrix& w, int o_begin, int o_end,
                             const float* bias, float* y, Scratch& scratch) {
  switch (w.type) {
    case DType::Q4_K:
      kq::gemv_typed<DType::Q4_K>(kq::act_row(xq, w.cols, scratch), w, o_begin, o_end, bias, y);
      return;
    case DType::Q5_K:
      kq::gemv_typed<DType::Q5_K>(kq::act_row(xq, w.cols, scratch), w, o_begin, o_end, bias, y);
      return;
    case DType::Q6_K:
      kq::gemv_typed<DType::Q6_K>(kq::act_row(xq, w.cols, scratch), w, o_begin, o_end, bias, y);
      return;
    default:
      kq::gemv_unpacked(xq, w, o_begin, o_end, bias, y, scratch);
  }
}

}  // namespace
}  // namespace smolvlm::kernels::x86
