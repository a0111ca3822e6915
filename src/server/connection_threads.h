// The threads that serve HttpTransport's connections, one connection at a time each.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace smolvlm::server {

// Threads for connections: started only while every one is busy (up to `max`); the one that
// came free last takes the next connection, so threads (their stacks and malloc caches) grow
// with the peak number of connections, not with the number of requests.
class ConnectionThreads {
 public:
  explicit ConnectionThreads(size_t max) : max_(max) {}
  ~ConnectionThreads() { shutdown(); }
  void enqueue(std::function<void()> fn) {
    std::lock_guard lock(mu_);
    if (closing_) return;
    tasks_.push_back(std::move(fn));
    if (!idle_.empty()) {
      Worker* w = idle_.back();
      idle_.pop_back();
      w->wake = true;
      w->cv.notify_one();
    } else if (workers_.size() < max_) {
      workers_.push_back(std::make_unique<Worker>());
      Worker* w = workers_.back().get();
      w->thread = std::thread([this, w] { loop(*w); });
    }  // else the connection waits for a thread to come free
  }
  void shutdown() {
    {
      std::lock_guard lock(mu_);
      if (closing_) return;
      closing_ = true;
      for (auto& w : workers_) w->cv.notify_one();
    }
    for (auto& w : workers_) {
      if (w->thread.joinable()) w->thread.join();
    }
  }

 private:
  struct Worker {
    std::condition_variable cv;
    bool wake = false;
    std::thread thread;
  };
  void loop(Worker& w) {
    std::unique_lock lock(mu_);
    for (;;) {
      if (!tasks_.empty()) {
        std::function<void()> fn = std::move(tasks_.front());
        tasks_.pop_front();
        lock.unlock();
        fn();
        lock.lock();
        continue;
      }
      if (closing_) return;
      w.wake = false;
      idle_.push_back(&w);
      w.cv.wait(lock, [&] { return w.wake || closing_; });
      if (!w.wake) return;
    }
  }
  const size_t max_;
  std::mutex mu_;
  std::deque<std::function<void()>> tasks_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<Worker*> idle_;
  bool closing_ = false;
};

}  // namespace smolvlm::server
