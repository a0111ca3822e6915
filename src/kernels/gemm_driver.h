// The loop around the dot-product GEMM micro-tiles, written once for the SIMD paths
// (x86/gemm_x86.h, arm/gemm_neon.h): weight rows in column blocks that stay in cache while every
// activation row passes, R activation rows × C weight rows per micro-tile (smaller tiles at the
// edges), then the bias. Each path brings its own micro-tiles, compiled for its own instruction
// set.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/kernels.h"

namespace smolvlm::kernels {
// Internal linkage, as in the path headers: each path's translation unit keeps its own copy,
// compiled with its own -m/-march flags, so the linker cannot hand one path another's code.
namespace {

// y[r·ldy + o] = x_r · w.row(o) + bias[o] for r < n and o in [o_begin, o_end). x holds n rows of
// k elements (floats, or Q8_0 activation blocks); table[rows − 1][cols − 1] is the rows × cols
// micro-tile, called as (x row pointers, weight row pointers, k, out, ldo) and writing
// out[r·ldo + c].
template <int R, int C, int kColBlock, class T, class Table>
void gemm_tiles(const Table& table, const T* x, int n, int k, const Matrix& w, int o_begin,
                int o_end, const float* bias, float* y, int ldy) {
  float tile[R * C];
  for (int ob = o_begin; ob < o_end; ob += kColBlock) {
    const int oe = std::min(o_end, ob + kColBlock);
    for (int r0 = 0; r0 < n; r0 += R) {
      const int rows = std::min(R, n - r0);
      const T* xr[R];
      for (int r = 0; r < rows; ++r) xr[r] = x + static_cast<size_t>(r0 + r) * k;
      for (int o = ob; o < oe; o += C) {
        const int cols = std::min(C, oe - o);
        const uint8_t* wr[C];
        for (int c = 0; c < cols; ++c) wr[c] = w.row(o + c);
        table[rows - 1][cols - 1](xr, wr, k, tile, C);
        for (int r = 0; r < rows; ++r) {
          float* yr = y + static_cast<size_t>(r0 + r) * ldy + o;
          for (int c = 0; c < cols; ++c) yr[c] = tile[r * C + c] + (bias ? bias[o + c] : 0.0f);
        }
      }
    }
  }
}

// The single-row (decode) loop: rows [o_begin, o_end) of y, C weight rows at a time, the last
// few one by one, then the bias. micro<count>(weight row pointers, out) computes `count` rows
// (C or 1) against the activation row the caller has prepared.
template <int C, class Micro>
void gemv_rows(const Matrix& w, int o_begin, int o_end, const float* bias, float* y,
               const Micro& micro) {
  int o = o_begin;
  for (; o + C <= o_end; o += C) {
    const uint8_t* wr[C];
    for (int c = 0; c < C; ++c) wr[c] = w.row(o + c);
    micro.template operator()<C>(wr, y + o);
  }
  for (; o < o_end; ++o) {
    const uint8_t* wr[1] = {w.row(o)};
    micro.template operator()<1>(wr, y + o);
  }
  if (bias) {
    for (int i = o_begin; i < o_end; ++i) y[i] += bias[i];
  }
}

}  // namespace
}  // namespace smolvlm::kernels
