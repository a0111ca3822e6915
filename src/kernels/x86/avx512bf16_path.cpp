// AVX-512 with VNNI and BF16 (Zen 4, Cooper Lake, Sapphire Rapids): the avx512vnni path plus
// vdpbf16ps for bf16 matmuls (the vision encoder). Built with those -m flags (CMakeLists);
// chosen at run time only where the CPU has them.
#include "kernels/kernel_path.h"

#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512BW__) && \
    defined(__AVX512VNNI__) && defined(__AVX512BF16__)
#include "kernels/x86/gemm_bf16_avx512.h"
#include "kernels/x86/gemm_x86.h"
#include "kernels/x86/kquant_panels_avx512.h"
#include "kernels/x86/kquant_x86.h"
#include "kernels/x86/q4k_panels_avx2.h"
#include "kernels/x86/q8_avx512.h"

namespace smolvlm::kernels {
namespace {
constexpr KernelPath kAvx512Bf16 = [] {
  KernelPath p = x86::avx512_entries("avx512bf16");
  p.gemm_q8 = x86::gemm_q8_512<true>;
  p.gemv_q4 = x86::gemv_q4_vnni;
  p.gemv_kquant = x86::gemv_kquant_avx2;  // the 256-bit kernel
  p.gemv_q4k_panels = x86::gemv_q4k_panels_avx2;
  p.gemm_kquant = x86::gemm_kquant_panels;
  p.gemv_q4_panels = x86::gemv_q4_panels_vnni;
  p.to_bf16 = x86::to_bf16;
  p.gemm_bf16 = x86::gemm_bf16;
  p.bf16_panels_size = x86::bf16_panels_size;
  p.pack_bf16_rows = x86::pack_bf16_rows;
  p.pack_bf16_kn = x86::pack_bf16_kn;
  p.gemm_bf16_panels = x86::gemm_bf16_panels;
  return p;
}();
}  // namespace
const KernelPath* avx512bf16_path() { return &kAvx512Bf16; }
}  // namespace smolvlm::kernels
#elif defined(__x86_64__)
namespace smolvlm::kernels {
const KernelPath* avx512bf16_path() { return nullptr; }
}  // namespace smolvlm::kernels
#endif
