// AVX2 with AVX-VNNI (the VEX-encoded vpdpbusd: Alder Lake and later cores, the N100/N305 class,
// Zen 5) for CPUs without AVX-512: the AVX2 path with the prefill Q8_0 panels on vpdpbusd.
// Built with those -m flags (CMakeLists); chosen at run time only where the CPU has them.
#include "kernels/kernel_path.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__) && \
    defined(__AVXVNNI__)
#include "kernels/x86/gemm_x86.h"
#include "kernels/x86/kquant_x86.h"
#include "kernels/x86/q4_panels_avx2.h"
#include "kernels/x86/q8_panels_avx2.h"

namespace smolvlm::kernels {
namespace {
const KernelPath kAvxVnni = {.name = "avxvnni",
                             .gemm_float = x86::gemm_float<x86::Avx2>,
                             .gemm_q8 = x86::gemm_q8_avx2_panels<true>,
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
const KernelPath* avxvnni_path() { return &kAvxVnni; }
}  // namespace smolvlm::kernels
#elif defined(__x86_64__)
namespace smolvlm::kernels {
const KernelPath* avxvnni_path() { return nullptr; }
}  // namespace smolvlm::kernels
#endif
