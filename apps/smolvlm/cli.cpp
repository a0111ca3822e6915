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

void add_generation_flags(FlagTable& table, GenerationOptions& gen) {
  table.add({"--temp"}, "T", "sampling temperature (default 0 = greedy)",
            [&](const std::string& a, const std::string& v) {
              gen.temperature = static_cast<float>(parse_double(a, v, 0.0, 100.0));
            });
  table.add(
      {"--top-k"}, "K", "keep the K most likely tokens (default 0 = off)",
      [&](const std::string& a, const std::string& v) { gen.top_k = parse_int(a, v, 0, 1 << 20); });
  table.add({"--top-p"}, "P", "nucleus sampling mass (default 1 = off)",
            [&](const std::string& a, const std::string& v) {
              gen.top_p = static_cast<float>(parse_double(a, v, 0.0, 1.0));
            });
  table.add({"--repeat-penalty"}, "R", "HF repetition penalty (default 1 = off)",
            [&](const std::string& a, const std::string& v) {
              gen.repeat_penalty = static_cast<float>(parse_double(a, v, 0.01, 100.0));
            });
  table.add({"--seed"}, "S", "random seed for sampling (default 0)",
            [&](const std::string& a, const std::string& v) {
              gen.seed = static_cast<uint64_t>(parse_int(a, v, 0, 2147483647));
            });
  table.add({"--no-split"}, "", "one tile per picture (faster, less detail)",
            [&](const std::string&, const std::string&) { gen.split_images = false; });
  table.add({"--max-tiles"}, "N", "cap the tile grid per picture (speed over detail)",
            [&](const std::string& a, const std::string& v) {
              gen.max_tiles = parse_int(a, v, 1, 1024);
            });
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

void add_load_flags(FlagTable& table, LoadFlags& flags) {
  table.add({"-m", "--model"}, "DIR",
            "Hugging Face SmolVLM2 folder (config.json, tokenizer.json,\n"
            "*.safetensors), or a llama.cpp text GGUF (then --mmproj), or a\n"
            "folder with both GGUFs",
            [&](const std::string&, const std::string& v) { flags.model = v; });
  table.add({"--mmproj"}, "FILE", "the vision projector GGUF that goes with a text GGUF",
            [&](const std::string&, const std::string& v) { flags.options.mmproj = v; });
  table.add({"--vision-precision"}, "P",
            "auto (default: bf16 where the CPU has AVX512_BF16 and the\n"
            "mmproj is F16/BF16, else f32), f32 (the reference's float32)\n"
            "or bf16 (about 2x faster vision than f32)",
            [&](const std::string&, const std::string& v) {
              flags.options.vision_precision = parse_vision_precision(v);
            });
  const int context = flags.options.context;
  table.add({"-c", "--context"}, "N",
            "context length in tokens (default: " +
                (context > 0 ? std::to_string(context) : std::string("the model's")) + ")",
            [&](const std::string& a, const std::string& v) {
              flags.options.context = parse_int(a, v, 16, 1 << 20);
            });
  table.add({"-t", "--threads"}, "N", "worker threads (default: all cores)",
            [&](const std::string& a, const std::string& v) {
              flags.options.threads = parse_int(a, v, 1, 256);
            });
  table.add({"--kernels"}, "PATH",
            "kernel path (generic, avx2, avx512, neon, ...; default: the best)",
            [&](const std::string&, const std::string& v) { flags.options.kernels = v; });
  table.add(
      {"--max-picture-pixels"}, "N",
      "refuse pictures of more pixels, from their header\n"
      "(default " +
          std::to_string(kDefaultMaxPicturePixels) + ", Pillow's decompression-bomb limit)",
      [](const std::string& a, const std::string& v) {
        set_max_picture_pixels(parse_int(a, v, 1, static_cast<int>(kMaxPicturePixelsCeiling)));
      });
}

}  // namespace smolvlm::cli
