// The ARMv8.2 dot-product path (sdot: Cortex-A55/A76/A78, RK3588, Raspberry Pi 5, Jetson Orin).
// Built with -march=armv8.2-a+dotprod (CMakeLists); chosen at run time only where HWCAP_ASIMDDP
// says the CPU has it. Float kernels as the NEON path; the Q8_0 blocks, the
// K-quant decode and prefill (kquant_neon.h, kquant_gemm_neon.h) and the Q4_0 and Q4_K panel
// decodes (q4_panels_sdot.h, q4k_panels_sdot.h) use sdot.
#include "kernels/kernel_path.h"

#if defined(__aarch64__) && defined(__ARM_FEATURE_DOTPROD)
#include "kernels/arm/gemm_neon.h"
#include "kernels/arm/kquant_gemm_neon.h"
#include "kernels/arm/kquant_neon.h"
#include "kernels/arm/q4_panels_sdot.h"
#include "kernels/arm/q4k_panels_sdot.h"

namespace smolvlm::kernels {
namespace {
constexpr KernelPath kDotprod = [] {
  KernelPath p =
      arm::make_path("dotprod", arm::gemm_q8<arm::BlockDotSdot>, arm::gemv_q4<arm::BlockDotSdot>);
  p.gemv_kquant = arm::gemv_kquant<arm::Dot16Sdot>;
  p.gemm_kquant = arm::gemm_kquant_rows<arm::Dot16Sdot>;
  p.gemv_q4_panels = arm::gemv_q4_panels_sdot;
  p.gemv_q4k_panels = arm::gemv_q4k_panels_sdot;
  return p;
}();
}  // namespace
const KernelPath* dotprod_path() { return &kDotprod; }
}  // namespace smolvlm::kernels
#elif defined(__aarch64__)
namespace smolvlm::kernels {
const KernelPath* dotprod_path() { return nullptr; }
}  // namespace smolvlm::kernels
#endif
