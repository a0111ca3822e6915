// Runs the built `smolvlm` binary as a user would, capturing exit status and both streams.
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "formats/mapped_file.h"
#include "test_support.h"

namespace smolvlm::test {

struct CliResult {
  int status = -1;  // exit status; 128 + signal when killed
  std::string out, err;
};

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

inline CliResult run_cli(const std::vector<std::string>& args, const std::string& stdin_text = "") {
  TempDir dir;
  std::string cmd = shell_quote(SMOLVLM_CLI_PATH);
  for (const auto& a : args) cmd += " " + shell_quote(a);
  const std::string in = dir / "stdin";
  {
    FILE* f = std::fopen(in.c_str(), "wb");
    std::fwrite(stdin_text.data(), 1, stdin_text.size(), f);
    std::fclose(f);
  }
  cmd += " <" + shell_quote(in) + " >" + shell_quote(dir / "out") + " 2>" + shell_quote(dir / "err");
  const int raw = std::system(cmd.c_str());
  CliResult r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
  r.out = read_text_file(dir / "out");
  r.err = read_text_file(dir / "err");
  return r;
}

}  // namespace smolvlm::test
