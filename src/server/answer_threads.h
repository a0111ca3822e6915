// Threads that make answers (call Scheduler::complete), reused up to a cap.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace smolvlm::server {

// Threads that call Scheduler::complete (and wait there: the Scheduler's worker runs the engine),
// created as needed up to a cap and then reused: a live thread keeps its stack and its malloc
// arena, so the memory reaches a plateau instead of spreading the answers' memory over ever more
// threads.
class AnswerThreads {
 public:
  explicit AnswerThreads(size_t cap) : cap_(cap) {}
  ~AnswerThreads() {
    std::unique_lock lock(mu_);
    closing_ = true;
    cv_.notify_all();
    done_cv_.wait(lock, [&] { return alive_ == 0; });
  }
  // False when all `cap` threads are busy (every slot and queue place is taken: a 429).
  bool run(std::function<void()> task) {
    std::lock_guard lock(mu_);
    if (idle_ > 0) {
      tasks_.push_back(std::move(task));
      --idle_;
      cv_.notify_one();
      return true;
    }
    if (alive_ >= cap_) return false;
    ++alive_;
    std::thread([this, first = std::move(task)]() mutable { loop(std::move(first)); }).detach();
    return true;
  }

 private:
  void loop(std::function<void()> task) {
    for (;;) {
      task();
      task = nullptr;
      std::unique_lock lock(mu_);
      if (closing_) break;
      ++idle_;
      cv_.wait(lock, [&] { return closing_ || !tasks_.empty(); });
      if (tasks_.empty()) {
        --idle_;
        break;
      }
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    std::lock_guard lock(mu_);
    --alive_;
    done_cv_.notify_all();
  }
  const size_t cap_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  std::deque<std::function<void()>> tasks_;
  size_t idle_ = 0, alive_ = 0;
  bool closing_ = false;
};

}  // namespace smolvlm::server
