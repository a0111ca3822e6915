// Single-row (decode) Q8_0 product with 256-bit registers, for the AVX2 paths: 4 weight rows at
// a time against the quantised activation row, |w| (unsigned) × x·sign(w) with vpmaddubsw, one
// float FMA per block and row. Its software prefetch is a cursor over the thread's own rows
// (StreamPrefetch), then over the next piece the thread reads (q → k → v, gate → up), instead of a
// fixed distance past the row being read (gemm_q8's single-row tiles), which requested lines past
// the end of every share and none at the start of the next piece. Measured on a shared 2-vCPU
// Zen 4 (2 threads, avx2): decode the same as the tiles within the noise (Q8_0 ~154 tok/s both);
// it was the Q4_0 panels' cursor (q4_panels_avx2.h) that moved.
#pragma once

#include <immintrin.h>

#include "kernels/gemm_driver.h"
#include "kernels/kernel_path.h"
#include "kernels/x86/gemm_x86.h"
#include "kernels/x86/simd_x86.h"

namespace smolvlm::kernels::x86 {
// Internal linkage: every path's translation unit keeps its own copy, compiled for its own -m
// flags (see simd_x86.h).
namespace {

template <int C>
void micro_gemv_q8_avx2(const ActBlockQ8* x, const uint8_t* const* w, int blocks, float* out,
                        StreamPrefetch& prefetch) {
  __m256 acc[C];
  for (int c = 0; c < C; ++c) acc[c] = _mm256_setzero_ps();
  const __m256i ones = _mm256_set1_epi16(1);
  for (int b = 0; b < blocks; ++b) {
    prefetch.advance(C * kQ8BlockBytes);
    const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].q));
    const float xd = x[b].d;
    for (int c = 0; c < C; ++c) {
      const uint8_t* blk = w[c] + static_cast<size_t>(b) * kQ8BlockBytes;
      const __m256i wq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
      const __m256i pairs =
          _mm256_maddubs_epi16(_mm256_sign_epi8(wq, wq), _mm256_sign_epi8(xq, wq));
      const __m256 sum = _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, ones));
      acc[c] = _mm256_fmadd_ps(sum, _mm256_set1_ps(half_to_float(blk) * xd), acc[c]);
    }
  }
  for (int c = 0; c < C; ++c) out[c] = Avx2::sum(acc[c]);
}

// KernelPath::gemv_q8 for the AVX2 paths.
inline void gemv_q8_avx2(const ActBlockQ8* xq, const Matrix& w, int o_begin, int o_end,
                         const float* bias, float* y, const uint8_t* then,
                         const uint8_t* then_end) {
  if (o_begin >= o_end) return;
  const int blocks = w.cols / kQ8BlockSize;
  StreamPrefetch prefetch(w.row(o_begin), w.row(o_end - 1) + row_bytes(DType::Q8_0, w.cols), then,
                          then_end);
  gemv_rows<4>(w, o_begin, o_end, bias, y, [&]<int R>(const uint8_t* const* wr, float* out) {
    micro_gemv_q8_avx2<R>(xq, wr, blocks, out, prefetch);
  });
}

}  // namespace
}  // namespace smolvlm::kernels::x86
