// Many-row (prefill) Q8_0 GEMM with 256-bit registers: weight panels packed per call, for the
// paths without AVX-512 (AVX2, and AVX2 with AVX-VNNI).
//
// The layout of the VNNI panels (q8_avx512.h) at half the width: a panel is 8 output columns of
// W, repacked so that one register holds, for one group of 4 consecutive K values, those 4
// weights of all 8 columns; 4 activation bytes broadcast to every lane then meet them with one
// integer dot product per lane. A block's sums stay in int32 through its 8 groups, and the float
// work (convert, scale d_w·d_x, add) is done once per block for 8 columns instead of once per
// dot product, with no horizontal sums.
//
// Two ways to the int32 lane sums (DotQ8 below):
// - AVX2: |w| (unsigned) × x·sign(w) (signed) with vpmaddubsw, then vpmaddwd against ones.
//   Pairs are ≤ 2·128·127 = 32512 (w = −128 gives |w| = 128 as unsigned), no saturation; our
//   activations never hold −128, so x·sign(w) fits.
// - AVX-VNNI (VEX vpdpbusd, Alder Lake, the N100 class, Zen 5): the activations are the unsigned
//   operand (x ⊕ 0x80 = x + 128) and each panel block carries −128·Σw per column, the int32 sum's
//   starting value, which leaves Σ x·w exactly (as the AVX-512 VNNI panels).
// The micro-tile is up to 4 activation rows × 2 panels: 8 int32 accumulators, two weight
// registers (and their |w|), one broadcast: 16 ymm. The float sums live in a small buffer
// (one load, FMA and store per block for 8 columns).
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "kernels/kernel_path.h"
#include "kernels/x86/gemm_x86.h"

namespace smolvlm::kernels::x86 {
// Internal linkage: every path's translation unit keeps its own copy, compiled for its own -m
// flags; shared inline copies could let the linker hand an AVX2 path AVX-VNNI code (SIGILL).
namespace {

constexpr int kQ8Panel8Cols = 8;
// From this many activation rows the packing (each weight read once per call) pays for itself.
constexpr int kQ8Panel8MinRows = 8;
constexpr int kQ8Panel8TileRows = 4;
// Blocks of K per slice: 2 panels × 24 blocks × 320 bytes = 15 KB of packed weights stay in a
// 32 KB L1 while every row passes.
constexpr int kQ8Panel8SliceBlocks = 24;

struct Panel8Block {
  int32_t q[8][kQ8Panel8Cols];  // group g, column c: weights 4g..4g+3 of the block (bytes)
  int32_t corr[kQ8Panel8Cols];  // −128 · Σw over the block per column (the VNNI form only)
  float scale[kQ8Panel8Cols];   // d_w per column (0 for padding columns)
};

// How the int32 lane sums are made: kVnni picks AVX-VNNI's vpdpbusd (unsigned activations,
// −128·Σw start), otherwise vpmaddubsw / vpmaddwd on |w| and x·sign(w) (signed activations).
template <bool kVnni>
struct DotQ8 {
  // acc + Σ over each 4-byte lane of x·w, x the activation bytes (offset by 128 with VNNI).
  static __m256i add(__m256i acc, __m256i x, __m256i w, __m256i w_abs) {
    if constexpr (kVnni) {
#if defined(__AVXVNNI__)
      (void)w_abs;
      return _mm256_dpbusd_avx_epi32(acc, x, w);
#else
      static_assert(!kVnni, "the AVX-VNNI panels need -mavxvnni");
      return acc;
#endif
    } else {
      const __m256i pairs = _mm256_maddubs_epi16(w_abs, _mm256_sign_epi8(x, w));
      return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
    }
  }
};

// Group g (4 K values) of R activation rows (bytes `ldx` apart, the block at xblk) against P
// panels' block b, added to the int32 lane sums: the signed products of the Q8_0 and the K-quant
// panels alike (Block: any panel block with q[8][8]).
template <bool kVnni, int R, int P, class Block>
inline void add_signed_group(__m256i (&isum)[R][P], const Block* const* panels, int b, int g,
                             const uint8_t* xblk, size_t ldx) {
  __m256i wg[P], wabs[P];
  for (int p = 0; p < P; ++p) {
    wg[p] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panels[p][b].q[g]));
    if constexpr (!kVnni) wabs[p] = _mm256_abs_epi8(wg[p]);
  }
  for (int r = 0; r < R; ++r) {
    int32_t four;
    std::memcpy(&four, xblk + static_cast<size_t>(r) * ldx + 4 * static_cast<size_t>(g), 4);
    const __m256i xr = _mm256_set1_epi32(four);
    for (int p = 0; p < P; ++p)
      isum[r][p] = DotQ8<kVnni>::add(isum[r][p], xr, wg[p], kVnni ? wg[p] : wabs[p]);
  }
}

