// The AVX2 + FMA + F16C path (Haswell, Zen and later). Built with those -m flags (CMakeLists).
#include "kernels/kernel_path.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include "kernels/x86/avx2_family_path.h"
#include "kernels/x86/kquant_panels_avx2.h"
#include "kernels/x86/q8_panels_avx2.h"

namespace smolvlm::kernels {
namespace {
const KernelPath kAvx2 =
    x86::avx2_family_path("avx2", x86::gemm_q8_avx2_panels<false>, x86::gemm_kquant_panels8<false>);
}  // namespace
const KernelPath* avx2_path() { return &kAvx2; }
}  // namespace smolvlm::kernels
#elif defined(__x86_64__)
namespace smolvlm::kernels {
const KernelPath* avx2_path() { return nullptr; }
}  // namespace smolvlm::kernels
#endif
