// Time, weight bytes and arithmetic per operation of a forward pass, for `smolvlm bench
// --profile`: where a decode step's time goes and how close each matmul comes to the memory
// bandwidth; where a vision tile's time goes and how close each product comes to the arithmetic
// peak. Off unless a profile is attached to the Compute; then each timed op costs two clock reads.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "kernels/compute.h"

namespace smolvlm::kernels {

class OpProfile {
 public:
  struct Row {
    std::string op;
    int64_t calls = 0;
    double ms = 0;
    double weight_bytes = 0;  // read from weight matrices, over all calls
    double flops = 0;         // multiply-adds count two, over all calls
  };
  void add(const char* op, double ms, size_t weight_bytes, double flops = 0) {
    std::lock_guard lock(mu_);
    auto [it, fresh] = rows_.try_emplace(op);
    if (fresh) order_.push_back(op);
    Row& r = it->second;
    ++r.calls;
    r.ms += ms;
    r.weight_bytes += static_cast<double>(weight_bytes);
    r.flops += flops;
  }
  std::vector<Row> rows() const {  // in first-seen order
    std::lock_guard lock(mu_);
    std::vector<Row> out;
    for (const std::string& name : order_) {
      Row r = rows_.at(name);
      r.op = name;
      out.push_back(r);
    }
    return out;
  }
  void clear() {
    std::lock_guard lock(mu_);
    rows_.clear();
    order_.clear();
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> order_;
  std::map<std::string, Row> rows_;
};

// Times the scope as `op` when `cx` has a profile attached.
class OpTimer {
 public:
  OpTimer(const Compute& cx, const char* op, size_t weight_bytes = 0, double flops = 0)
      : profile_(cx.profile()), op_(op), bytes_(weight_bytes), flops_(flops) {
    if (profile_) start_ = std::chrono::steady_clock::now();
  }
  ~OpTimer() {
    if (profile_) {
      profile_->add(
          op_,
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_)
              .count(),
          bytes_, flops_);
    }
  }
  OpTimer(const OpTimer&) = delete;
  OpTimer& operator=(const OpTimer&) = delete;

 private:
  OpProfile* profile_;
  const char* op_;
  size_t bytes_;
  double flops_;
  std::chrono::steady_clock::time_point start_;
};

// Times the consecutive stretches of a pass, one line at the top of each:
// `zones.enter("attention")` ends the stretch before it and starts this one, and the destructor (or
// `leave()`) ends the last. A pass then reads as its math, not as a brace scope around every call
// (gemma.cpp's zones).
class OpZones {
 public:
  explicit OpZones(const Compute& cx) : profile_(cx.profile()) {}
  ~OpZones() { leave(); }
  void enter(const char* op, size_t weight_bytes = 0, double flops = 0) {
    if (!profile_) return;
    const auto now = std::chrono::steady_clock::now();
    close(now);
    op_ = op;
    bytes_ = weight_bytes;
    flops_ = flops;
    start_ = now;
  }
  void leave() {
    if (profile_) close(std::chrono::steady_clock::now());
  }
  OpZones(const OpZones&) = delete;
  OpZones& operator=(const OpZones&) = delete;

 private:
  void close(std::chrono::steady_clock::time_point now) {
    if (op_)
      profile_->add(op_, std::chrono::duration<double, std::milli>(now - start_).count(), bytes_,
                    flops_);
    op_ = nullptr;
  }
  OpProfile* profile_;
  const char* op_ = nullptr;
  size_t bytes_ = 0;
  double flops_ = 0;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace smolvlm::kernels
