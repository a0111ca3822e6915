// What the kernels run on: a thread pool and an instruction-set path. Each Engine owns one and
// passes it down to the decoder, the vision encoder and every kernel call, so two Engines in one
// process run at the same time on threads of their own. Calls on one context from several
// threads are safe: they take turns per kernel (the pool runs one parallel loop at a time).
#pragma once

#include <memory>
#include <string>

#include "util/thread_pool.h"

namespace smolvlm::kernels {

struct KernelPath;
class OpProfile;

class Compute {
 public:
  // threads <= 0: one per hardware thread. path: a name from available_paths() ("generic",
  // "avx2", "avx512", "neon", ...); empty: $SMOLVLM_KERNELS when set, else the best the CPU
  // supports. Throws smolvlm::Error for a path this CPU lacks.
  explicit Compute(int threads = 0, const std::string& path = "");
  Compute(const Compute&) = delete;
  Compute& operator=(const Compute&) = delete;

  ThreadPool& pool() const { return *pool_; }
  const KernelPath& path() const { return *path_; }
  int threads() const { return pool_->size(); }
  const char* path_name() const;

  // Per-op timings (kernels/op_profile.h), for benchmarks: null (the default) times nothing.
  // Set while no kernel runs on this context.
  void set_profile(OpProfile* profile) { profile_ = profile; }
  OpProfile* profile() const { return profile_; }

 private:
  std::unique_ptr<ThreadPool> pool_;
  const KernelPath* path_;
  OpProfile* profile_ = nullptr;
};

}  // namespace smolvlm::kernels
