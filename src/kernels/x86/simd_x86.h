// Thin vector-register wrappers so one kernel template serves AVX2 (8 floats) and AVX-512
// (16 floats). Included only by translation units compiled with the matching -m flags.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace smolvlm::kernels::x86 {
// Internal linkage: every path's translation unit keeps its own copy, compiled for its own -m
// flags; shared inline copies could let the linker hand an AVX2 path AVX-512 code (SIGILL).
namespace {

// How far ahead of the bytes being read a single-row (decode) product asks for weight cache
// lines. Decode streams ~140 MB of weights per token: the hardware prefetcher alone kept one
// Zen 4 core at ~8 GB/s from DRAM; requesting lines ~12 KB ahead into L2 brought it to ~30 GB/s
// (microbenchmark over a 120 MB Q8_0 matrix). Only single-row kernels use it: in a GEMM the
// weights are re-read from cache by every row block.
constexpr int kStreamPrefetchBytes = 12 * 1024;

// Requests the cache lines `kStreamPrefetchBytes` past p .. p + 127 (a 64-weight step).
inline void prefetch_stream(const uint8_t* p) {
  _mm_prefetch(reinterpret_cast<const char*>(p) + kStreamPrefetchBytes, _MM_HINT_T1);
  _mm_prefetch(reinterpret_cast<const char*>(p) + kStreamPrefetchBytes + 64, _MM_HINT_T1);
}

// A software prefetch cursor over the bytes one thread of a decode product reads in order:
// [begin, end), then [then, then_end) (the next piece the same thread reads, often another
// matrix; may be empty), advanced by the bytes the kernel consumes. prefetch_stream above runs a
// fixed distance past the address being read: where a kernel reads two interleaved regions (the
// Q4_0 panels' nibbles, then their scales) it skips lines, and at the end of a share it requests
// up to 12 KB its thread never reads. The cursor requests each line once, stops at the end (or
// jumps to the next piece), and starts by requesting the first kStreamPrefetchBytes.
class StreamPrefetch {
 public:
  StreamPrefetch(const uint8_t* begin, const uint8_t* end, const uint8_t* then = nullptr,
                 const uint8_t* then_end = nullptr)
      : p_(line_of(begin)), end_(end), then_(then), then_end_(then_end) {
    advance(kStreamPrefetchBytes);
  }
  // Requests the lines of the next `bytes` bytes past the cursor (call it as that many bytes
  // are read).
  void advance(size_t bytes) {
    budget_ += bytes;
    while (budget_ >= 64) {
      if (p_ >= end_) {
        if (!then_ || then_ >= then_end_) return;
        p_ = line_of(then_);
        end_ = then_end_;
        then_ = nullptr;
      }
      _mm_prefetch(reinterpret_cast<const char*>(p_), _MM_HINT_T1);
      p_ += 64;
      budget_ -= 64;
    }
  }

