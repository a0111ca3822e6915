// Shared pieces of the smolvlm subcommands.
#pragma once

#include <smolvlm/smolvlm.h>

#include <stdexcept>
#include <string>

#include "flag_table.h"

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

// The load flags of every subcommand that loads a model, declared once: -m/--model, --mmproj,
// -t/--threads, -c/--context, --vision-precision, --kernels, and --max-picture-pixels (the
// process-wide limit of decoded pictures, set_max_picture_pixels). Set defaults (a subcommand's
// own context, say) before adding: the help states them.
struct LoadFlags {
  LoadFlags();          // options.cache_dir from the environment (cache_dir_from_environment)
  std::string model;    // -m/--model; the subcommand says whether it is required
  LoadOptions options;  // the others
};
void add_load_flags(FlagTable& table, LoadFlags& flags);

// The sampling and tiling flags, declared once: --temp, --top-k, --top-p, --repeat-penalty,
// --seed, --no-split, --max-tiles.
void add_generation_flags(FlagTable& table, GenerationOptions& gen);

// --vision-precision's "auto", "f32" or "bf16" → the enum; throws smolvlm::Error otherwise.
VisionPrecision parse_vision_precision(const std::string& name);
// LoadOptions::cache_dir as the programs take it: $SMOLVLM_CACHE_DIR ("off": none), else
// $XDG_CACHE_HOME/smolvlm, else $HOME/.cache/smolvlm, else none.
std::string cache_dir_from_environment();

}  // namespace smolvlm::cli
