// Q8_0 × int8-activation GEMM (w8a8) with 512-bit registers: two 32-value blocks per register.
//
// With AVX-512 VNNI, vpdpbusd multiplies unsigned by signed bytes, so activations are offset to
// unsigned (x + 128) and the accumulator starts at −128·Σw (per 4-byte lane), which leaves
// Σ x·w exactly. Without VNNI (AVX-512BW, e.g. Skylake-SP) it is |w| × (x·sign w) with
// vpmaddubsw (pairs ≤ 2·127·127, no saturation) and vpmaddwd. Either way each block's int32 sum is
// scaled by d_w·d_x in float.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "kernels/kernel_path.h"
#include "kernels/q4_panels.h"
#include "kernels/x86/gemm_x86.h"
#include "kernels/x86/simd_x86.h"

namespace smolvlm::kernels::x86 {
// Internal linkage: every path's translation unit keeps its own copy, compiled for its own -m
// flags; shared inline copies could let the linker hand an AVX2 path AVX-512 code (SIGILL).
namespace {

// Two consecutive 32-byte blocks (or one, zero-padded) as one register.
inline __m512i load_two(const int8_t* a, const int8_t* b) {
  const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a));
  if (!b) return _mm512_zextsi256_si512(lo);
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo),
                            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b)), 1);
}

inline __m512 two_scales(float lo, float hi) {
  return _mm512_insertf32x8(_mm512_set1_ps(lo), _mm256_set1_ps(hi), 1);
}

inline float f16_scale(const uint8_t* blk) {
  uint16_t h;
  std::memcpy(&h, blk, 2);
  return _cvtsh_ss(h);
}

template <bool kVnni, int R, int C>
void micro_q8_512(const ActBlockQ8* const* x, const uint8_t* const* w, int blocks, float* out,
                  int ldo) {
  __m512 acc[R][C];
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
  }
  const __m512i offset = _mm512_set1_epi8(static_cast<char>(0x80));
  for (int b = 0; b < blocks; b += 2) {
    const bool pair = b + 1 < blocks;
    __m512i wq[C], wt[C];  // weights, and the VNNI correction or |w|
    __m512 wd[C];
    for (int c = 0; c < C; ++c) {
      const uint8_t* b0 = w[c] + static_cast<size_t>(b) * kQ8BlockBytes;
      const uint8_t* b1 = pair ? b0 + kQ8BlockBytes : nullptr;
      if constexpr (R == 1) prefetch_stream(b0);
      wq[c] = load_two(reinterpret_cast<const int8_t*>(b0 + 2),
                       b1 ? reinterpret_cast<const int8_t*>(b1 + 2) : nullptr);
      wd[c] = two_scales(f16_scale(b0), pair ? f16_scale(b1) : 0.0f);
      if constexpr (kVnni) {
        wt[c] = _mm512_sub_epi32(_mm512_setzero_si512(),
                                 _mm512_dpbusd_epi32(_mm512_setzero_si512(), offset, wq[c]));
      } else {
        wt[c] = _mm512_abs_epi8(wq[c]);
      }
    }
    for (int r = 0; r < R; ++r) {
      const __m512i xq = load_two(x[r][b].q, pair ? x[r][b + 1].q : nullptr);
      const __m512 xd = two_scales(x[r][b].d, pair ? x[r][b + 1].d : 0.0f);
      for (int c = 0; c < C; ++c) {
        __m512i sum;
        if constexpr (kVnni) {
          sum = _mm512_dpbusd_epi32(wt[c], _mm512_xor_si512(xq, offset), wq[c]);
        } else {
          const __mmask64 neg = _mm512_movepi8_mask(wq[c]);
          const __m512i xs = _mm512_mask_sub_epi8(xq, neg, _mm512_setzero_si512(), xq);
          sum = _mm512_madd_epi16(_mm512_maddubs_epi16(wt[c], xs), _mm512_set1_epi16(1));
        }
        acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(wd[c], xd), acc[r][c]);
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) out[r * ldo + c] = _mm512_reduce_add_ps(acc[r][c]);
  }
}