// Columns [o, o + cols) of W (cols ≤ 8; the rest zero) into `blocks` Panel8Blocks. Per block,
// register k holds column k's 32 weights; an 8×8 transpose of 4-byte groups (unpack 32, unpack
// 64, swap 128-bit lanes) leaves group g of all 8 columns in register g.
template <bool kVnni>
void pack_q8_panel8(const Matrix& w, int o, int cols, int blocks, Panel8Block* out) {
  alignas(32) static const uint8_t kZeroBlock[kQ8BlockBytes] = {};
  const uint8_t* col[kQ8Panel8Cols];
  size_t step[kQ8Panel8Cols];  // padding columns read the zero block again and again
  for (int c = 0; c < kQ8Panel8Cols; ++c) {
    col[c] = c < cols ? w.row(o + c) : kZeroBlock;
    step[c] = c < cols ? kQ8BlockBytes : 0;
  }
  for (int b = 0; b < blocks; ++b) {
    Panel8Block& pb = out[b];
    __m256i r[8];
    for (int k = 0; k < 8; ++k) {
      const uint8_t* blk = col[k] + static_cast<size_t>(b) * step[k];
      r[k] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
      uint16_t h;
      std::memcpy(&h, blk, 2);
      pb.scale[k] = _cvtsh_ss(h);
    }
    __m256i t[8], u[8];
    for (int k = 0; k < 8; k += 2) {
      t[k] = _mm256_unpacklo_epi32(r[k], r[k + 1]);
      t[k + 1] = _mm256_unpackhi_epi32(r[k], r[k + 1]);
    }
    // u[k..k+3]: groups 0/4, 1/5, 2/6, 3/7 (low / high 128 bits) of columns k..k+3.
    for (int k = 0; k < 8; k += 4) {
      u[k] = _mm256_unpacklo_epi64(t[k], t[k + 2]);
      u[k + 1] = _mm256_unpackhi_epi64(t[k], t[k + 2]);
      u[k + 2] = _mm256_unpacklo_epi64(t[k + 1], t[k + 3]);
      u[k + 3] = _mm256_unpackhi_epi64(t[k + 1], t[k + 3]);
    }
    __m256i sum = _mm256_setzero_si256();
    for (int g = 0; g < 4; ++g) {
      const __m256i q0 = _mm256_permute2x128_si256(u[g], u[g + 4], 0x20);
      const __m256i q1 = _mm256_permute2x128_si256(u[g], u[g + 4], 0x31);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(pb.q[g]), q0);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(pb.q[g + 4]), q1);
      if constexpr (kVnni) {
        const __m256i offset = _mm256_set1_epi8(static_cast<char>(0x80));
        sum = DotQ8<true>::add(DotQ8<true>::add(sum, offset, q0, q0), offset, q1, q1);
      }
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(pb.corr),
                        _mm256_sub_epi32(_mm256_setzero_si256(), sum));
  }
}

// R activation rows (bytes `ldx` apart; scales `lds` apart) × P panels over `blocks` blocks,
// added to the running sums sums[r·lda + p·8 + c] (c < 8) — or starting them, when `first`: K
// runs in slices so that a slice of the panels stays in L1 for every row.
template <bool kVnni, int R, int P>
void micro_q8_panel8(const uint8_t* xb, size_t ldx, const float* xs, size_t lds,
                     const Panel8Block* const* panels, int blocks, float* sums, int lda,
                     bool first) {
  if (first) {
    for (int r = 0; r < R; ++r) {
      for (int p = 0; p < P; ++p)
        _mm256_storeu_ps(sums + r * lda + p * kQ8Panel8Cols, _mm256_setzero_ps());
    }
  }
  for (int b = 0; b < blocks; ++b) {
    __m256i isum[R][P];
    for (int p = 0; p < P; ++p) {
      const __m256i start =
          kVnni ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panels[p][b].corr))
                : _mm256_setzero_si256();
      for (int r = 0; r < R; ++r) isum[r][p] = start;
    }
    const uint8_t* xblk = xb + static_cast<size_t>(b) * kQ8BlockSize;
    for (int g = 0; g < 8; ++g) add_signed_group<kVnni>(isum, panels, b, g, xblk, ldx);
    for (int p = 0; p < P; ++p) {
      const __m256 ws = _mm256_loadu_ps(panels[p][b].scale);
      for (int r = 0; r < R; ++r) {
        float* s = sums + r * lda + p * kQ8Panel8Cols;
        const __m256 d = _mm256_mul_ps(ws, _mm256_set1_ps(xs[r * lds + static_cast<size_t>(b)]));
        _mm256_storeu_ps(s, _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[r][p]), d, _mm256_loadu_ps(s)));
      }
    }
  }
}

