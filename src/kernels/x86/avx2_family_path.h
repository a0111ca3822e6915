// The path table shared by the AVX2 paths (avx2, avxvnni): every entry but the prefill Q8_0 and
// K-quant GEMMs, whose panels differ in one instruction. Included by each path's translation unit,
// so every function named here is that unit's own copy, compiled for its -m flags.
#pragma once

#include "kernels/kernel_path.h"
#include "kernels/x86/gemm_x86.h"
#include "kernels/x86/gemv_q8_avx2.h"
#include "kernels/x86/kquant_x86.h"
#include "kernels/x86/q4_panels_avx2.h"
#include "kernels/x86/q4k_panels_avx2.h"

namespace smolvlm::kernels::x86 {
namespace {

constexpr KernelPath avx2_family_path(const char* name, decltype(KernelPath::gemm_q8) gemm_q8,
                                      decltype(KernelPath::gemm_kquant) gemm_kquant) {
  return {.name = name,
          .gemm_float = gemm_float<Avx2>,
          .gemm_q8 = gemm_q8,
          .gemv_q4 = gemv_q4_avx2,
          .quantize_row_q8 = quantize_row_q8,
          .axpy = axpy<Avx2>,
          .exp_shift_sum = exp_shift_sum<Avx2>,
          .gelu_tanh = gelu_tanh<Avx2>,
          .silu_mul = silu_mul<Avx2>,
          .row_max = row_max<Avx2>,
          .weighted_rows = weighted_rows<Avx2>,
          .gemm_kn = gemm_kn<Avx2>,
          .dot_rows = dot_rows<Avx2>,
          .layer_norm = layer_norm<Avx2>,
          .rms_norm = rms_norm<Avx2>,
          .gemv_q4_panels = gemv_q4_panels_avx2,
          .gemv_q4k_panels = gemv_q4k_panels_avx2,
          .gemv_kquant = gemv_kquant_avx2,
          .gemm_kquant = gemm_kquant,
          .gemv_q8 = gemv_q8_avx2};
}

}  // namespace
}  // namespace smolvlm::kernels::x86