template <bool kVnni>
using MicroQ8x512 = void (*)(const ActBlockQ8* const*, const uint8_t* const*, int, float*, int);
constexpr int kQ8x512Rows = 4, kQ8x512Cols = 4;
template <bool kVnni, int R, int... Cs>
constexpr std::array<MicroQ8x512<kVnni>, sizeof...(Cs)> q8x512_row(
    std::integer_sequence<int, Cs...>) {
  return {&micro_q8_512<kVnni, R, Cs + 1>...};
}
template <bool kVnni, int... Rs>
constexpr auto q8x512_table(std::integer_sequence<int, Rs...>) {
  return std::array<std::array<MicroQ8x512<kVnni>, kQ8x512Cols>, sizeof...(Rs)>{
      q8x512_row<kVnni, Rs + 1>(std::make_integer_sequence<int, kQ8x512Cols>{})...};
}

// One pair of activation blocks prepared for the single-row (decode) GEMV: with the weights
// flipped to unsigned (w ⊕ 0x80 = w + 128) and the activations as the signed operand,
// vpdpbusd gives Σ(w + 128)·x; starting the accumulator at −128·Σx (per 4-byte lane) leaves
// Σ w·x. That correction depends only on x, so it is computed once per matmul, not per weight.
struct GemvPair {
  __m512i xq;    // two blocks of int8 activations
  __m512i corr;  // −128 · Σx over each 4-byte lane (weights offset by 128)
  __m512 xd;     // the two activation scales, 8 lanes each
};

inline void prepare_gemv(const ActBlockQ8* x, int blocks, GemvPair* out) {
  const __m512i zero = _mm512_setzero_si512();
  for (int b = 0; b < blocks; b += 2) {
    const bool pair = b + 1 < blocks;
    GemvPair& p = out[b / 2];
    p.xq = load_two(x[b].q, pair ? x[b + 1].q : nullptr);
    p.corr = _mm512_sub_epi32(
        zero, _mm512_dpbusd_epi32(zero, _mm512_set1_epi8(static_cast<char>(0x80)), p.xq));
    p.xd = two_scales(x[b].d, pair ? x[b + 1].d : 0.0f);
  }
}

// Both f16 block scales of a pair, widened in registers: lanes 0–7 the first, 8–15 the second.
inline __m512 weight_scales_pair(const uint8_t* b0, bool pair, size_t block_bytes) {
  uint16_t lo, hi = 0;
  std::memcpy(&lo, b0, 2);
  if (pair) std::memcpy(&hi, b0 + block_bytes, 2);
  const __m256i h =
      _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16(static_cast<short>(lo))),
                              _mm_set1_epi16(static_cast<short>(hi)), 1);
  return _mm512_cvtph_ps(h);
}

// A pair of Q8_0 blocks as unsigned bytes (w ⊕ 0x80 = w + 128), in activation order.
inline __m512i q8_pair_unsigned(const uint8_t* b0, bool pair) {
  return _mm512_xor_si512(
      load_two(reinterpret_cast<const int8_t*>(b0 + 2),
               pair ? reinterpret_cast<const int8_t*>(b0 + kQ8BlockBytes + 2) : nullptr),
      _mm512_set1_epi8(static_cast<char>(0x80)));
}

// C Q8_0 weight rows against one prepared activation row: one vpdpbusd per 64 weights.
template <int C>
void micro_gemv_vnni(const GemvPair* x, const uint8_t* const* w, int blocks, float* out) {
  __m512 acc[C];
  for (int c = 0; c < C; ++c) acc[c] = _mm512_setzero_ps();
  for (int b = 0; b < blocks; b += 2) {
    const GemvPair& xp = x[b / 2];
    const bool pair = b + 1 < blocks;
    for (int c = 0; c < C; ++c) {
      const uint8_t* b0 = w[c] + static_cast<size_t>(b) * kQ8BlockBytes;
      prefetch_stream(b0);
      const __m512i sum = _mm512_dpbusd_epi32(xp.corr, q8_pair_unsigned(b0, pair), xp.xq);
      acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum),
                               _mm512_mul_ps(weight_scales_pair(b0, pair, kQ8BlockBytes), xp.xd),
                               acc[c]);
    }
  }
  for (int c = 0; c < C; ++c) out[c] = _mm512_reduce_add_ps(acc[c]);
}

