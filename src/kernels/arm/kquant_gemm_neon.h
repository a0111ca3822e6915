// Prefill (several activation rows) for the formats/kquants.h types on the NEON paths (neon,
// dotprod, i8mm; each path's .cpp instantiates it with its own 16-product dot, kquant_neon.h):
// w·a8 integer products, as the x86 int8 panels do, where these paths used to widen each slice
// of rows to float and run the float GEMM on float activations.
//
// Each thread's rows are unpacked 16 at a time into the common form (formats/kquants.h), one
// 64-byte KqRowBlock per 32 values: the int8 codes, the two halves' scales and the mins as a
// vector {min0, min1, 0, 0}. Then every 4 activation rows pass over them 4 weight rows at a
// time (16 float32x4 accumulators):
//   per half h:  acc += float(Σ q·x) · scale_h · dx     (one dot for both halves where the
//                                                        type's scale changes every 32 values)
//   mins:        acc += {min0, min1, 0, 0} · {dx·Σx0, dx·Σx1, 0, 0}
// and the four lanes are summed at the end. The twin is ref::matmul's w·a8 sums; these differ
// from it only in float rounding order.
#pragma once

#if !defined(__aarch64__)
#error "kquant_gemm_neon.h is for AArch64 only"
#endif

#include <arm_neon.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>

#include "formats/kquants.h"
#include "kernels/arm/kquant_neon.h"
#include "kernels/kernel_path.h"
#include "kernels/q4k_panels.h"

