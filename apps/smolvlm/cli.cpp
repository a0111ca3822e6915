// Shared pieces of the smolvlm subcommands: strict number parsing and the flag groups.
#include "cli.h"

#include <cerrno>
#include <cstdint>
#include <cstdlib>

#include "util/input_text.h"

namespace smolvlm::cli {

int parse_int(const std::string& flag, const std::string& text, int lo, int hi) {
  errno = 0;
  char* end = nullptr;
  const long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || v < lo || v > hi) {
    throw UsageError(flag + " expects a whole number from " + std::to_string(lo) + " to " +
                     std::to_string(hi) + ", got " + quote_input(text));
  }
  return static_cast<int>(v);
}

double parse_double(const std::string& flag, const std::string& text, double lo, double hi) {
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || errno != 0 || !(v >= lo && v <= hi)) {
    throw UsageError(flag + " expects a number from " + std::to_string(lo) + " to " +
                     std::to_string(hi) + ", got " + quote_input(text));
  }
  return v;
}

bool parse_generation_flag(int argc, char** argv, int& i, GenerationOptions& gen) {
  const std::string a = argv[i];
  auto value = [&] { return flag_value(argc, argv, i); };
  if (a == "--temp") {
    gen.temperature = static_cast<float>(parse_double(a, value(), 0.0, 100.0));
  } else if (a == "--top-k") {
    gen.top_k = parse_int(a, value(), 0, 1 << 20);
  } else if (a == "--top-p") {
    gen.top_p = static_cast<float>(parse_double(a, value(), 0.0, 1.0));
  } else if (a == "--repeat-penalty") {
    gen.repeat_penalty = static_cast<float>(parse_double(a, value(), 0.01, 100.0));
  } else if (a == "--seed") {
    gen.seed = static_cast<uint64_t>(parse_int(a, value(), 0, 2147483647));
  } else if (a == "--no-split") {
    gen.split_images = false;
  } else if (a == "--max-tiles") {
    gen.max_tiles = parse_int(a, value(), 1, 1024);
  } else {
    return false;
  }
  return true;
}

bool parse_load_flag(int argc, char** argv, int& i, LoadFlags& flags) {
  const std::string a = argv[i];
  auto value = [&] { return flag_value(argc, argv, i); };
  if (a == "-m" || a == "--model") {
    flags.model = value();
  } else if (a == "--mmproj") {
    flags.options.mmproj = value();
  } else if (a == "-t" || a == "--threads") {
    flags.options.threads = parse_int(a, value(), 1, 256);
  } else if (a == "-c" || a == "--context") {
    flags.options.context = parse_int(a, value(), 16, 1 << 20);
  } else if (a == "--vision-precision") {
    flags.options.vision_precision = parse_vision_precision(value());
  } else if (a == "--kernels") {
    flags.options.kernels = value();
  } else {
    return false;
  }
  return true;
}

}  // namespace smolvlm::cli
