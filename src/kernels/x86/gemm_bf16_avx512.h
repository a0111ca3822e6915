// bf16 GEMM with AVX-512 BF16 (Zen 4, Cooper Lake, Sapphire Rapids): vdpbf16ps multiplies
// pairs of bf16 values and adds both products to a float32 lane, twice the multiply-adds of an
// fp32 FMA per instruction. Used for the vision encoder when it runs in bf16 (the precision
// Hugging Face runs SmolVLM2 in); sums stay float32.
//
// Layout: as the packed fp32 GEMM (gemm_x86.h), a slice of W is packed K-major into a panel of
// P = kVecs·16 output columns, but as bf16 pairs along K: panel[k/2][c] = {W[c][k], W[c][k+1]}.
// A micro-tile of R activation rows broadcasts one 32-bit pair of x per row against P/16 panel
// vectors. W is rounded to bf16 while packing (exact for weights that came from bf16); x arrives
// already rounded (to_bf16), one row every `ldx` values, K padded to even with zeros.
#pragma once

#include <immintrin.h>
#include <smolvlm/error.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <type_traits>
#include <utility>

#include "kernels/kernel_path.h"
#include "kernels/x86/gemm_x86.h"

namespace smolvlm::kernels::x86 {
// Internal linkage, as every path header (see simd_x86.h).
namespace {

// Round to nearest even, 32 floats at a time (vcvtne2ps2bf16), the tail in scalar code.
inline void to_bf16(const float* x, size_t n, uint16_t* out) {
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(x + i));
    _mm512_storeu_si512(out + i, reinterpret_cast<const __m512i&>(v));
  }
  for (; i < n; ++i) out[i] = f32_to_bf16(x[i]);
}

constexpr int kBf16Rows = 6, kBf16Vecs = 4, kBf16Cols = kBf16Vecs * 16;
constexpr int kBf16PairsPerChunk = 256;  // K chunk of 512: the panel is 256·64·4 B = 64 KB

template <int R>
void micro_bf16(const uint16_t* const* x, int p0, int pairs, const uint32_t* panel, float* out,
                int ldo, bool accumulate) {
  __m512 acc[R][kBf16Vecs];
  for (int r = 0; r < R; ++r) {
    for (int v = 0; v < kBf16Vecs; ++v)
      acc[r][v] = accumulate ? _mm512_loadu_ps(out + r * ldo + v * 16) : _mm512_setzero_ps();
  }
  for (int p = 0; p < pairs; ++p) {
    __m512bh b[kBf16Vecs];
    for (int v = 0; v < kBf16Vecs; ++v) {
      const __m512i raw = _mm512_loadu_si512(panel + static_cast<size_t>(p) * kBf16Cols + v * 16);
      b[v] = reinterpret_cast<const __m512bh&>(raw);
    }
    for (int r = 0; r < R; ++r) {
      uint32_t pair;
      std::memcpy(&pair, x[r] + 2 * static_cast<size_t>(p0 + p), 4);
      const __m512i a_raw = _mm512_set1_epi32(static_cast<int>(pair));
      const __m512bh a = reinterpret_cast<const __m512bh&>(a_raw);
      for (int v = 0; v < kBf16Vecs; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], a, b[v]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int v = 0; v < kBf16Vecs; ++v) _mm512_storeu_ps(out + r * ldo + v * 16, acc[r][v]);
  }
}

using MicroBf16 = void (*)(const uint16_t* const*, int, int, const uint32_t*, float*, int, bool);
template <int... Rs>
constexpr std::array<MicroBf16, sizeof...(Rs)> bf16_table(std::integer_sequence<int, Rs...>) {
  return {&micro_bf16<Rs + 1>...};
}