// The single-row (decode) product for Q8_0 weights, rows [o_begin, o_end).
inline void gemv_vnni(const ActBlockQ8* xq, const Matrix& w, int o_begin, int o_end,
                      const float* bias, float* y, Scratch& scratch) {
  const int blocks = w.cols / kQ8BlockSize;
  GemvPair* prepared = scratch.get<GemvPair>(0, static_cast<size_t>(blocks + 1) / 2);
  prepare_gemv(xq, blocks, prepared);
  gemv_rows<8>(w, o_begin, o_end, bias, y, [&]<int R>(const uint8_t* const* wr, float* out) {
    micro_gemv_vnni<R>(prepared, wr, blocks, out);
  });
}

// ---- Single-row (decode) Q4_0 GEMV, four blocks a step, on the file's 18-byte layout ---------
//
// Four Q4_0 blocks are 72 bytes: a 2-byte f16 scale, then 16 nibble bytes (byte j: value j low,
// value j + 16 high), four times. Both the nibbles and the scales start at even offsets, so one
// word permute of two overlapping 64-byte loads (bytes 0–63 and 8–71) gathers the four blocks'
// 64 nibble bytes, and one more puts each block's scale under its four int32 lanes. The low
// nibbles then meet activation elements 0–15 of each block and the high ones 16–31, which the
// activations are arranged for once per matmul. Per 128 weights: two loads, two permutes, three
// logic ops, two vpdpbusd, one convert, one multiply, one FMA (the pair kernel above needed
// twice the shuffles for half the weights).
struct Q4GemvQuad {
  __m512i lo, hi;  // elements 0–15 / 16–31 of four activation blocks, 16 bytes a block
  __m512i corr;    // −8 · Σx per 4-byte lane (the nibbles are the weight + 8)
  __m512 xd;       // each block's activation scale in its four lanes
};

inline void prepare_q4_quads(const ActBlockQ8* x, int blocks, Q4GemvQuad* out) {
  const __m512i zero = _mm512_setzero_si512(), eight = _mm512_set1_epi8(8);
  for (int b = 0; b < blocks; b += 4) {
    alignas(64) int8_t lo[64] = {}, hi[64] = {};
    alignas(64) float d[16] = {};
    for (int k = 0; k < 4 && b + k < blocks; ++k) {
      std::memcpy(lo + 16 * k, x[b + k].q, 16);
      std::memcpy(hi + 16 * k, x[b + k].q + 16, 16);
      for (int l = 0; l < 4; ++l) d[4 * k + l] = x[b + k].d;
    }
    Q4GemvQuad& q = out[b / 4];
    q.lo = _mm512_load_si512(lo);
    q.hi = _mm512_load_si512(hi);
    q.corr = _mm512_sub_epi32(
        zero, _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(zero, eight, q.lo), eight, q.hi));
    q.xd = _mm512_load_ps(d);
  }
}

// C Q4_0 weight rows against one prepared activation row.
template <int C>
void micro_gemv_q4_quads(const Q4GemvQuad* x, const uint8_t* const* w, int blocks, float* out) {
  // Word indices into (bytes 0–63, bytes 8–71): block k's nibbles are words 9k+1 … 9k+8 of the
  // 72 bytes; words 32–35 are words 28–31 of the second load (index 60–63).
  const __m512i nibble_words =
      _mm512_set_epi16(63, 62, 61, 60, 31, 30, 29, 28, 26, 25, 24, 23, 22, 21, 20, 19, 17, 16, 15,
                       14, 13, 12, 11, 10, 8, 7, 6, 5, 4, 3, 2, 1);
  // Block k's scale (word 9k) in words 4k … 4k+3 of the low 256 bits.
  const __m512i scale_words = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 27,
                                               27, 27, 27, 18, 18, 18, 18, 9, 9, 9, 9, 0, 0, 0, 0);
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  __m512 acc[C];
  for (int c = 0; c < C; ++c) acc[c] = _mm512_setzero_ps();
  for (int b = 0; b < blocks; b += 4) {
    const Q4GemvQuad& xq = x[b / 4];
    const size_t valid = static_cast<size_t>(std::min(4, blocks - b)) * kQ4BlockBytes;
    const bool whole = valid == 4 * kQ4BlockBytes;
    // A last, partial quad is read with masked loads, which never touch bytes past the row.
    const __mmask64 mask_a = whole || valid >= 64 ? ~__mmask64{0} : (__mmask64{1} << valid) - 1;
    const __mmask64 mask_b = whole       ? ~__mmask64{0}
                             : valid > 8 ? (__mmask64{1} << (valid - 8)) - 1
                                         : __mmask64{0};
    for (int c = 0; c < C; ++c) {
      const uint8_t* p = w[c] + static_cast<size_t>(b) * kQ4BlockBytes;
      prefetch_stream(p);
      const __m512i a = _mm512_maskz_loadu_epi8(mask_a, p);
      const __m512i bb = _mm512_maskz_loadu_epi8(mask_b, p + 8);
      const __m512i nib = _mm512_permutex2var_epi16(a, nibble_words, bb);
      const __m512i lo = _mm512_and_si512(nib, low4);
      const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(nib, 4), low4);
      const __m512i sum = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(xq.corr, lo, xq.lo), hi, xq.hi);
      const __m512 dw =
          _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(scale_words, a)));
      acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(dw, xq.xd), acc[c]);
    }
  }
  for (int c = 0; c < C; ++c) out[c] = _mm512_reduce_add_ps(acc[c]);
}

