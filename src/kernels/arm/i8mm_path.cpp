// The int8 matrix-multiply path (i8mm, ARMv8.6: Cortex-A510/A710/X2, Neoverse V1/N2, ...).
// Built with -march=armv8.2-a+dotprod+i8mm (CMakeLists); chosen at run time only where
// HWCAP2_I8MM (and HWCAP_ASIMDDP) say the CPU has it.
//
// smmla multiplies a 2×8 int8 block of two activation rows by a 2×8 block of two weight rows
// into a 2×2 int32 tile: twice the products of an sdot, and the tile needs no horizontal sum.
// It pays from two activation rows on (prefill, vision); one row (decoding) runs the sdot tiles.
#include "kernels/kernel_path.h"

#if defined(__aarch64__) && defined(__ARM_FEATURE_DOTPROD) && defined(__ARM_FEATURE_MATMUL_INT8)
#include "kernels/arm/gemm_neon.h"
#include "kernels/arm/kquant_gemm_neon.h"
#include "kernels/arm/kquant_neon.h"
#include "kernels/arm/q4_panels_sdot.h"
#include "kernels/arm/q4k_panels_sdot.h"

namespace smolvlm::kernels {
namespace {

// Block b of two activation rows, interleaved 8 bytes at a time as smmla reads them:
// q = r0[0,8) r1[0,8) r0[8,16) r1[8,16) ...; d = {d0, d0, d1, d1}, the rows of a 2×2 tile.
struct PairBlock {
  float d[4];
  int8_t q[2 * kQ8BlockSize];
};

inline int8x16_t zip_lo(int8x16_t a, int8x16_t b) {
  return vreinterpretq_s8_s64(vzip1q_s64(vreinterpretq_s64_s8(a), vreinterpretq_s64_s8(b)));
}
inline int8x16_t zip_hi(int8x16_t a, int8x16_t b) {
  return vreinterpretq_s8_s64(vzip2q_s64(vreinterpretq_s64_s8(a), vreinterpretq_s64_s8(b)));
}

// Rows 2p and 2p + 1 of every block (the last row twice when n is odd).
void pack_pairs(const ActBlockQ8* xq, int n, int blocks, PairBlock* out) {
  const int pairs = (n + 1) / 2;
  for (int p = 0; p < pairs; ++p) {
    const ActBlockQ8* a = xq + static_cast<size_t>(2 * p) * blocks;
    const ActBlockQ8* b = xq + static_cast<size_t>(std::min(2 * p + 1, n - 1)) * blocks;
    for (int k = 0; k < blocks; ++k) {
      PairBlock& o = out[static_cast<size_t>(p) * blocks + k];
      o.d[0] = o.d[1] = a[k].d;
      o.d[2] = o.d[3] = b[k].d;
      for (int h = 0; h < 2; ++h) {
        const int8x16_t ra = vld1q_s8(a[k].q + 16 * h), rb = vld1q_s8(b[k].q + 16 * h);
        vst1q_s8(o.q + 32 * h, zip_lo(ra, rb));
        vst1q_s8(o.q + 32 * h + 16, zip_hi(ra, rb));
      }
    }
  }
}

constexpr int kPairRows = 2, kPairCols = 4;  // 4 activation rows × 8 weight rows: 8 accumulators

// RP activation-row pairs × CP weight-row pairs, all blocks; out[rp·kPairCols + cp] is the
// 2×2 tile {r0·c0, r0·c1, r1·c0, r1·c1}.
template <int RP, int CP>
void micro_mmla(const PairBlock* const* x, const uint8_t* const* w, int blocks, float32x4_t* out) {
  float32x4_t acc[RP][CP];
  for (int rp = 0; rp < RP; ++rp) {
    for (int cp = 0; cp < CP; ++cp) acc[rp][cp] = vdupq_n_f32(0.0f);
  }
  for (int b = 0; b < blocks; ++b) {
    int8x16_t xv[RP][4];
    float32x4_t xd[RP];
    for (int rp = 0; rp < RP; ++rp) {
      const PairBlock& pb = x[rp][b];
      for (int i = 0; i < 4; ++i) xv[rp][i] = vld1q_s8(pb.q + 16 * i);
      xd[rp] = vld1q_f32(pb.d);
    }
    for (int cp = 0; cp < CP; ++cp) {
      const uint8_t* b0 = w[2 * cp] + static_cast<size_t>(b) * kQ8BlockBytes;
      const uint8_t* b1 = w[2 * cp + 1] + static_cast<size_t>(b) * kQ8BlockBytes;
      const int8x16_t w0l = vreinterpretq_s8_u8(vld1q_u8(b0 + 2));
      const int8x16_t w0h = vreinterpretq_s8_u8(vld1q_u8(b0 + 18));
      const int8x16_t w1l = vreinterpretq_s8_u8(vld1q_u8(b1 + 2));
      const int8x16_t w1h = vreinterpretq_s8_u8(vld1q_u8(b1 + 18));
      const int8x16_t wv[4] = {zip_lo(w0l, w1l), zip_hi(w0l, w1l), zip_lo(w0h, w1h),
                               zip_hi(w0h, w1h)};
      const float32x2_t wd2 =
          vset_lane_f32(arm::half_to_float(b1), vdup_n_f32(arm::half_to_float(b0)), 1);
      const float32x4_t wd = vcombine_f32(wd2, wd2);  // {c0, c1, c0, c1}
      for (int rp = 0; rp < RP; ++rp) {
        int32x4_t s = vmmlaq_s32(vdupq_n_s32(0), xv[rp][0], wv[0]);
        s = vmmlaq_s32(s, xv[rp][1], wv[1]);
        s = vmmlaq_s32(s, xv[rp][2], wv[2]);
        s = vmmlaq_s32(s, xv[rp][3], wv[3]);
        acc[rp][cp] = vfmaq_f32(acc[rp][cp], vcvtq_f32_s32(s), vmulq_f32(xd[rp], wd));
      }
    }
  }
  for (int rp = 0; rp < RP; ++rp) {
    for (int cp = 0; cp < CP; ++cp) out[rp * kPairCols + cp] = acc[rp][cp];
  }
}

using MicroMmla = void (*)(const PairBlock* const*, const uint8_t* const*, int, float32x4_t*);
template <int RP, int... CPs>
constexpr std::array<MicroMmla, sizeof...(CPs)> mmla_row_table(std::integer_sequence<int, CPs...>) {
  return {&micro_mmla<RP, CPs + 1>...};
}
template <int... RPs>
constexpr auto mmla_table(std::integer_sequence<int, RPs...>) {
  return std::array<std::array<MicroMmla, kPairCols>, sizeof...(RPs)>{
      mmla_row_table<RPs + 1>(std::make_integer_sequence<int, kPairCols>{})...};
}

void gemm_q8_mmla(const ActBlockQ8* xq, int n, const Matrix& w, int o_begin, int o_end,
                  const float* bias, float* y, int ldy, Scratch& scratch) {
  if (n < 2)
    return arm::gemm_q8<arm::BlockDotSdot>(xq, n, w, o_begin, o_end, bias, y, ldy, scratch);
  static constexpr auto table = mmla_table(std::make_integer_sequence<int, kPairRows>{});
  constexpr int kTileCols = 2 * kPairCols;
  constexpr int kColBlock = 64;
  const int blocks = w.cols / kQ8BlockSize;
  const int pairs = (n + 1) / 2;
  PairBlock* packed = scratch.get<PairBlock>(0, static_cast<size_t>(pairs) * blocks);
  pack_pairs(xq, n, blocks, packed);
  float32x4_t tile[kPairRows * kPairCols];
  for (int ob = o_begin; ob < o_end; ob += kColBlock) {
    const int oe = std::min(o_end, ob + kColBlock);
    for (int p0 = 0; p0 < pairs; p0 += kPairRows) {
      const int rps = std::min(kPairRows, pairs - p0);
      const PairBlock* xr[kPairRows];
      for (int rp = 0; rp < rps; ++rp) xr[rp] = packed + static_cast<size_t>(p0 + rp) * blocks;
      for (int o = ob; o < oe; o += kTileCols) {
        const int cols = std::min(kTileCols, oe - o), cps = (cols + 1) / 2;
        const uint8_t* wr[kTileCols];
        for (int c = 0; c < 2 * cps; ++c) wr[c] = w.row(std::min(o + c, oe - 1));  // odd: repeat
        table[rps - 1][cps - 1](xr, wr, blocks, tile);
        for (int rp = 0; rp < rps; ++rp) {
          for (int cp = 0; cp < cps; ++cp) {
            float v[4];
            vst1q_f32(v, tile[rp * kPairCols + cp]);
            for (int i = 0; i < 2; ++i) {
              const int r = 2 * (p0 + rp) + i;
              if (r >= n) continue;
              float* yr = y + static_cast<size_t>(r) * ldy + o;
              for (int j = 0; j < 2; ++j) {
                const int c = 2 * cp + j;
                if (c < cols) yr[c] = v[2 * i + j] + (bias ? bias[o + c] : 0.0f);
              }
            }
          }
        }
      }
    }
  }
}

constexpr KernelPath kI8mm = [] {
  KernelPath p = arm::make_path("i8mm", gemm_q8_mmla, arm::gemv_q4<arm::BlockDotSdot>);
  // The dotprod path's sdot kernels: one activation row (decode), and the K-quant prefill.
  p.gemv_kquant = arm::gemv_kquant<arm::Dot16Sdot>;
  p.gemm_kquant = arm::gemm_kquant_rows<arm::Dot16Sdot>;
  p.gemv_q4_panels = arm::gemv_q4_panels_sdot;
  p.gemv_q4k_panels = arm::gemv_q4k_panels_sdot;
  return p;
}();

}  // namespace
const KernelPath* i8mm_path() { return &kI8mm; }
}  // namespace smolvlm::kernels
#elif defined(__aarch64__)
namespace smolvlm::kernels {
const KernelPath* i8mm_path() { return nullptr; }
}  // namespace smolvlm::kernels
#endif
