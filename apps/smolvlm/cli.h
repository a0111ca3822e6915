// Shared pieces of the smolvlm subcommands.
#pragma once

#include <smolvlm/smolvlm.h>

#include <stdexcept>
#include <string>

namespace smolvlm::cli {

// A bad command line: reported with a hint to --help, exit status 2.
class UsageError : public std::runtime_error {
 public:
  explicit UsageError(const std::string& m) : std::runtime_error(m) {}
};

int run_ask(int argc, char** argv);
int run_random_model(int argc, char** argv);
int run_bench(int argc, char** argv);
int run_chat(int argc, char** argv);
int run_pull(int argc, char** argv);
int run_convert(int argc, char** argv);
int run_serve(int argc, char** argv);  // only in builds with the server (SMOLVLM_WITH_SERVER)
int run_watch(int argc, char** argv);

// The value after the flag at argv[i] (advancing i), or a UsageError naming the flag.
inline std::string flag_value(int argc, char** argv, int& i) {
  if (i + 1 >= argc) throw UsageError(std::string(argv[i]) + " needs a value");
  return argv[++i];
}

// Strict number parsing for flags: the whole text must be a number in range.
int parse_int(const std::string& flag, const std::string& text, int lo, int hi);
double parse_double(const std::string& flag, const std::string& text, double lo, double hi);

// Sampling and tiling flags shared by ask and chat (--temp, --top-k, --top-p, --repeat-penalty,
// --seed, --no-split, --max-tiles); argv[i] is the flag (i advances past its value). Returns
// false when argv[i] is not one of them.
bool parse_generation_flag(int argc, char** argv, int& i, GenerationOptions& gen);

// The load flags of every subcommand that loads a model: -m/--model, --mmproj, -t/--threads,
// -c/--context, --vision-precision, --kernels. Set defaults (a subcommand's own context, say)
// before parsing.
struct LoadFlags {
  LoadFlags();          // options.cache_dir from the environment (cache_dir_from_environment)
  std::string model;    // -m/--model; the subcommand says whether it is required
  LoadOptions options;  // the others
};
// --vision-precision's "auto", "f32" or "bf16" → the enum; throws smolvlm::Error otherwise.
VisionPrecision parse_vision_precision(const std::string& name);
// LoadOptions::cache_dir as the programs take it: $SMOLVLM_CACHE_DIR ("off": none), else
// $XDG_CACHE_HOME/smolvlm, else $HOME/.cache/smolvlm, else none.
std::string cache_dir_from_environment();
// Consumes argv[i] (and its value, advancing i) when it is a load flag; false otherwise.
// --max-picture-pixels counts as one (parse_picture_flag).
bool parse_load_flag(int argc, char** argv, int& i, LoadFlags& flags);

// --max-picture-pixels N: sets the process-wide limit of decoded pictures (Pillow's
// decompression-bomb rule by default, set_max_picture_pixels). False when argv[i] is another flag.
bool parse_picture_flag(int argc, char** argv, int& i);

}  // namespace smolvlm::cli