// KernelPath::gemv_q4 for the VNNI paths.
inline void gemv_q4_vnni(const ActBlockQ8* xq, const Matrix& w, int o_begin, int o_end,
                         const float* bias, float* y, Scratch& scratch) {
  const int blocks = w.cols / kQ8BlockSize;
  Q4GemvQuad* prepared = scratch.get<Q4GemvQuad>(0, static_cast<size_t>(blocks + 3) / 4);
  prepare_q4_quads(xq, blocks, prepared);
  gemv_rows<8>(w, o_begin, o_end, bias, y, [&]<int R>(const uint8_t* const* wr, float* out) {
    micro_gemv_q4_quads<R>(prepared, wr, blocks, out);
  });
}

// KernelPath::gemv_q4_panels for the VNNI paths: one panel (16 rows, one int32 lane each) at a
// time. Per block: four 64-byte loads (a panel is blocks · 288 bytes, so with an odd number of
// blocks every other panel starts half a cache line in: unaligned loads), each giving groups g (low
// nibbles) and g + 4 (high nibbles), eight vpdpbusd against the activations' 4-byte groups
// broadcast from memory, then −8·Σx, the 16 rows' scales and one FMA for all 16 rows.
inline void gemv_q4_panels_vnni(const ActBlockQ8* xq, const Matrix& w, int o_begin, int o_end,
                                const float* bias, float* y, Scratch& scratch) {
  const int blocks = w.cols / kQ8BlockSize;
  // 8 · Σx per block (the nibbles are w + 8)
  int32_t* eight_sum = scratch.get<int32_t>(0, static_cast<size_t>(blocks));
  for (int b = 0; b < blocks; ++b) {
    int32_t s = 0;
    for (int i = 0; i < kQ8BlockSize; ++i) s += xq[b].q[i];
    eight_sum[static_cast<size_t>(b)] = 8 * s;
  }
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const size_t panel_stride = q4_panel_stride(w.cols);
  if (o_begin >= o_end) return;
  // A panel's scales follow its nibbles: the cursor runs over both, a block's share at a time.
  StreamPrefetch prefetch(
      w.panels + static_cast<size_t>(o_begin / kQ4PanelRows) * panel_stride,
      w.panels + static_cast<size_t>((o_end + kQ4PanelRows - 1) / kQ4PanelRows) * panel_stride);
  for (int o0 = o_begin; o0 < o_end; o0 += kQ4PanelRows) {
    const uint8_t* nib = w.panels + static_cast<size_t>(o0 / kQ4PanelRows) * panel_stride;
    const uint8_t* scales = nib + static_cast<size_t>(blocks) * kQ4PanelNibbleBytes;
    __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int b = 0; b < blocks; ++b) {
      const uint8_t* nb = nib + static_cast<size_t>(b) * kQ4PanelNibbleBytes;
      prefetch.advance(kQ4PanelNibbleBytes + kQ4PanelScaleBytes);
      int32_t groups[8];  // the block's activations, 4 bytes a group
      std::memcpy(groups, xq[b].q, sizeof(groups));
      __m512i sum = _mm512_set1_epi32(-eight_sum[static_cast<size_t>(b)]);
      for (int g = 0; g < 4; ++g) {
        const __m512i v = _mm512_loadu_si512(nb + 64 * g);
        sum = _mm512_dpbusd_epi32(sum, _mm512_and_si512(v, low4), _mm512_set1_epi32(groups[g]));
        sum = _mm512_dpbusd_epi32(sum, _mm512_and_si512(_mm512_srli_epi16(v, 4), low4),
                                  _mm512_set1_epi32(groups[4 + g]));
      }
      const __m512 d =
          _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(
                            scales + static_cast<size_t>(b) * kQ4PanelScaleBytes))),
                        _mm512_set1_ps(xq[b].d));
      acc[b & 1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), d, acc[b & 1]);
    }
    __m512 out = _mm512_add_ps(acc[0], acc[1]);
    const int rows = std::min(kQ4PanelRows, o_end - o0);
    const __mmask16 mask = static_cast<__mmask16>((1u << rows) - 1u);
    if (bias) out = _mm512_add_ps(out, _mm512_maskz_loadu_ps(mask, bias + o0));
    _mm512_mask_storeu_ps(y + o0, mask, out);
  }
}

