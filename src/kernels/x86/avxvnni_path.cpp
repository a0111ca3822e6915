// AVX2 with AVX-VNNI (the VEX-encoded vpdpbusd: Alder Lake and later cores, the N100/N305 class,
// Zen 5) for CPUs without AVX-512: the AVX2 path with the prefill Q8_0 panels on vpdpbusd.
// Built with those -m flags (CMakeLists); chosen at run time only where the CPU has them.
#include "kernels/kernel_path.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__) && \
    defined(__AVXVNNI__)
#include "kernels/x86/avx2_family_path.h"
#include "kernels/x86/kquant_panels_avx2.h"
#include "kernels/x86/q8_panels_avx2.h"

namespace smolvlm::kernels {
namespace {
const KernelPath kAvxVnni = x86::avx2_family_path("avxvnni", x86::gemm_q8_avx2_panels<true>,
                                                  x86::gemm_kquant_panels8<true>);
}  // namespace
const KernelPath* avxvnni_path() { return &kAvxVnni; }
}  // namespace smolvlm::kernels
#elif defined(__x86_64__)
namespace smolvlm::kernels {
const KernelPath* avxvnni_path() { return nullptr; }
}  // namespace smolvlm::kernels
#endif
