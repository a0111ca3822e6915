// A persistent pool of worker threads for data-parallel loops. Created once, reused by every
// kernel call, so the token loop never spawns threads. Workers spin briefly between jobs, then
// sleep. Callers on several threads take turns (a mutex); a job must not call parallel_for on
// its own pool.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace smolvlm {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // threads <= 0: hardware concurrency
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }
  // Splits [0, n) into contiguous chunks, one per thread (the caller runs one), and waits.
  void parallel_for(size_t n, const std::function<void(size_t begin, size_t end)>& fn);
  // The same, telling each chunk which participant runs it: 0 the calling thread (also when
  // the loop runs inline, on one thread or for n == 1), 1 … size() − 1 the pool's threads. A
  // participant runs at most one chunk per loop, so per-participant scratch needs no lock.
  void parallel_for(size_t n,
                    const std::function<void(size_t begin, size_t end, int participant)>& fn);

 private:
  void worker_loop(int index);
  std::vector<std::thread> workers_;
  std::mutex call_mu_;  // one parallel loop at a time
  std::mutex mu_;
  std::condition_variable start_cv_;
  // job_ and job_n_ are written before generation_ is bumped (release) and read after it is
  // seen (acquire); the caller waits for pending_ to reach 0 before the next job.
  const std::function<void(size_t, size_t, int)>* job_ = nullptr;
  size_t job_n_ = 0;
  std::atomic<unsigned> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace smolvlm