// ---- Many-row (prefill) Q8_0 GEMM with VNNI: weight panels packed per call -----------------
//
// A panel is 16 output columns of W, repacked so that one register holds, for one group of 4
// consecutive K values, those 4 weights of all 16 columns: vpdpbusd against 4 activation bytes
// broadcast to every lane then adds 4 products into each column's int32 lane. A block (32 K
// values) is 8 such groups: its sums stay in int32 through the block, and the float work
// (convert, scale d_w·d_x, add) is done once per block for 16 columns, not once per dot
// product. The micro-tile is up to 4 activation rows × 2 panels (8 int32 + 8 float
// accumulators). Activations are the unsigned operand (x ⊕ 0x80 = x + 128); each panel block
// carries −128·Σw per column, the int32 accumulator's starting value, which leaves Σ x·w exactly.
// Packing reads each weight once per call; it pays for itself from kQ8PanelMinRows rows up.
constexpr int kQ8PanelCols = 16;
constexpr int kQ8PanelMinRows = 8;
constexpr int kQ8PanelTileRows = 4;
// Blocks of K per slice: 2 panels × 12 blocks × 640 bytes = 15 KB of packed weights stay in L1
// while every row passes (all of K from L2 ran at half the speed on Zen 4 for K ≥ 768).
constexpr int kQ8PanelSliceBlocks = 12;

struct PanelBlock {
  int32_t q[8][kQ8PanelCols];  // group g, column c: weights 4g..4g+3 of the block (bytes)
  int32_t corr[kQ8PanelCols];  // −128 · Σ w over the block, per column
  float scale[kQ8PanelCols];   // d_w per column (0 for padding columns)
};

// Columns [o, o + cols) of W (cols ≤ 16; the rest zero) into `blocks` PanelBlocks. Per block,
// register k holds column k's 32 weights in its low half and column k + 8's in its high half;
// an 8×8 transpose of 4-byte groups inside each half (unpack 32, unpack 64, swap 128-bit
// lanes) leaves group g of all 16 columns in register g. (Gathers were ~3× slower on Zen 4.)
inline void pack_q8_panel(const Matrix& w, int o, int cols, int blocks, PanelBlock* out) {
  const __m512i offset = _mm512_set1_epi8(static_cast<char>(0x80));
  const __m512i zero = _mm512_setzero_si512();
  alignas(64) static const uint8_t kZeroBlock[kQ8BlockBytes] = {};
  const uint8_t* col[kQ8PanelCols];
  size_t step[kQ8PanelCols];  // padding columns read the zero block again and again
  for (int c = 0; c < kQ8PanelCols; ++c) {
    col[c] = c < cols ? w.row(o + c) : kZeroBlock;
    step[c] = c < cols ? kQ8BlockBytes : 0;
  }
  const __m512i lanes_lo = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13);
  const __m512i lanes_hi = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
  for (int b = 0; b < blocks; ++b) {
    PanelBlock& pb = out[b];
    __m512i r[8];
    for (int k = 0; k < 8; ++k) {
      const uint8_t* lo = col[k] + static_cast<size_t>(b) * step[k];
      const uint8_t* hi = col[k + 8] + static_cast<size_t>(b) * step[k + 8];
      r[k] = load_two(reinterpret_cast<const int8_t*>(lo + 2),
                      reinterpret_cast<const int8_t*>(hi + 2));
      pb.scale[k] = f16_scale(lo);
      pb.scale[k + 8] = f16_scale(hi);
    }
    __m512i t[8], u[8];
    for (int k = 0; k < 8; k += 2) {
      t[k] = _mm512_unpacklo_epi32(r[k], r[k + 1]);
      t[k + 1] = _mm512_unpackhi_epi32(r[k], r[k + 1]);
    }
    for (int k = 0; k < 8; k += 4) {
      u[k] = _mm512_unpacklo_epi64(t[k], t[k + 2]);
      u[k + 1] = _mm512_unpackhi_epi64(t[k], t[k + 2]);
      u[k + 2] = _mm512_unpacklo_epi64(t[k + 1], t[k + 3]);
      u[k + 3] = _mm512_unpackhi_epi64(t[k + 1], t[k + 3]);
    }
    __m512i sum = zero;
    for (int g = 0; g < 4; ++g) {
      const __m512i q0 = _mm512_permutex2var_epi64(u[g], lanes_lo, u[g + 4]);
      const __m512i q1 = _mm512_permutex2var_epi64(u[g], lanes_hi, u[g + 4]);
      _mm512_storeu_si512(pb.q[g], q0);
      _mm512_storeu_si512(pb.q[g + 4], q1);
      sum = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(sum, offset, q0), offset, q1);
    }
    _mm512_storeu_si512(pb.corr, _mm512_sub_epi32(zero, sum));
  }
}

