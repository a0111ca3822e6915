#include "util/thread_pool.h"

#include <algorithm>
#include <chrono>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace smolvlm {

namespace {

inline void cpu_relax() {
#if defined(__x86_64__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// How long a worker spins for the next job before it sleeps on the condition variable. A
// decode step issues ~200 short parallel loops; waking sleeping threads for each would cost
// more than the loops themselves.
constexpr auto kSpin = std::chrono::microseconds(200);

}  // namespace

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  start_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

static void run_chunk(const std::function<void(size_t, size_t, int)>& fn, size_t n, int index,
                      int parts) {
  const size_t begin = n * static_cast<size_t>(index) / static_cast<size_t>(parts);
  const size_t end = n * static_cast<size_t>(index + 1) / static_cast<size_t>(parts);
  if (begin < end) fn(begin, end, index);
}

void ThreadPool::parallel_for(size_t n, const std::function<void(size_t, size_t)>& fn) {
  parallel_for(n, [&fn](size_t begin, size_t end, int) { fn(begin, end); });
}

void ThreadPool::parallel_for(size_t n, const std::function<void(size_t, size_t, int)>& fn) {
  if (n == 0) return;
  if (workers_.empty() || n == 1) {
    fn(0, n, 0);
    return;
  }
  std::lock_guard<std::mutex> turn(call_mu_);
  job_ = &fn;
  job_n_ = n;
  pending_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  {
    // Publishing under the lock pairs with the sleepers' predicate check.
    std::lock_guard<std::mutex> lock(mu_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  start_cv_.notify_all();
  run_chunk(fn, n, 0, size());
  // The caller's own share is done; the others are usually a moment behind. Spin briefly,
  // then yield the core so a descheduled worker (a busy machine) can finish its share.
  for (int spins = 0; pending_.load(std::memory_order_acquire) != 0; ++spins) {
    if (spins < 2000) {
      cpu_relax();
    } else {
      std::this_thread::yield();
    }
  }
  job_ = nullptr;
}

void ThreadPool::worker_loop(int index) {
  unsigned seen = 0;
  for (;;) {
    const auto spin_until = std::chrono::steady_clock::now() + kSpin;
    for (int spins = 0; generation_.load(std::memory_order_acquire) == seen &&
                        std::chrono::steady_clock::now() < spin_until;
         ++spins) {
      if (spins < 1000) {
        cpu_relax();
      } else {
        std::this_thread::yield();  // keep the core usable by others on a busy machine
      }
    }
    if (generation_.load(std::memory_order_acquire) == seen) {
      std::unique_lock<std::mutex> lock(mu_);
      start_cv_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load()) return;
    run_chunk(*job_, job_n_, index, size());
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace smolvlm