// Row `row` of W, weights [k0, k0 + 2·pairs), as bf16 pairs (zero past `cols`).
template <DType WT>
void pack_bf16_row(const uint8_t* row, int cols, int k0, int pairs, uint32_t* dst, size_t step) {
  const int k_end = std::min(cols, k0 + 2 * pairs);
  alignas(64) float f[32];
  alignas(64) uint16_t h[32];
  for (int k = k0; k < k0 + 2 * pairs; k += 32) {
    const int m = std::max(0, std::min(32, k_end - k));
    for (int i = 0; i < 32; i += 16) {
      if (i + 16 <= m) {
        if constexpr (WT == DType::F32) {
          _mm512_store_ps(f + i, _mm512_loadu_ps(reinterpret_cast<const float*>(row) + k + i));
        } else if constexpr (WT == DType::F16) {
          _mm512_store_ps(f + i, _mm512_cvtph_ps(_mm256_loadu_si256(
                                     reinterpret_cast<const __m256i*>(row + 2 * (k + i)))));
        } else {
          const __m512i w = _mm512_cvtepu16_epi32(
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * (k + i))));
          _mm512_store_ps(f + i, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
        }
      } else {
        for (int j = i; j < i + 16; ++j) {
          float v = 0.0f;
          if (j < m) {
            if constexpr (WT == DType::F32) {
              std::memcpy(&v, row + 4 * static_cast<size_t>(k + j), 4);
            } else {
              uint16_t raw;
              std::memcpy(&raw, row + 2 * static_cast<size_t>(k + j), 2);
              v = WT == DType::F16 ? f16_to_f32(raw) : bf16_to_f32(raw);
            }
          }
          f[j] = v;
        }
      }
    }
    const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_load_ps(f + 16), _mm512_load_ps(f));
    _mm512_store_si512(h, reinterpret_cast<const __m512i&>(v));
    const int np = std::min(32, k0 + 2 * pairs - k) / 2;
    for (int p = 0; p < np; ++p) {
      uint32_t two;
      std::memcpy(&two, h + 2 * p, 4);
      dst[static_cast<size_t>((k - k0) / 2 + p) * step] = two;
    }
  }
}

// 32 weights of one row from k as 16 bf16 pairs, in memory order (pair j = weights 2j, 2j+1).
template <DType WT>
__m512i load_bf16_pairs(const uint8_t* row, int k) {
  if constexpr (WT == DType::BF16) {
    return _mm512_loadu_si512(row + 2 * static_cast<size_t>(k));
  } else {
    __m512 lo, hi;
    if constexpr (WT == DType::F32) {
      lo = _mm512_loadu_ps(reinterpret_cast<const float*>(row) + k);
      hi = _mm512_loadu_ps(reinterpret_cast<const float*>(row) + k + 16);
    } else {
      const __m512i h = _mm512_loadu_si512(row + 2 * static_cast<size_t>(k));
      lo = _mm512_cvtph_ps(_mm512_castsi512_si256(h));
      hi = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1));
    }
    const __m512bh v = _mm512_cvtne2ps_pbh(hi, lo);
    return reinterpret_cast<const __m512i&>(v);
  }
}

