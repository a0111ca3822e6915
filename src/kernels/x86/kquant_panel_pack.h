// The weight side of the int8 K-quant prefill panels (kquant_panels_avx512.h: 16 columns,
// kquant_panels_avx2.h: 8), plain C++: columns of W unpacked by the reference decoder into the
// common form (formats/kquants.h), so the products can only differ from the twin's in float
// summation order.
#pragma once

#include <cstdint>
#include <cstring>

#include "formats/kquants.h"
#include "kernels/kernel_path.h"
#include "kernels/q4k_panels.h"

namespace smolvlm::kernels::x86 {
// Internal linkage: each path's translation unit keeps its own copy.
namespace {

// One activation block's worth (32 K values) of kCols weight columns.
template <int kCols>
struct KqPanelBlockOf {
  int32_t q[8][kCols];     // group g, column c: the int8 codes of K values 4g..4g+3 (less qmin)
  int32_t corr[2][kCols];  // half h: −128 · Σ q over values 16h..16h+15 (the VNNI forms' start)
  float scale[2][kCols];   // half h's scale and min per column (0 for padding columns)
  float min[2][kCols];
};

// Columns [o, o + cols) of W (cols ≤ kCols; the rest zero) into w.cols/32 blocks, each code
// stored less qmin (0: as it is).
template <int kCols>
void pack_kq_columns(const Matrix& w, int o, int cols, int qmin, KqPanelBlockOf<kCols>* out) {
  const int blocks = w.cols / kQ8BlockSize;
  if (cols < kCols) {  // padding columns: zero codes, scales and mins
    std::memset(static_cast<void*>(out), 0,
                sizeof(KqPanelBlockOf<kCols>) * static_cast<size_t>(blocks));
  }
  const int n = block_elems(w.type), per_block = n / kQ8BlockSize;
  UnpackedBlock u;
  // Block by block across the columns: a decode panel block (16 rows, 2368 bytes) is read while
  // it is in L1, not once per column after a whole row of them.
  for (int sb = 0; sb < w.cols / n; ++sb) {
    for (int c = 0; c < cols; ++c) {
      unpack_stored_block(w, o + c, sb, u);  // from the decode panels where W has them
      for (int a = 0; a < per_block; ++a) {
        KqPanelBlockOf<kCols>& pb = out[sb * per_block + a];
        const int8_t* q = u.q + kQ8BlockSize * a;
        for (int g = 0; g < 8; ++g) {
          int8_t four[4];
          for (int j = 0; j < 4; ++j) four[j] = static_cast<int8_t>(q[4 * g + j] - qmin);
          std::memcpy(&pb.q[g][c], four, 4);
        }
        for (int h = 0; h < 2; ++h) {
          int32_t sum = 0;
          for (int j = 16 * h; j < 16 * h + 16; ++j) sum += q[j];
          pb.corr[h][c] = -128 * sum;
          pb.scale[h][c] = u.scale[2 * a + h];
          pb.min[h][c] = u.min[2 * a + h];
        }
      }
    }
  }
}

}  // namespace
}  // namespace smolvlm::kernels::x86
