// Shared pieces of the smolvlm subcommands: strict number parsing and the flag groups.
#include "cli.h"

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <filesystem>

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

VisionPrecision parse_vision_precision(const std::string& name) {
  if (name == "auto") return VisionPrecision::Auto;
  if (name == "f32") return VisionPrecision::F32;
  if (name == "bf16") return VisionPrecision::Bf16;
  throw Error("unknown vision precision " + quote_input(name) + " (auto, f32 or bf16)");
}

std::string cache_dir_from_environment() {
  namespace fs = std::filesystem;
  if (const char* d = std::getenv("SMOLVLM_CACHE_DIR"); d && *d)
    return std::string(d) == "off" ? std::string() : std::string(d);
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return fs::path(x) / "smolvlm";
  if (const char* h = std::getenv("HOME"); h && *h) return fs::path(h) / ".cache" / "smolvlm";
  return {};
}

LoadFlags::LoadFlags() { options.cache_dir = cache_dir_from_environment(); }

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
    return parse_picture_flag(argc, argv, i);
  }
  return true;
}

bool parse_picture_flag(int argc, char** argv, int& i) {
  if (std::string(argv[i]) != "--max-picture-pixels") return false;
  const std::string flag = argv[i];
  set_max_picture_pixels(
      parse_int(flag, flag_value(argc, argv, i), 1, static_cast<int>(kMaxPicturePixelsCeiling)));
  return true;
}

}  // namespace smolvlm::cli
