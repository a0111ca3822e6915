// Shared pieces of the smolvlm subcommands.
#pragma once

#include <stdexcept>
#include <string>

namespace smolvlm::cli {

// A bad command line: reported with a hint to --help, exit status 2.
class UsageError : public std::runtime_error {
 public:
  explicit UsageError(const std::string& m) : std::runtime_error(m) {}
};

int run_ask(int argc, char** argv);

// Strict number parsing for flags: the whole text must be a number in range.
int parse_int(const std::string& flag, const std::string& text, int lo, int hi);
double parse_double(const std::string& flag, const std::string& text, double lo, double hi);

}  // namespace smolvlm::cli
