// The AVX2 + FMA + F16C path (Haswell, Zen and later). Built with those -m flags (CMakeLists).
#include "kernels/kernel_path.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include "kernels/x86/gemm_x86.h"

namespace smolvlm::kernels {
namespace {
const KernelPath kAvx2 = {"avx2",
                          x86::gemm_float<x86::Avx2>,
                          x86::gemm_q8,
                          x86::quantize_row_q8,
                          x86::dot<x86::Avx2>,
                          x86::axpy<x86::Avx2>,
                          x86::exp_shift_sum<x86::Avx2>,
                          x86::gelu_tanh<x86::Avx2>,
                          x86::silu_mul<x86::Avx2>,
                          x86::row_max<x86::Avx2>,
                          x86::weighted_rows<x86::Avx2>,
                          x86::gemm_kn<x86::Avx2>,
                          nullptr,
                          nullptr,
                          nullptr};
}  // namespace
const KernelPath* avx2_path() { return &kAvx2; }
}  // namespace smolvlm::kernels
#elif defined(__x86_64__)
namespace smolvlm::kernels {
const KernelPath* avx2_path() { return nullptr; }
}  // namespace smolvlm::kernels
#endif