template <bool kVnni>
using MicroQ8Panel8 = void (*)(const uint8_t*, size_t, const float*, size_t,
                               const Panel8Block* const*, int, float*, int, bool);
template <bool kVnni, int... Rs>
constexpr std::array<std::array<MicroQ8Panel8<kVnni>, 2>, sizeof...(Rs)> q8_panel8_table(
    std::integer_sequence<int, Rs...>) {
  return {std::array<MicroQ8Panel8<kVnni>, 2>{&micro_q8_panel8<kVnni, Rs + 1, 1>,
                                              &micro_q8_panel8<kVnni, Rs + 1, 2>}...};
}

// gemm_q8 for n ≥ kQ8Panel8MinRows: rows [o_begin, o_end) of W, two panels (16 columns) packed
// at a time, then every activation row passes over them.
template <bool kVnni>
void gemm_q8_panels8(const ActBlockQ8* xq, int n, const Matrix& w, int o_begin, int o_end,
                     const float* bias, float* y, int ldy, Scratch& scratch) {
  static constexpr auto table =
      q8_panel8_table<kVnni>(std::make_integer_sequence<int, kQ8Panel8TileRows>{});
  const int blocks = w.cols / kQ8BlockSize;
  // The activation bytes (offset to unsigned for VNNI) and their scales, apart: the kernel
  // broadcasts 4 bytes at a time.
  const size_t ldx = static_cast<size_t>(blocks) * kQ8BlockSize, lds = static_cast<size_t>(blocks);
  uint8_t* xb = scratch.get<uint8_t>(0, ldx * static_cast<size_t>(n));
  float* xs = scratch.get<float>(1, lds * static_cast<size_t>(n));
  const __m256i offset = _mm256_set1_epi8(static_cast<char>(kVnni ? 0x80 : 0));
  for (size_t i = 0; i < static_cast<size_t>(n) * lds; ++i) {
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq[i].q));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(xb + i * kQ8BlockSize),
                        _mm256_xor_si256(q, offset));
    xs[i] = xq[i].d;
  }
  Panel8Block* packed = scratch.get<Panel8Block>(2, static_cast<size_t>(blocks) * 2);
  constexpr int R = kQ8Panel8TileRows, C = 2 * kQ8Panel8Cols;
  // [n, 16]: the running sums of the panel pair
  float* sums = scratch.get<float>(3, static_cast<size_t>(n) * C);
  for (int o = o_begin; o < o_end; o += C) {
    const int cols = std::min(C, o_end - o);
    const int np = cols > kQ8Panel8Cols ? 2 : 1;
    pack_q8_panel8<kVnni>(w, o, std::min(cols, kQ8Panel8Cols), blocks, packed);
    if (np == 2) {
      pack_q8_panel8<kVnni>(w, o + kQ8Panel8Cols, cols - kQ8Panel8Cols, blocks, packed + blocks);
    }
    for (int kb = 0; kb < blocks; kb += kQ8Panel8SliceBlocks) {
      const int nb = std::min(kQ8Panel8SliceBlocks, blocks - kb);
      const Panel8Block* panels[2] = {packed + kb, packed + blocks + kb};
      for (int r0 = 0; r0 < n; r0 += R) {
        const int rows = std::min(R, n - r0);
        table[rows - 1][np - 1](xb + static_cast<size_t>(r0) * ldx + kb * kQ8BlockSize, ldx,
                                xs + static_cast<size_t>(r0) * lds + kb, lds, panels, nb,
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

// KernelPath::gemm_q8 for the 256-bit paths: the panels from kQ8Panel8MinRows rows, the
// dot-product tiles (gemm_x86.h) below, the single-row stream included.
template <bool kVnni>
void gemm_q8_avx2_panels(const ActBlockQ8* xq, int n, const Matrix& w, int o_begin, int o_end,
                         const float* bias, float* y, int ldy, Scratch& scratch) {
  if (n >= kQ8Panel8MinRows)
    return gemm_q8_panels8<kVnni>(xq, n, w, o_begin, o_end, bias, y, ldy, scratch);
  gemm_q8(xq, n, w, o_begin, o_end, bias, y, ldy, scratch);
}

}  // namespace
}  // namespace smolvlm::kernels::x86
