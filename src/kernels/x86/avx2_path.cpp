// AVX2 + FMA + F16C path (Haswell and later). Placeholder until its kernels land: returns null.
#include "kernels/kernel_path.h"

#if defined(__x86_64__)
namespace smolvlm::kernels {
const KernelPath* avx2_path() { return nullptr; }
const KernelPath* avx512_path() { return nullptr; }
}  // namespace smolvlm::kernels
#endif
