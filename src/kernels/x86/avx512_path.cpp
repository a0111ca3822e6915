// The AVX-512 (F, BW, VL) path: 16-float vectors for the float kernels. Built with those -m
// flags (CMakeLists); chosen at run time only where the CPU has them.
#include "kernels/kernel_path.h"

#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512BW__)
#include "kernels/x86/gemm_x86.h"
#include "kernels/x86/kquant_panels_avx2.h"
#include "kernels/x86/kquant_x86.h"
#include "kernels/x86/q4k_panels_avx2.h"
#include "kernels/x86/q8_avx512.h"

namespace smolvlm::kernels {
namespace {
constexpr KernelPath kAvx512 = [] {
  KernelPath p = x86::avx512_entries("avx512");
  p.gemm_q8 = x86::gemm_q8_512<false>;
  p.gemv_q4 = x86::gemv_q4_avx2;          // no VNNI: the 256-bit vpmaddubsw kernel
  p.gemv_kquant = x86::gemv_kquant_avx2;  // the 256-bit kernel
  p.gemv_q4k_panels = x86::gemv_q4k_panels_avx2;
  p.gemm_kquant = x86::gemm_kquant_panels8<false>;  // the 256-bit int8 panels
  return p;
}();
}  // namespace
const KernelPath* avx512_path() { return &kAvx512; }
}  // namespace smolvlm::kernels
#elif defined(__x86_64__)
namespace smolvlm::kernels {
const KernelPath* avx512_path() { return nullptr; }
}  // namespace smolvlm::kernels
#endif
