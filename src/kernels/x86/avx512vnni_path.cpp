// AVX-512 with VNNI (Ice Lake, Zen 4 and later): vpdpbusd for the w8a8 Q8_0 products.
// Built with those -m flags (CMakeLists); chosen at run time only where the CPU has them.
#include "kernels/kernel_path.h"

#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
#include "kernels/x86/gemm_x86.h"
#include "kernels/x86/kquant_panels_avx512.h"
#include "kernels/x86/kquant_x86.h"
#include "kernels/x86/q4k_panels_avx2.h"
#include "kernels/x86/q8_avx512.h"

namespace smolvlm::kernels {
namespace {
constexpr KernelPath kAvx512Vnni = [] {
  KernelPath p = x86::avx512_entries("avx512vnni");
  p.gemm_q8 = x86::gemm_q8_512<true>;
  p.gemv_q4 = x86::gemv_q4_vnni;
  p.gemv_kquant = x86::gemv_kquant_avx2;  // the 256-bit kernel
  p.gemv_q4k_panels = x86::gemv_q4k_panels_avx2;
  p.gemm_kquant = x86::gemm_kquant_panels;
  p.gemv_q4_panels = x86::gemv_q4_panels_vnni;
  return p;
}();
}  // namespace
const KernelPath* avx512vnni_path() { return &kAvx512Vnni; }
}  // namespace smolvlm::kernels
#elif defined(__x86_64__)
namespace smolvlm::kernels {
const KernelPath* avx512vnni_path() { return nullptr; }
}  // namespace smolvlm::kernels
#endif