 private:
  static const uint8_t* line_of(const uint8_t* p) {
    return reinterpret_cast<const uint8_t*>(reinterpret_cast<uintptr_t>(p) & ~uintptr_t{63});
  }
  const uint8_t* p_;
  const uint8_t* end_;
  const uint8_t* then_;
  const uint8_t* then_end_;
  size_t budget_ = 0;
};

struct Avx2 {
  static constexpr int kLanes = 8;
  static constexpr int kRows = 3;  // activation rows per micro-tile (16 ymm registers)
  static constexpr int kCols = 4;  // weight rows per micro-tile
  using F = __m256;
  static F zero() { return _mm256_setzero_ps(); }
  static F set1(float v) { return _mm256_set1_ps(v); }
  static F load(const float* p) { return _mm256_loadu_ps(p); }
  static F load_f16(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static F load_bf16(const uint16_t* p) {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
  }
  static F fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static void store(float* p, F v) { _mm256_storeu_ps(p, v); }
  // Packed GEMM micro-tile: kTileRows × (kTileVecs · kLanes) accumulators.
  static constexpr int kTileRows = 6, kTileVecs = 2;
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F sub(F a, F b) { return _mm256_sub_ps(a, b); }
  static F div(F a, F b) { return _mm256_div_ps(a, b); }
  static F max(F a, F b) { return _mm256_max_ps(a, b); }
  static F min(F a, F b) { return _mm256_min_ps(a, b); }
  static F round(F a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // 2^n for integral-valued n in [-126, 127].
  static F pow2(F n) {
    const __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_castsi256_ps(e);
  }
  static float sum(F v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  // kLanes vectors in, one out: lane i = the sum of v[i]'s lanes (two rounds of hadd, then
  // the 128-bit halves), instead of kLanes horizontal sums.
  static F transpose_sums(const F* v) {
    const __m256 a = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
    const __m256 b = _mm256_hadd_ps(_mm256_hadd_ps(v[4], v[5]), _mm256_hadd_ps(v[6], v[7]));
    // a: per 128-bit half h, sums of v0..v3 over that half; b: the same for v4..v7.
    return _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
  }
};

#if defined(__AVX512F__)
struct Avx512 {
  static constexpr int kLanes = 16;
  static constexpr int kRows = 4;  // 4 × 6 accumulators + 4 activations + 1 weight of 32 zmm
  static constexpr int kCols = 6;
  using F = __m512;
  static F zero() { return _mm512_setzero_ps(); }
  static F set1(float v) { return _mm512_set1_ps(v); }
  static F load(const float* p) { return _mm512_loadu_ps(p); }
  static F load_f16(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static F load_bf16(const uint16_t* p) {
    const __m512i w =
        _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
  }
  static F fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
  static constexpr int kTileRows = 6, kTileVecs = 4;
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F sub(F a, F b) { return _mm512_sub_ps(a, b); }
  static F div(F a, F b) { return _mm512_div_ps(a, b); }
  static F max(F a, F b) { return _mm512_max_ps(a, b); }
  static F min(F a, F b) { return _mm512_min_ps(a, b); }
  static F round(F a) {
    return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  static F pow2(F n) {
    const __m512i e =
        _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_castsi512_ps(e);
  }
  static float sum(F v) {
    F t = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0x4E));  // swap 256-bit halves
    t = _mm512_add_ps(t, _mm512_shuffle_f32x4(t, t, 0xB1));    // swap 128-bit quarters
    __m128 s = _mm512_castps512_ps128(t);
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  // Sixteen vectors in, one out: lane i = the sum of v[i]'s lanes. A tree of unpacks and
  // 128-bit shuffles (45 instructions) instead of sixteen horizontal sums (~130).
  static F transpose_sums(const F* v) {
    F t[8], u[4], w[2];
    for (int i = 0; i < 8; ++i)  // per 128-bit lane: a0+a2, b0+b2, a1+a3, b1+b3
      t[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]),
                           _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
    for (int i = 0; i < 4; ++i) {  // per 128-bit lane: the lane's sums of four vectors
      const __m512d a = _mm512_castps_pd(t[2 * i]), b = _mm512_castps_pd(t[2 * i + 1]);
      u[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)),
                           _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
    }
    for (int i = 0; i < 2; ++i)  // 128-bit lanes L0+L1, L2+L3 of two u's
      w[i] = _mm512_add_ps(_mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], 0x88),
                           _mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], 0xDD));
    return _mm512_add_ps(_mm512_shuffle_f32x4(w[0], w[1], 0x88),
                         _mm512_shuffle_f32x4(w[0], w[1], 0xDD));
  }
};
#endif

// exp(x) for float32 lanes: x = n·ln2 + r with |r| ≤ ln2/2, e^r by a degree-6 polynomial
// (Cephes' coefficients), times 2^n. About 1 ulp; inputs below −87 give 0-ish, above 88 clamp.
template <class S>
inline typename S::F vexp(typename S::F x) {
  x = S::min(S::max(x, S::set1(-87.0f)), S::set1(88.0f));
  const typename S::F n = S::round(S::mul(x, S::set1(1.44269504088896341f)));
  typename S::F r = S::sub(x, S::mul(n, S::set1(0.693359375f)));
  r = S::sub(r, S::mul(n, S::set1(-2.12194440e-4f)));
  typename S::F p = S::set1(1.9875691500e-4f);
  p = S::fma(p, r, S::set1(1.3981999507e-3f));
  p = S::fma(p, r, S::set1(8.3334519073e-3f));
  p = S::fma(p, r, S::set1(4.1665795894e-2f));
  p = S::fma(p, r, S::set1(1.6666665459e-1f));
  p = S::fma(p, r, S::set1(5.0000001201e-1f));
  p = S::fma(p, S::mul(r, r), S::add(r, S::set1(1.0f)));
  return S::mul(p, S::pow2(n));
}

}  // namespace
}  // namespace smolvlm::kernels::x86
