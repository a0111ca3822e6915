// smolvlm random-model: a full-size HF model folder with random weights, from a real config,
// so the real architecture can be benchmarked where the real weights cannot be downloaded.
#include <smolvlm/smolvlm.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "cli.h"
#include "loader/tools_interface.h"
#include "progress.h"
#include "util/input_text.h"

namespace smolvlm::cli {

namespace {

const char kHelp[] =
    "usage: smolvlm random-model --config DIR -o OUT_DIR [--dtype f32|bf16] [--seed S]\n"
    "                            [--lm-head-std X]\n"
    "\n"
    "Writes OUT_DIR/model.safetensors with random weights shaped by DIR/config.json, and copies\n"
    "DIR's config, processor and tokenizer files next to it. Speed does not depend on the\n"
    "weight values, so the folder benchmarks the real architecture.\n"
    "\n"
    "  --lm-head-std X   standard deviation of an untied lm_head (default 0.02, as every\n"
    "                    matrix): a larger one makes the logits peakier (llama.cpp comparisons)\n";

// xorshift64*: fast, reproducible; the sum of four uniforms is a good enough bell curve.
class Random {
 public:
  explicit Random(uint64_t seed) : s_(seed * 0x9E3779B97F4A7C15ull + 1) {}
  float normal() {
    float acc = 0;
    for (int i = 0; i < 4; ++i) acc += static_cast<float>(next() >> 40) * (1.0f / 16777216.0f);
    return (acc - 2.0f) * 1.7320508f;  // variance of the sum is 4/12
  }

 private:
  uint64_t next() {
    s_ ^= s_ >> 12;
    s_ ^= s_ << 25;
    s_ ^= s_ >> 27;
    return s_ * 0x2545F4914F6CDD1Dull;
  }
  uint64_t s_;
};

bool is_norm_weight(const std::string& name) {
  return name.find("norm") != std::string::npos && name.size() > 7 &&
         name.compare(name.size() - 7, 7, ".weight") == 0;
}

}  // namespace

int run_random_model(int argc, char** argv) {
  std::string config_dir, out_dir, dtype_name_arg = "f32";
  uint64_t seed = 1;
  float lm_head_std = 0.02f;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kHelp, stdout);
      return 0;
    } else if (a == "--config") {
      config_dir = flag_value(argc, argv, i);
    } else if (a == "-o" || a == "--out") {
      out_dir = flag_value(argc, argv, i);
    } else if (a == "--dtype") {
      dtype_name_arg = flag_value(argc, argv, i);
    } else if (a == "--seed") {
      seed = static_cast<uint64_t>(parse_int(a, flag_value(argc, argv, i), 0, 2147483647));
    } else if (a == "--lm-head-std") {
      lm_head_std = static_cast<float>(parse_double(a, flag_value(argc, argv, i), 1e-6, 100.0));
    } else {
      throw UsageError("unknown option " + quote_input(a));
    }
  }
  if (config_dir.empty() || out_dir.empty())
    throw UsageError("--config DIR and -o OUT_DIR are required");
  if (dtype_name_arg != "f32" && dtype_name_arg != "bf16")
    throw UsageError("--dtype is f32 or bf16");
  const DType dtype = dtype_name_arg == "f32" ? DType::F32 : DType::BF16;

  const ModelConfig cfg = load_hf_config(config_dir);
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) throw Error("cannot create " + quote_input(out_dir) + ": " + ec.message());
  if (!fs::exists(fs::path(config_dir) / "tokenizer.json")) {
    throw Error(quote_input(config_dir) + " has no tokenizer.json to copy");
  }
  // Outputs are checked before anything is written: a FIFO where a copy goes would block it.
  auto check_output = [](const fs::path& p) {
    std::error_code e;
    if (fs::exists(p, e) && !fs::is_regular_file(p, e))
      throw Error("cannot write " + quote_input(p.string()) + ": not a regular file");
  };
  check_output(fs::path(out_dir) / "model.safetensors");
  for (const auto& e : fs::directory_iterator(config_dir, ec)) {
    const std::string n = e.path().filename().string();
    const bool wanted = e.path().extension() == ".json" || n == "merges.txt";
    if (wanted && n != "model.safetensors.index.json" && e.is_regular_file(ec)) {
      const fs::path dst = fs::path(out_dir) / n;
      check_output(dst);
      fs::copy_file(e.path(), dst, fs::copy_options::overwrite_existing, ec);
      if (!ec) {
        fs::permissions(dst, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::add,
                        ec);
      }
      if (ec) throw Error("cannot copy " + quote_input(e.path().string()) + ": " + ec.message());
    }
  }
  if (ec) throw Error("cannot read the folder " + quote_input(config_dir) + ": " + ec.message());

  std::vector<TensorSpec> specs;
  size_t total = 0;
  for (const auto& t : hf_tensor_shapes(cfg)) {
    specs.push_back({t.name, dtype, t.shape});
    total += specs.back().nbytes();
  }
  const std::string path = (fs::path(out_dir) / "model.safetensors").string();
  SafetensorsWriter writer(path, specs);
  Random rng(seed);
  ProgressBar bar("writing " + path, total);
  std::vector<uint8_t> bytes;
  for (const auto& s : specs) {
    const size_t n = s.nbytes() / dtype_size(dtype);
    bytes.resize(s.nbytes());
    const bool norm = is_norm_weight(s.name);
    const float std_dev = s.name == "lm_head.weight" ? lm_head_std : 0.02f;
    for (size_t i = 0; i < n; ++i) {
      const float v = norm ? 1.0f + 0.05f * rng.normal() : std_dev * rng.normal();
      if (dtype == DType::F32) {
        std::memcpy(bytes.data() + 4 * i, &v, 4);
      } else {
        const uint16_t h = f32_to_bf16(v);
        std::memcpy(bytes.data() + 2 * i, &h, 2);
      }
    }
    writer.write_next(bytes.data(), bytes.size());
    bar.advance(bytes.size());
  }
  writer.finish();
  bar.done();
  std::fprintf(stderr, "wrote %s (%zu tensors, %.1f MB, %s)\n", out_dir.c_str(), specs.size(),
               static_cast<double>(total) / 1e6, dtype_name(dtype));
  return 0;
}

}  // namespace smolvlm::cli