namespace smolvlm::kernels::arm {
namespace {

// 32 values of a weight row in the common form.
struct alignas(64) KqRowBlock {
  int8_t q[32];
  float scale[2];  // per 16-value half
  float unused[2];
  float min[4];  // {min0, min1, 0, 0}
};
static_assert(sizeof(KqRowBlock) == 64);

constexpr int kKqRows = 4, kKqCols = 4;  // the micro-tile: activation rows × weight rows
constexpr int kKqColBlock = 16;          // weight rows unpacked at a time

// acc + b · v[lane]; the lane is a constant once the callers' loops are unrolled.
inline float32x4_t fma_lane(float32x4_t acc, float32x4_t b, float32x4_t v, int lane) {
  switch (lane) {
    case 0:
      return vfmaq_laneq_f32(acc, b, v, 0);
    case 1:
      return vfmaq_laneq_f32(acc, b, v, 1);
    case 2:
      return vfmaq_laneq_f32(acc, b, v, 2);
    default:
      return vfmaq_laneq_f32(acc, b, v, 3);
  }
}

// out[r·ldo + c] = x[r] · w[c] over `blocks` blocks, for R activation rows (xm[r]: per block
// {dx·Σx0, dx·Σx1, 0, 0}) and C unpacked weight rows. kPer32: both halves share the scale.
template <class D, bool kPer32, bool kMin, int R, int C>
void micro_kq_rows(const ActBlockQ8* const* x, const float* const* xm, const KqRowBlock* const* w,
                   int blocks, float* out, int ldo) {
  static_assert(R <= 4);
  float32x4_t acc[R][C];
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) acc[r][c] = vdupq_n_f32(0.0f);
  }
  const int32x4_t zero = vdupq_n_s32(0);
  for (int b = 0; b < blocks; ++b) {
    int8x16_t x0[R], x1[R];
    float dx[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int r = 0; r < R; ++r) {
      x0[r] = vld1q_s8(x[r][b].q);
      x1[r] = vld1q_s8(x[r][b].q + 16);
      dx[r] = x[r][b].d;
    }
    const float32x4_t dxv = vld1q_f32(dx);
    for (int c = 0; c < C; ++c) {
      const KqRowBlock& wb = w[c][b];
      const int8x16_t w0 = vld1q_s8(wb.q), w1 = vld1q_s8(wb.q + 16);
      const float32x4_t d0 = vmulq_n_f32(dxv, wb.scale[0]);  // scale · dx of each row
      if constexpr (kPer32) {
        for (int r = 0; r < R; ++r) {
          const int32x4_t p = D::dot(D::dot(zero, x0[r], w0), x1[r], w1);
          acc[r][c] = fma_lane(acc[r][c], vcvtq_f32_s32(p), d0, r);
        }
      } else {
        const float32x4_t d1 = vmulq_n_f32(dxv, wb.scale[1]);
        for (int r = 0; r < R; ++r) {
          acc[r][c] = fma_lane(acc[r][c], vcvtq_f32_s32(D::dot(zero, x0[r], w0)), d0, r);
          acc[r][c] = fma_lane(acc[r][c], vcvtq_f32_s32(D::dot(zero, x1[r], w1)), d1, r);
        }
      }
      if constexpr (kMin) {
        const float32x4_t mins = vld1q_f32(wb.min);
        for (int r = 0; r < R; ++r)
          acc[r][c] = vfmaq_f32(acc[r][c], mins, vld1q_f32(xm[r] + 4 * b));
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) out[r * ldo + c] = vaddvq_f32(acc[r][c]);
  }
}

using MicroKqRows = void (*)(const ActBlockQ8* const*, const float* const*,
                             const KqRowBlock* const*, int, float*, int);
using KqRowsTable = std::array<std::array<MicroKqRows, kKqCols>, kKqRows>;
template <class D, bool kPer32, bool kMin, int R, int... Cs>
constexpr std::array<MicroKqRows, kKqCols> kq_rows_row(std::integer_sequence<int, Cs...>) {
  return {&micro_kq_rows<D, kPer32, kMin, R, Cs + 1>...};
}
template <class D, bool kPer32, bool kMin, int... Rs>
constexpr KqRowsTable kq_rows_table(std::integer_sequence<int, Rs...>) {
  return {kq_rows_row<D, kPer32, kMin, Rs + 1>(std::make_integer_sequence<int, kKqCols>{})...};
}
template <class D, bool kPer32, bool kMin>
constexpr KqRowsTable kKqRowsTable =
    kq_rows_table<D, kPer32, kMin>(std::make_integer_sequence<int, kKqRows>{});

// Rows [o, o + count) of W into `blocks` KqRowBlocks each (read from the decode panels where W
// has them).
inline void unpack_kq_rows(const Matrix& w, int o, int count, KqRowBlock* out) {
  const int n = block_elems(w.type), per_block = n / kQ8BlockSize, blocks = w.cols / kQ8BlockSize;
  UnpackedBlock u;
  for (int c = 0; c < count; ++c) {
    KqRowBlock* row = out + static_cast<size_t>(c) * static_cast<size_t>(blocks);
    for (int sb = 0; sb < w.cols / n; ++sb) {
      unpack_stored_block(w, o + c, sb, u);
      for (int a = 0; a < per_block; ++a) {
        KqRowBlock& kb = row[sb * per_block + a];
        std::copy(u.q + kQ8BlockSize * a, u.q + kQ8BlockSize * (a + 1), kb.q);
        kb.scale[0] = u.scale[2 * a];
        kb.scale[1] = u.scale[2 * a + 1];
        kb.unused[0] = kb.unused[1] = 0.0f;
        kb.min[0] = u.min[2 * a];
        kb.min[1] = u.min[2 * a + 1];
        kb.min[2] = kb.min[3] = 0.0f;
      }
    }
  }
}

// KernelPath::gemm_kquant for the NEON paths: rows [o_begin, o_end) of y (ldy apart) for n
// quantised activation rows.
template <class D>
void gemm_kquant_rows(const ActBlockQ8* xq, int n, const Matrix& w, int o_begin, int o_end,
                      const float* bias, float* y, int ldy, Scratch& scratch) {
  const bool per32 = kquant_scales_per_32(w.type), mins = kquant_has_min(w.type);
  const KqRowsTable& table =
      per32 ? (mins ? kKqRowsTable<D, true, true> : kKqRowsTable<D, true, false>)
            : (mins ? kKqRowsTable<D, false, true> : kKqRowsTable<D, false, false>);
  const int blocks = w.cols / kQ8BlockSize;
  const size_t bl = static_cast<size_t>(blocks);
  // In `scratch`: slot 0 each activation block's {dx·Σx0, dx·Σx1, 0, 0}; 1 the unpacked rows.
  float* xm = scratch.get<float>(0, 4 * bl * static_cast<size_t>(n));
  if (mins) {
    for (size_t i = 0; i < bl * static_cast<size_t>(n); ++i) {
      kqn::half_sums(xq[i], xm + 4 * i);
      xm[4 * i + 2] = xm[4 * i + 3] = 0.0f;
    }
  }
  KqRowBlock* unpacked = scratch.get<KqRowBlock>(1, bl * kKqColBlock);
  float tile[kKqRows * kKqCols];
  for (int ob = o_begin; ob < o_end; ob += kKqColBlock) {
    const int oe = std::min(o_end, ob + kKqColBlock);
    unpack_kq_rows(w, ob, oe - ob, unpacked);
    for (int r0 = 0; r0 < n; r0 += kKqRows) {
      const int rows = std::min(kKqRows, n - r0);
      const ActBlockQ8* xr[kKqRows];
      const float* xmr[kKqRows];
      for (int r = 0; r < rows; ++r) {
        xr[r] = xq + static_cast<size_t>(r0 + r) * bl;
        xmr[r] = xm + 4 * static_cast<size_t>(r0 + r) * bl;
      }
      for (int o = ob; o < oe; o += kKqCols) {
        const int cols = std::min(kKqCols, oe - o);
        const KqRowBlock* wr[kKqCols];
        for (int c = 0; c < cols; ++c) wr[c] = unpacked + static_cast<size_t>(o - ob + c) * bl;
        table[rows - 1][cols - 1](xr, xmr, wr, blocks, tile, kKqCols);
        for (int r = 0; r < rows; ++r) {
          float* yr = y + static_cast<size_t>(r0 + r) * ldy + o;
          for (int c = 0; c < cols; ++c)
            yr[c] = tile[r * kKqCols + c] + (bias ? bias[o + c] : 0.0f);
        }
      }
    }
  }
}

}  // namespace
}  // namespace smolvlm::kernels::arm
