// A one-line progress bar on stderr for long work (downloads, conversion, model writing).
// It redraws only when the shown percentage changes, and stays quiet when stderr is no terminal
// except for the final line.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace smolvlm::cli {

class ProgressBar {
 public:
  ProgressBar(std::string label, size_t total)
      : label_(std::move(label)), total_(total), tty_(isatty(2) != 0), start_(Clock::now()) {}
  void advance(size_t n) { set(done_ + n); }
  void set(size_t done) {
    done_ = done;
    const int pct =
        total_ ? static_cast<int>(100.0 * static_cast<double>(done_) / static_cast<double>(total_))
               : 100;
    if (pct == shown_ || !tty_) return;
    shown_ = pct;
    draw('\r');
  }
  void done() {
    done_ = total_;
    shown_ = 100;
    draw('\n');
  }

 private:
  using Clock = std::chrono::steady_clock;
  void draw(char end) {
    const int width = 30, filled = shown_ * width / 100;
    const double secs = std::chrono::duration<double>(Clock::now() - start_).count();
    const double mb = static_cast<double>(done_) / 1e6;
    std::fprintf(stderr, "%s [%s%s] %3d%% %.1f MB %.1f MB/s%c", label_.c_str(),
                 std::string(filled, '#').c_str(), std::string(width - filled, ' ').c_str(), shown_,
                 mb, secs > 0 ? mb / secs : 0.0, end);
    std::fflush(stderr);
  }
  std::string label_;
  size_t total_, done_ = 0;
  int shown_ = -1;
  bool tty_;
  Clock::time_point start_;
};

// "video frames [#####     ] 5/10" on stderr while a video's sampled frames decode; drawn only
// when stderr is a terminal (scripts and logs get nothing), cleared when done.
class FrameProgress {
 public:
  FrameProgress() : tty_(isatty(2) != 0) {}
  void update(int done, int total) {
    if (!tty_ || total <= 0) return;
    const int width = 30, filled = done * width / total;
    std::fprintf(stderr, "\rvideo frames [%s%s] %d/%d", std::string(filled, '#').c_str(),
                 std::string(width - filled, ' ').c_str(), done, total);
    if (done == total) std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
  }

 private:
  bool tty_;
};

}  // namespace smolvlm::cli
