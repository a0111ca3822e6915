// Runs the built `smolvlm` binary as a user would, capturing exit status and both streams.
// CliProcess drives it interactively (standard input fed as you go, output read as it comes,
// signals such as Ctrl-C's SIGINT sent at a chosen moment); every wait has a deadline, and a
// process still running at the end is killed, so no test can hang.
#pragma once

// Defined in AddressSanitizer builds, whose shadow memory makes peak-RSS bounds meaningless: the
// tests that bound a child's memory check it only without.
#if defined(__SANITIZE_ADDRESS__)
#define SMOLVLM_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SMOLVLM_TEST_SANITIZED 1
#endif
#endif

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "formats/mapped_file.h"
#include "test_support.h"

namespace smolvlm::test {

struct CliResult {
  int status =
      -1;  // exit status; 128 + signal when killed; -1 when it had to be killed at the deadline
  std::string out, err;
  // The child's peak resident set (wait4's ru_maxrss), -1 when unknown. It includes the
  // anonymous pages the child inherited from this process at fork, so it bounds the CLI's own
  // peak from above.
  long peak_rss_kb = -1;
};

class CliProcess {
 public:
  using Ms = std::chrono::milliseconds;

  // `env`: extra NAME=VALUE entries on top of this process's environment; `program`: the smolvlm
  // CLI unless told otherwise.
  explicit CliProcess(const std::vector<std::string>& args,
                      const std::vector<std::string>& env = {},
                      const std::string& program = SMOLVLM_CLI_PATH) {
    ::signal(SIGPIPE, SIG_IGN);  // a child that exits early must not kill the test with it
    // Everything the child needs is built before fork: it only calls async-signal-safe functions.
    std::vector<char*> argv = {const_cast<char*>(program.c_str())};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::vector<char*> envp;  // the extra entries first: getenv takes the first of a name
    for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
    envp.push_back(nullptr);
    int in[2], out[2], err[2];
    if (pipe(in) != 0 || pipe(out) != 0 || pipe(err) != 0) std::abort();
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      dup2(err[1], 2);
      for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) close(fd);
      execve(program.c_str(), argv.data(), envp.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    in_ = in[1];
    out_ = out[0];
    err_ = err[0];
    fcntl(in_, F_SETFL, O_NONBLOCK);
  }
  ~CliProcess() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    for (int fd : {in_, out_, err_}) {
      if (fd >= 0) close(fd);
    }
  }
  CliProcess(const CliProcess&) = delete;
  CliProcess& operator=(const CliProcess&) = delete;

  void write(const std::string& text) {
    pending_in_ += text;
    pump(Ms(0));
  }
  void close_stdin() {
    close_in_ = true;
    pump(Ms(0));
  }
  void signal(int sig) { kill(pid_, sig); }

  // Waits until `needle` appears in standard output at or after `from`; false at the deadline or
  // when the output ends without it.
  bool wait_for(const std::string& needle, Ms timeout, size_t from = 0) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (out_text_.find(needle, from) == std::string::npos) {
      const auto left = std::chrono::duration_cast<Ms>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || (out_ < 0 && err_ < 0)) return false;
      pump(std::min(left, Ms(100)));
    }
    return true;
  }

  // Closes standard input and waits for the exit (killing the process at the deadline).
  CliResult finish(Ms timeout) {
    close_stdin();
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while ((out_ >= 0 || err_ >= 0) && std::chrono::steady_clock::now() < deadline) pump(Ms(100));
    CliResult r;
    int raw = 0;
    struct rusage usage {};
    while (wait4(pid_, &raw, WNOHANG, &usage) == 0) {
      if (std::chrono::steady_clock::now() >= deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &raw, 0);
        reaped_ = true;
        r.status = -1;
        r.out = out_text_;
        r.err = err_text_ + "\n[killed at the test's deadline]";
        return r;
      }
      usleep(10000);
    }
    reaped_ = true;
    r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
    r.peak_rss_kb = usage.ru_maxrss;
    r.out = out_text_;
    r.err = err_text_;
    return r;
  }

  const std::string& out() const { return out_text_; }
  const std::string& err() const { return err_text_; }

 private:
  // Moves data: pending input to the child, its output to our buffers; waits up to `wait`.
  void pump(Ms wait) {
    pollfd fds[3];
    int n = 0;
    if (out_ >= 0) fds[n++] = {out_, POLLIN, 0};
    if (err_ >= 0) fds[n++] = {err_, POLLIN, 0};
    if (in_ >= 0 && !pending_in_.empty()) fds[n++] = {in_, POLLOUT, 0};
    if (n > 0 && poll(fds, static_cast<nfds_t>(n), static_cast<int>(wait.count())) < 0 &&
        errno != EINTR) {
      return;
    }
    for (int i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == in_) continue;
      char buf[65536];
      const ssize_t got = read(fds[i].fd, buf, sizeof buf);
      int& fd = fds[i].fd == out_ ? out_ : err_;
      std::string& text = fds[i].fd == out_ ? out_text_ : err_text_;
      if (got > 0) {
        text.append(buf, static_cast<size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        close(fd);
        fd = -1;
      }
    }
    if (in_ >= 0 && !pending_in_.empty()) {
      const ssize_t put = ::write(in_, pending_in_.data(), pending_in_.size());
      if (put > 0) pending_in_.erase(0, static_cast<size_t>(put));
      if (put < 0 && errno == EPIPE) pending_in_.clear();
    }
    if (in_ >= 0 && close_in_ && pending_in_.empty()) {
      close(in_);
      in_ = -1;
    }
  }

  pid_t pid_ = -1;
  bool reaped_ = false;
  int in_ = -1, out_ = -1, err_ = -1;
  bool close_in_ = false;
  std::string pending_in_, out_text_, err_text_;
};

inline CliResult run_cli(const std::vector<std::string>& args, const std::string& stdin_text = "",
                         const std::vector<std::string>& env = {},
                         CliProcess::Ms timeout = CliProcess::Ms(300000),
                         const std::string& program = SMOLVLM_CLI_PATH) {
  CliProcess p(args, env, program);
  p.write(stdin_text);
  return p.finish(timeout);
}

}  // namespace smolvlm::test