// R activation rows (unsigned bytes, `ldx` apart; scales `lds` apart) × P panels over `blocks`
// blocks, added to the running sums acc[r·lda + p·16 + c] (c < 16) — or starting them, when
// `first`: K runs in slices so that a slice of the panels stays in L1 for every row.
template <int R, int P>
void micro_q8_panel(const uint8_t* xu, size_t ldx, const float* xs, size_t lds,
                    const PanelBlock* const* panels, int blocks, float* sums, int lda, bool first) {
  __m512 acc[R][P];
  for (int r = 0; r < R; ++r) {
    for (int p = 0; p < P; ++p) {
      acc[r][p] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(sums + r * lda + p * kQ8PanelCols);
    }
  }
  for (int b = 0; b < blocks; ++b) {
    __m512i isum[R][P];
    for (int p = 0; p < P; ++p) {
      const __m512i corr = _mm512_loadu_si512(panels[p][b].corr);
      for (int r = 0; r < R; ++r) isum[r][p] = corr;
    }
    const uint8_t* xb = xu + static_cast<size_t>(b) * kQ8BlockSize;
    for (int g = 0; g < 8; ++g) {
      __m512i wg[P];
      for (int p = 0; p < P; ++p) wg[p] = _mm512_loadu_si512(panels[p][b].q[g]);
      for (int r = 0; r < R; ++r) {
        int32_t four;
        std::memcpy(&four, xb + r * ldx + 4 * g, 4);
        const __m512i xr = _mm512_set1_epi32(four);
        for (int p = 0; p < P; ++p) isum[r][p] = _mm512_dpbusd_epi32(isum[r][p], xr, wg[p]);
      }
    }
    __m512 ws[P];
    for (int p = 0; p < P; ++p) ws[p] = _mm512_loadu_ps(panels[p][b].scale);
    for (int r = 0; r < R; ++r) {
      const __m512 xd = _mm512_set1_ps(xs[r * lds + static_cast<size_t>(b)]);
      for (int p = 0; p < P; ++p) {
        acc[r][p] =
            _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[r][p]), _mm512_mul_ps(ws[p], xd), acc[r][p]);
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int p = 0; p < P; ++p) _mm512_storeu_ps(sums + r * lda + p * kQ8PanelCols, acc[r][p]);
  }
}

using MicroQ8Panel = void (*)(const uint8_t*, size_t, const float*, size_t,
                              const PanelBlock* const*, int, float*, int, bool);
template <int... Rs>
constexpr std::array<std::array<MicroQ8Panel, 2>, sizeof...(Rs)> q8_panel_table(
    std::integer_sequence<int, Rs...>) {
  return {std::array<MicroQ8Panel, 2>{&micro_q8_panel<Rs + 1, 1>, &micro_q8_panel<Rs + 1, 2>}...};
}

