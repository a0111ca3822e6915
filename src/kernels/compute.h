// What the kernels run on: a thread pool, an instruction-set path and the kernels' scratch
// memory (a Workspace). Each Engine owns one and passes it down to the decoder, the vision
// encoder and every kernel call, so two Engines in one process run at the same time on threads
// and buffers of their own. Calls on one context from several threads are safe: they take turns
// per kernel call (take_turn), which is also what makes the workspace theirs for that call.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "kernels/workspace.h"
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

  // A kernel call's hold on the context: the workspace is the holder's until it ends. Not
  // reentrant: a kernel that calls another entry point passes its Turn's workspace down.
  struct Turn {
    std::unique_lock<std::mutex> lock;
    Workspace& workspace;
  };
  [[nodiscard]] Turn take_turn() const { return {std::unique_lock(turn_mu_), *workspace_}; }

 private:
  std::unique_ptr<ThreadPool> pool_;
  const KernelPath* path_;
  OpProfile* profile_ = nullptr;
  std::unique_ptr<Workspace> workspace_;  // one participant per pool thread
  mutable std::mutex turn_mu_;
};

}  // namespace smolvlm::kernels
