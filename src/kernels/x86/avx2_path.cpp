// The AVX2 + FMA + F16C path (Haswell, Zen and later). Built with those -m flags (CMakeLists).
#include "kernels/kernel_path.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include "kernels/x86/gemm_x86.h"
#include "kernels/x86/kquant_x86.h"
#include "kernels/x86/q4_panels_avx2.h"
#include "kernels/x86/q8_panels_avx2.h"

namespace smolvlm::kernels {
namespace {
const KernelPath kAvx2 = {.name = "avx2",
                          .gemm_float = x86::gemm_float<x86::Avx2>,
                          .gemm_q8 = x86::gemm_q8_avx2_panels<false>,
                          .gemv_q4 = x86::gemv_q4_avx2,
                          .quantize_row_q8 = x86::quantize_row_q8,
                          .axpy = x86::axpy<x86::Avx2>,
                          .exp_shift_sum = x86::exp_shift_sum<x86::Avx2>,
                          .gelu_tanh = x86::gelu_tanh<x86::Avx2>,
                          .silu_mul = x86::silu_mul<x86::Avx2>,
                          .row_max = x86::row_max<x86::Avx2>,
                          .weighted_rows = x86::weighted_rows<x86::Avx2>,
                          .gemm_kn = x86::gemm_kn<x86::Avx2>,
                          .dot_rows = x86::dot_rows<x86::Avx2>,
                          .layer_norm = x86::layer_norm<x86::Avx2>,
                          .rms_norm = x86::rms_norm<x86::Avx2>,
                          .gemv_q4_panels = x86::gemv_q4_panels_avx2,
                          .gemv_kquant = x86::gemv_kquant_avx2};
}  // namespace
const KernelPath* avx2_path() { return &kAvx2; }
}  // namespace smolvlm::kernels
#elif defined(__x86_64__)
namespace smolvlm::kernels {
const KernelPath* avx2_path() { return nullptr; }
}  // namespace smolvlm::kernels
#endif