// gemm_q8 for n ≥ kQ8PanelMinRows on the VNNI paths: rows [o_begin, o_end) of W, two panels
// (32 columns) packed at a time, then every activation row passes over them.
inline void gemm_q8_panels(const ActBlockQ8* xq, int n, const Matrix& w, int o_begin, int o_end,
                           const float* bias, float* y, int ldy, Scratch& scratch) {
  static constexpr auto table = q8_panel_table(std::make_integer_sequence<int, kQ8PanelTileRows>{});
  const int blocks = w.cols / kQ8BlockSize;
  // The activations as unsigned bytes and their scales, apart: the kernel broadcasts 4 bytes at
  // a time and needs no per-use offset.
  const size_t ldx = static_cast<size_t>(blocks) * kQ8BlockSize, lds = static_cast<size_t>(blocks);
  uint8_t* xu = scratch.get<uint8_t>(0, ldx * static_cast<size_t>(n));
  float* xs = scratch.get<float>(1, lds * static_cast<size_t>(n));
  const __m256i offset = _mm256_set1_epi8(static_cast<char>(0x80));
  for (size_t i = 0; i < static_cast<size_t>(n) * lds; ++i) {
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq[i].q));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(xu + i * kQ8BlockSize),
                        _mm256_xor_si256(q, offset));
    xs[i] = xq[i].d;
  }
  PanelBlock* packed = scratch.get<PanelBlock>(2, static_cast<size_t>(blocks) * 2);
  constexpr int R = kQ8PanelTileRows, C = 2 * kQ8PanelCols;
  // [n, 32]: the running sums of the panel pair
  float* sums = scratch.get<float>(3, static_cast<size_t>(n) * C);
  for (int o = o_begin; o < o_end; o += C) {
    const int cols = std::min(C, o_end - o);
    const int np = cols > kQ8PanelCols ? 2 : 1;
    pack_q8_panel(w, o, std::min(cols, kQ8PanelCols), blocks, packed);
    if (np == 2) pack_q8_panel(w, o + kQ8PanelCols, cols - kQ8PanelCols, blocks, packed + blocks);
    for (int kb = 0; kb < blocks; kb += kQ8PanelSliceBlocks) {
      const int nb = std::min(kQ8PanelSliceBlocks, blocks - kb);
      const PanelBlock* panels[2] = {packed + kb, packed + blocks + kb};
      for (int r0 = 0; r0 < n; r0 += R) {
        const int rows = std::min(R, n - r0);
        table[rows - 1][np - 1](xu + static_cast<size_t>(r0) * ldx + kb * kQ8BlockSize, ldx,
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

template <bool kVnni>
void gemm_q8_512(const ActBlockQ8* xq, int n, const Matrix& w, int o_begin, int o_end,
                 const float* bias, float* y, int ldy, Scratch& scratch) {
  if constexpr (kVnni) {
    if (n == 1) {
      gemv_vnni(xq, w, o_begin, o_end, bias, y, scratch);
      return;
    }
    if (n >= kQ8PanelMinRows) {
      gemm_q8_panels(xq, n, w, o_begin, o_end, bias, y, ldy, scratch);
      return;
    }
  }
  static constexpr auto table = q8x512_table<kVnni>(std::make_integer_sequence<int, kQ8x512Rows>{});
  constexpr int R = kQ8x512Rows, C = kQ8x512Cols;
  const int blocks = w.cols / kQ8BlockSize;
  constexpr int kColBlock = 64;  // weight rows kept in L2 while all activation rows pass
  gemm_tiles<R, C, kColBlock>(table, xq, n, blocks, w, o_begin, o_end, bias, y, ldy);
}

// The entries the AVX-512 paths share; each path adds its Q8_0 kernels (and bf16 ones).
// Internal linkage, like everything here: each path's translation unit builds its own table from
// code compiled with its own -m flags.
constexpr KernelPath avx512_entries(const char* name) {
  return {.name = name,
          .gemm_float = gemm_float<Avx512>,
          .quantize_row_q8 = quantize_row_q8,
          .axpy = axpy<Avx2>,
          .exp_shift_sum = exp_shift_sum<Avx512>,
          .gelu_tanh = gelu_tanh<Avx512>,
          .silu_mul = silu_mul<Avx512>,
          .row_max = row_max<Avx512>,
          .weighted_rows = weighted_rows<Avx512>,
          .gemm_kn = gemm_kn<Avx512>,
          .dot_rows = dot_rows<Avx512>,
          .layer_norm = layer_norm<Avx512>,
          .rms_norm = rms_norm<Avx512>};
}

}  // namespace
}  // namespace smolvlm::kernels::x86
