// The ARMv8.2 dot-product path (sdot: Cortex-A55/A76/A78, RK3588, Raspberry Pi 5, Jetson Orin).
// Built with -march=armv8.2-a+dotprod (CMakeLists); chosen at run time only where HWCAP_ASIMDDP
// says the CPU has it. Float kernels as the NEON path; the Q8_0 blocks use sdot.
#include "kernels/kernel_path.h"

#if defined(__aarch64__) && defined(__ARM_FEATURE_DOTPROD)
#include "kernels/arm/gemm_neon.h"

namespace smolvlm::kernels {
namespace {
const KernelPath kDotprod =
    arm::make_path("dotprod", arm::gemm_q8<arm::BlockDotSdot>, arm::gemv_q4<arm::BlockDotSdot>);
}  // namespace
const KernelPath* dotprod_path() { return &kDotprod; }
}  // namespace smolvlm::kernels
#elif defined(__aarch64__)
namespace smolvlm::kernels {
const KernelPath* dotprod_path() { return nullptr; }
}  // namespace smolvlm::kernels
#endif
