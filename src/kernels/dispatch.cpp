// The kernel paths this CPU supports, and the compute context that holds one of them.
#include <smolvlm/error.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>

#include "kernels/compute.h"
#include "kernels/kernel_path.h"

#if defined(__aarch64__)
#include <sys/auxv.h>
// Older C library headers lack the newer bits; the values are the kernel's ABI.
#ifndef AT_HWCAP2
#define AT_HWCAP2 26
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#ifndef HWCAP2_I8MM
#define HWCAP2_I8MM (1 << 13)
#endif
#endif

namespace smolvlm::kernels {

namespace {

bool cpu_has(const char* feature) {
#if defined(__x86_64__)
  const std::string f = feature;
  __builtin_cpu_init();
  if (f == "avx2") return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  // AVX-VNNI: the VEX vpdpbusd (Alder Lake, the N100 class, Zen 5), apart from AVX-512 VNNI.
  if (f == "avxvnni") return cpu_has("avx2") && __builtin_cpu_supports("avxvnni");
  if (f == "avx512") {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx2") &&
           __builtin_cpu_supports("fma");
  }
  if (f == "avx512vnni") return cpu_has("avx512") && __builtin_cpu_supports("avx512vnni");
  if (f == "avx512bf16") return cpu_has("avx512vnni") && __builtin_cpu_supports("avx512bf16");
  return false;
#elif defined(__aarch64__)
  const std::string f = feature;
  const unsigned long hw = getauxval(AT_HWCAP);
  if (f == "neon") return (hw & HWCAP_ASIMD) != 0;
  if (f == "dotprod") return (hw & HWCAP_ASIMDDP) != 0;
  // The i8mm path runs its single-row GEMMs with sdot, so it needs both.
  if (f == "i8mm") return (hw & HWCAP_ASIMDDP) != 0 && (getauxval(AT_HWCAP2) & HWCAP2_I8MM) != 0;
  return false;
#else
  (void)feature;
  return false;
#endif
}

// `p` with its filled entries (kernel_path.h) taken from the generic path where it leaves them
// out; the same pointer when it leaves none out (the generic path itself). Made once per path.
const KernelPath* filled(const KernelPath* p) {
  static std::mutex mu;
  static std::map<const KernelPath*, std::unique_ptr<KernelPath>> copies;
  const KernelPath& g = generic_path();
  const auto missing = [&](const KernelPath& k) {
    return !k.exp_shift_sum || !k.gelu_tanh || !k.silu_mul || !k.row_max || !k.layer_norm ||
           !k.rms_norm || !k.gemv_kquant;
  };
  if (!missing(*p)) return p;
  std::lock_guard lock(mu);
  std::unique_ptr<KernelPath>& copy = copies[p];
  if (!copy) {
    copy = std::make_unique<KernelPath>(*p);
    if (!copy->exp_shift_sum) copy->exp_shift_sum = g.exp_shift_sum;
    if (!copy->gelu_tanh) copy->gelu_tanh = g.gelu_tanh;
    if (!copy->silu_mul) copy->silu_mul = g.silu_mul;
    if (!copy->row_max) copy->row_max = g.row_max;
    if (!copy->layer_norm) copy->layer_norm = g.layer_norm;
    if (!copy->rms_norm) copy->rms_norm = g.rms_norm;
    if (!copy->gemv_kquant) copy->gemv_kquant = g.gemv_kquant;
  }
  return copy.get();
}

}  // namespace

std::vector<std::string> known_path_names() {
#if defined(__x86_64__)
  return {"generic", "avx2", "avxvnni", "avx512", "avx512vnni", "avx512bf16"};
#elif defined(__aarch64__)
  return {"generic", "neon", "dotprod", "i8mm"};
#else
  return {"generic"};
#endif
}

std::vector<const KernelPath*> available_paths() {
  std::vector<const KernelPath*> out = {&generic_path()};
#if defined(__x86_64__)
  if (avx2_path() && cpu_has("avx2")) out.push_back(avx2_path());
  if (avxvnni_path() && cpu_has("avxvnni")) out.push_back(avxvnni_path());
  if (avx512_path() && cpu_has("avx512")) out.push_back(avx512_path());
  if (avx512vnni_path() && cpu_has("avx512vnni")) out.push_back(avx512vnni_path());
  if (avx512bf16_path() && cpu_has("avx512bf16")) out.push_back(avx512bf16_path());
#endif
#if defined(__aarch64__)
  if (neon_path() && cpu_has("neon")) out.push_back(neon_path());
  if (dotprod_path() && cpu_has("dotprod")) out.push_back(dotprod_path());
  if (i8mm_path() && cpu_has("i8mm")) out.push_back(i8mm_path());
#endif
  for (const KernelPath*& p : out) p = filled(p);
  return out;
}

const KernelPath& find_path(const std::string& name) {
  const std::vector<const KernelPath*> paths = available_paths();
  for (const KernelPath* p : paths) {
    if (name == p->name) return *p;
  }
  std::string have;
  for (const KernelPath* p : paths) have += std::string(have.empty() ? "" : ", ") + p->name;
  throw Error("kernel path '" + name + "' is not available on this CPU (available: " + have + ")");
}

const KernelPath& default_path() {
  const char* env = std::getenv("SMOLVLM_KERNELS");
  if (env && *env) return find_path(env);
  return *available_paths().back();
}

Compute::Compute(int threads, const std::string& path)
    : pool_(std::make_unique<ThreadPool>(threads)),
      path_(path.empty() ? &default_path() : &find_path(path)),
      workspace_(std::make_unique<Workspace>(pool_->size())) {}

const char* Compute::path_name() const { return path_->name; }

}  // namespace smolvlm::kernels
