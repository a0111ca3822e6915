// The baseline ARMv8.0 NEON path (every AArch64 CPU: Cortex-A53/A55/A72/A76, ...). Built with
// the compiler's default -march; the newer extensions live in dotprod_path.cpp and i8mm_path.cpp.
#include "kernels/kernel_path.h"

#if defined(__aarch64__)
#include "kernels/arm/gemm_neon.h"
#include "kernels/arm/kquant_gemm_neon.h"
#include "kernels/arm/kquant_neon.h"

namespace smolvlm::kernels {
namespace {
constexpr KernelPath kNeon = [] {
  KernelPath p =
      arm::make_path("neon", arm::gemm_q8<arm::BlockDotNeon>, arm::gemv_q4<arm::BlockDotNeon>);
  p.gemv_kquant = arm::gemv_kquant<arm::Dot16Neon>;
  p.gemm_kquant = arm::gemm_kquant_rows<arm::Dot16Neon>;
  return p;
}();
}  // namespace
const KernelPath* neon_path() { return &kNeon; }
}  // namespace smolvlm::kernels
#endif
