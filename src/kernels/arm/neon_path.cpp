// ARMv8 NEON and dot-product paths. Placeholder until their kernels land: returns null.
#include "kernels/kernel_path.h"

#if defined(__aarch64__)
namespace smolvlm::kernels {
const KernelPath* neon_path() { return nullptr; }
const KernelPath* dotprod_path() { return nullptr; }
}  // namespace smolvlm::kernels
#endif
