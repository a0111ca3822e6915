// AVX-512 with VNNI (Ice Lake, Zen 4 and later): vpdpbusd for the w8a8 Q8_0 products.
// Built with those -m flags (CMakeLists); chosen at run time only where the CPU has them.
#include "kernels/kernel_path.h"

#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
#include "kernels/x86/gemm_x86.h"
#include "kernels/x86/q8_avx512.h"

namespace smolvlm::kernels {
namespace {
const KernelPath kAvx512Vnni = {.name = "avx512vnni",
                                .gemm_float = x86::gemm_float<x86::Avx512>,
                                .gemm_q8 = x86::gemm_q8_512<true>,
                                .gemv_q4 = x86::gemv_q4_vnni,
                                .quantize_row_q8 = x86::quantize_row_q8,
                                .axpy = x86::axpy<x86::Avx2>,
                                .exp_shift_sum = x86::exp_shift_sum<x86::Avx512>,
                                .gelu_tanh = x86::gelu_tanh<x86::Avx512>,
                                .silu_mul = x86::silu_mul<x86::Avx512>,
                                .row_max = x86::row_max<x86::Avx512>,
                                .weighted_rows = x86::weighted_rows<x86::Avx512>,
                                .gemm_kn = x86::gemm_kn<x86::Avx512>};
}  // namespace
const KernelPath* avx512vnni_path() { return &kAvx512Vnni; }
}  // namespace smolvlm::kernels
#elif defined(__x86_64__)
namespace smolvlm::kernels {
const KernelPath* avx512vnni_path() { return nullptr; }
}  // namespace smolvlm::kernels
#endif