// r[i] lane j ↔ r[j] lane i for 16 registers of 16 32-bit lanes: pairs within 128-bit lanes,
// then quads, then the 128-bit lanes themselves across groups of four registers.
inline void transpose_16x16_u32(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  __m512i u[4][4];  // u[g][m] lane L: column 4L + m of rows 4g .. 4g+3
  for (int g = 0; g < 4; ++g) {
    u[g][0] = _mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
    u[g][1] = _mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
    u[g][2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
    u[g][3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
  }
  for (int m = 0; m < 4; ++m) {
    const __m512i a = _mm512_shuffle_i32x4(u[0][m], u[1][m], 0x44);
    const __m512i b = _mm512_shuffle_i32x4(u[0][m], u[1][m], 0xEE);
    const __m512i c = _mm512_shuffle_i32x4(u[2][m], u[3][m], 0x44);
    const __m512i d = _mm512_shuffle_i32x4(u[2][m], u[3][m], 0xEE);
    r[m] = _mm512_shuffle_i32x4(a, c, 0x88);
    r[4 + m] = _mm512_shuffle_i32x4(a, c, 0xDD);
    r[8 + m] = _mm512_shuffle_i32x4(b, d, 0x88);
    r[12 + m] = _mm512_shuffle_i32x4(b, d, 0xDD);
  }
}

// The panel of W rows [o0, o0 + cols), weights [k0, k0 + 2·pairs): panel[p·P + c]. Sixteen rows
// × sixteen pairs at a time become one register transpose (the per-row packing's scattered
// 4-byte stores cost ~10% of a vision GEMM); ragged edges go through pack_bf16_row.
template <DType WT, int P>
void pack_bf16_panel(const Matrix& w, int o0, int cols, int k0, int pairs, uint32_t* panel) {
  const int whole_pairs = std::max(0, std::min(2 * pairs, w.cols - k0)) / 32 * 16;
  for (int c0 = 0; c0 < P; c0 += 16) {
    if (c0 + 16 > cols) {
      for (int c = c0; c < c0 + 16; ++c) {
        if (c < cols) {
          pack_bf16_row<WT>(w.row(o0 + c), w.cols, k0, pairs, panel + c, P);
        } else {
          for (int p = 0; p < pairs; ++p) panel[static_cast<size_t>(p) * P + c] = 0;
        }
      }
      continue;
    }
    for (int p = 0; p < whole_pairs; p += 16) {
      __m512i r[16];
      for (int i = 0; i < 16; ++i) r[i] = load_bf16_pairs<WT>(w.row(o0 + c0 + i), k0 + 2 * p);
      transpose_16x16_u32(r);
      for (int j = 0; j < 16; ++j)
        _mm512_storeu_si512(panel + static_cast<size_t>(p + j) * P + c0, r[j]);
    }
    if (whole_pairs < pairs) {
      for (int c = c0; c < c0 + 16; ++c)
        pack_bf16_row<WT>(w.row(o0 + c), w.cols, k0 + 2 * whole_pairs, pairs - whole_pairs,
                          panel + static_cast<size_t>(whole_pairs) * P + c, P);
    }
  }
}

// fn(std::integral_constant<DType, T>{}) for W's float type T: the one place the bf16 kernels
// turn a run-time type into their template argument.
template <class Fn>
void with_float_type(DType t, Fn&& fn) {
  switch (t) {
    case DType::F32:
      return fn(std::integral_constant<DType, DType::F32>{});
    case DType::F16:
      return fn(std::integral_constant<DType, DType::F16>{});
    case DType::BF16:
      return fn(std::integral_constant<DType, DType::BF16>{});
    default:
      throw Error("bf16 GEMM: quantised weights are not supported");
  }
}

template <DType WT>
void gemm_bf16_typed(const uint16_t* xb, int n, int ldx, const Matrix& w, int o_begin, int o_end,
                     const float* bias, float* y, int ldy, Scratch& scratch) {
  constexpr int R = kBf16Rows, P = kBf16Cols;
  static constexpr auto table = bf16_table(std::make_integer_sequence<int, R>{});
  const int pairs_total = (w.cols + 1) / 2;
  uint32_t* panel = scratch.get<uint32_t>(0, static_cast<size_t>(kBf16PairsPerChunk) * P);
  float* tile = scratch.get<float>(1, static_cast<size_t>(R) * P);
  constexpr size_t kElemBytes = WT == DType::F32 ? 4 : 2;
  for (int o0 = o_begin; o0 < o_end; o0 += P) {
    const int cols = std::min(P, o_end - o0);
    for (int p0 = 0; p0 < pairs_total; p0 += kBf16PairsPerChunk) {
      const int pairs = std::min(kBf16PairsPerChunk, pairs_total - p0);
      // The next chunk's weights into L2 while this one's rows pass: its 64 row pieces are
      // scattered (a row apart), which the hardware prefetcher does not follow, and a vision
      // layer's weights come from DRAM (13 MB a layer, 12 layers: far past L3).
      {
        int next_o = o0, next_p = p0 + kBf16PairsPerChunk;
        if (next_p >= pairs_total) next_o += P, next_p = 0;
        if (next_o < o_end) {
          const int next_pairs = std::min(kBf16PairsPerChunk, pairs_total - next_p);
          const size_t bytes = static_cast<size_t>(2 * next_pairs) * kElemBytes;
          for (int c = 0; c < std::min(P, o_end - next_o); ++c) {
            const uint8_t* src = w.row(next_o + c) + static_cast<size_t>(2 * next_p) * kElemBytes;
            for (size_t off = 0; off < bytes; off += 64) _mm_prefetch(src + off, _MM_HINT_T1);
          }
        }
      }
      pack_bf16_panel<WT, P>(w, o0, cols, 2 * p0, pairs, panel);
      panel_rows<R, P>(xb, static_cast<size_t>(ldx), n, cols, p0 == 0, y + o0, ldy, tile,
                       [&](int rows, const uint16_t* const* xr, float* out, int ldo, bool acc) {
                         table[rows - 1](xr, p0, pairs, panel, out, ldo, acc);
                       });
    }
    if (bias) {
      for (int r = 0; r < n; ++r) {
        float* yr = y + static_cast<size_t>(r) * ldy + o0;
        for (int c = 0; c < cols; ++c) yr[c] += bias[o0 + c];
      }
    }
  }
}

// Whole matrices packed once for many products (attention: each KV head's K and V serve every
// block of query rows). Layout: column blocks of P, each ceil(K/2) pair rows of P, zero-padded.
inline size_t bf16_panels_size(int K, int N) {
  return static_cast<size_t>((N + kBf16Cols - 1) / kBf16Cols) * static_cast<size_t>((K + 1) / 2) *
         kBf16Cols;
}

// B = Wᵀ: W's rows are the output columns (N = w.rows, K = w.cols), as gemm_bf16 packs them.
inline void pack_bf16_rows(const Matrix& w, uint32_t* panels) {
  constexpr int P = kBf16Cols;
  const int pairs = (w.cols + 1) / 2;
  for (int o0 = 0; o0 < w.rows; o0 += P) {
    uint32_t* panel = panels + static_cast<size_t>(o0 / P) * pairs * P;
    const int cols = std::min(P, w.rows - o0);
    with_float_type(w.type, [&](auto wt) {
      pack_bf16_panel<decltype(wt)::value, P>(w, o0, cols, 0, pairs, panel);
    });
  }
}

// B [K × N] float, K-major (attention's V rows in place, ldb apart): two B rows make one panel
// row of bf16 pairs, {B[k][c], B[k+1][c]} per column, interleaved with vpermw.
inline void pack_bf16_kn(const float* b, size_t ldb, int K, int N, uint32_t* panels) {
  constexpr int P = kBf16Cols;
  const int pairs = (K + 1) / 2;
  // lanes 2i, 2i+1 of the result ← element i of the first row, element i of the second
  alignas(64) uint16_t order[32];
  for (int i = 0; i < 16; ++i) {
    order[2 * i] = static_cast<uint16_t>(i);
    order[2 * i + 1] = static_cast<uint16_t>(16 + i);
  }
  const __m512i interleave = _mm512_load_si512(order);
  for (int o0 = 0; o0 < N; o0 += P) {
    uint32_t* panel = panels + static_cast<size_t>(o0 / P) * pairs * P;
    const int cols = std::min(P, N - o0);
    for (int p = 0; p < pairs; ++p) {
      const float* r0 = b + static_cast<size_t>(2 * p) * ldb + o0;
      const float* r1 = 2 * p + 1 < K ? r0 + ldb : nullptr;
      for (int c = 0; c < P; c += 16) {
        const int m = std::max(0, std::min(16, cols - c));
        const __mmask16 mask = static_cast<__mmask16>((1u << m) - 1u);
        const __m512 lo = _mm512_maskz_loadu_ps(mask, r0 + c);
        const __m512 hi = r1 ? _mm512_maskz_loadu_ps(mask, r1 + c) : _mm512_setzero_ps();
        const __m512bh two = _mm512_cvtne2ps_pbh(hi, lo);  // lo in the low half, hi in the high
        const __m512i pairs16 =
            _mm512_permutexvar_epi16(interleave, reinterpret_cast<const __m512i&>(two));
        _mm512_storeu_si512(panel + static_cast<size_t>(p) * P + c, pairs16);
      }
    }
  }
}

// y = x · B for B packed as above for packed_k rows; only the first K (≤ packed_k) take part
// (a causal block's visible keys). x bf16, rows ldx apart, K padded to even with zeros.
inline void gemm_bf16_panels(const uint16_t* xb, int n, int ldx, const uint32_t* panels,
                             int packed_k, int K, int N, float* y, int ldy, Scratch& scratch) {
  constexpr int R = kBf16Rows, P = kBf16Cols;
  static constexpr auto table = bf16_table(std::make_integer_sequence<int, R>{});
  const int packed_pairs = (packed_k + 1) / 2, pairs_total = (K + 1) / 2;
  float* tile = scratch.get<float>(0, static_cast<size_t>(R) * P);
  for (int o0 = 0; o0 < N; o0 += P) {
    const uint32_t* panel = panels + static_cast<size_t>(o0 / P) * packed_pairs * P;
    const int cols = std::min(P, N - o0);
    for (int p0 = 0; p0 < pairs_total; p0 += kBf16PairsPerChunk) {
      const int pairs = std::min(kBf16PairsPerChunk, pairs_total - p0);
      const uint32_t* chunk = panel + static_cast<size_t>(p0) * P;
      panel_rows<R, P>(xb, static_cast<size_t>(ldx), n, cols, p0 == 0, y + o0, ldy, tile,
                       [&](int rows, const uint16_t* const* xr, float* out, int ldo, bool acc) {
                         table[rows - 1](xr, p0, pairs, chunk, out, ldo, acc);
                       });
    }
  }
}

inline void gemm_bf16(const uint16_t* xb, int n, int ldx, const Matrix& w, int o_begin, int o_end,
                      const float* bias, float* y, int ldy, Scratch& scratch) {
  with_float_type(w.type, [&](auto wt) {
    gemm_bf16_typed<decltype(wt)::value>(xb, n, ldx, w, o_begin, o_end, bias, y, ldy, scratch);
  });
}

}  // namespace
}  // namespace smolvlm::kernels::x86
