// smolvlm bench: load, vision, prefill, decode and memory figures — medians over --repeat runs
// with their min–max, as a table for people and JSON for scripts.
#include <smolvlm/smolvlm.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "chat/bench_interface.h"
#include "cli.h"

namespace smolvlm::cli {

namespace {

const char kUsage[] =
    "usage: smolvlm bench -m MODEL [--image FILE] [-p N_PROMPT] [-n N_GEN] [--threads N]\n"
    "                     [--repeat N] [--context N] [--json]\n"
    "\n";

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

double peak_rss_mb() { return static_cast<double>(peak_rss_bytes()) / (1024.0 * 1024.0); }

struct Stat {
  std::vector<double> v;
  double median() const {
    if (v.empty()) return 0;
    std::vector<double> s = v;
    std::sort(s.begin(), s.end());
    return s.size() % 2 ? s[s.size() / 2] : (s[s.size() / 2 - 1] + s[s.size() / 2]) / 2;
  }
  double min() const { return v.empty() ? 0 : *std::min_element(v.begin(), v.end()); }
  double max() const { return v.empty() ? 0 : *std::max_element(v.begin(), v.end()); }
};

// Decodes n tokens greedily after what `seq` holds, as the answer loop does; returns the ms spent.
double decode(const kernels::Compute& cx, Sequence& seq, int vocab, int n) {
  const auto t = Clock::now();
  for (int i = 0; i < n; ++i) seq.push(cx, argmax(std::span<const float>(seq.logits(), vocab)));
  return ms_since(t);
}

// A decode profile's rows per token, and the time outside the timed ops.
nlohmann::json decode_profile_rows(const kernels::OpProfile& ops, double step_ms, int n) {
  nlohmann::json rows = nlohmann::json::array();
  double timed = 0;
  for (const auto& r : ops.rows()) {
    const double ms = r.ms / n, bytes = r.weight_bytes / n;
    timed += ms;
    rows.push_back({{"op", r.op},
                    {"calls_per_token", static_cast<double>(r.calls) / n},
                    {"ms_per_token", ms},
                    {"share", ms / step_ms},
                    {"weight_mb_per_token", bytes / 1e6},
                    {"weight_gb_s", ms > 0 ? bytes / (ms * 1e6) : 0.0}});
  }
  rows.push_back({{"op", "outside the ops (embedding, argmax, loop)"},
                  {"calls_per_token", 1},
                  {"ms_per_token", step_ms - timed},
                  {"share", (step_ms - timed) / step_ms},
                  {"weight_mb_per_token", 0},
                  {"weight_gb_s", 0}});
  return rows;
}

void print_decode_profile(const char* what, const nlohmann::json& rows, double step_ms, int n) {
  std::printf("\n%s, %d tokens: %.3f ms a token (%.1f tok/s)\n", what, n, step_ms,
              1000.0 / step_ms);
  std::printf("%-42s %8s %10s %7s %12s %8s\n", "op", "calls", "us/token", "share", "weights MB",
              "GB/s");
  for (const auto& r : rows) {
    std::printf("%-42s %8.0f %10.1f %6.1f%% %12.2f %8.1f\n", r["op"].get<std::string>().c_str(),
                r["calls_per_token"].get<double>(), r["ms_per_token"].get<double>() * 1000,
                r["share"].get<double>() * 100, r["weight_mb_per_token"].get<double>(),
                r["weight_gb_s"].get<double>());
  }
}

// What to measure: the command line, parsed.
struct BenchSettings {
  LoadFlags load;
  std::string image;  // empty: vision is timed on a random tile
  int n_prompt = 512, n_gen = 128, repeat = 3;
  std::string quantize;  // empty: the text weights as stored
  bool profile = false;
  bool text_only = false;  // --text-only: no vision tile (an A/B of the decoder in seconds)
};

// One profiled decode run: the step time and the rows of decode_profile_rows.
struct DecodeProfile {
  double step_ms = 0;
  nlohmann::json ops = nlohmann::json::array();
};

// One profiled vision tile: its time and a row an op.
struct TileProfile {
  double tile_ms = 0;
  nlohmann::json ops = nlohmann::json::array();
};

// Everything a run measured; the printers read only this.
struct BenchFigures {
  std::map<std::string, Stat> stats;  // by figure name, a value a run
  int threads = 0;
  std::string kernels, vision_precision;
  int image_tiles = 0, image_prompt_tokens = 0;
  double decode_weight_mb_per_token = 0, vision_gflop_per_tile = 0;
  double peak_rss_mb = 0, image_peak_rss_mb = 0;
  DecodeProfile text_profile, image_profile;  // with --profile (image: with --image too)
  TileProfile vision_profile;
};

// Loads the model once cold and `repeat` times warm (the page cache then holds the files).
std::unique_ptr<Model> time_loads(const BenchSettings& s, BenchFigures& f) {
  const LoadOptions& o = s.load.options;
  auto t = Clock::now();
  std::unique_ptr<Model> model =
      Model::load(s.load.model, o.mmproj, o.vision_precision, o.cache_dir);
  f.stats["load_cold_ms"].v.push_back(ms_since(t));  // first load in this process
  for (int r = 0; r < s.repeat; ++r) {
    model.reset();  // unmapping the previous copy is not part of loading this one
    t = Clock::now();
    model = Model::load(s.load.model, o.mmproj, o.vision_precision, o.cache_dir);
    f.stats["load_warm_ms"].v.push_back(ms_since(t));
  }
  return model;
}

// The whole picture request, as `ask` runs it (8-bit tiles encoded one at a time, the prompt
// rendered and prefilled): vision, prefill, time to first token, decode. With --profile the first
// run's decode is profiled too: a step after the picture prompt reads ~900 positions of keys and
// values a layer.
void time_picture_request(const Model& m, kernels::Compute& cx, const BenchSettings& s, int max_ctx,
                          BenchFigures& f) {
  const ModelConfig& cfg = m.config;
  const int vocab = cfg.text.vocab;
  const Image img = load_image_file(s.image);
  const std::vector<PromptMessage> msgs = {
      {"user", {{PromptItem::Kind::Image, {}}, {PromptItem::Kind::Text, "Describe the image."}}}};
  for (int r = 0; r < s.repeat; ++r) {
    const auto t0 = Clock::now();
    double vision_ms = 0;  // preprocessing and encoding, as Metrics::vision_ms
    const MediaPtr media = encode_picture(m, cx, img, cfg.processor, &vision_ms);
    f.image_tiles = media->n_tiles;
    f.stats["vision_ms_per_image"].v.push_back(vision_ms);
    f.stats["vision_ms_per_tile"].v.push_back(vision_ms / media->n_tiles);
    const RenderedPrompt prompt = render_prompt(m, msgs, {media});
    f.image_prompt_tokens = static_cast<int>(prompt.size());
    Sequence seq(m, max_ctx);
    const auto t = Clock::now();
    seq.prefill(cx, prompt);
    f.stats["image_prefill_tok_s"].v.push_back(f.image_prompt_tokens * 1000.0 / ms_since(t));
    f.stats["ttft_ms"].v.push_back(ms_since(t0));
    const bool profiled = s.profile && r == 0;
    kernels::OpProfile ops;
    if (profiled) cx.set_profile(&ops);
    const double decode_ms = decode(cx, seq, vocab, s.n_gen);
    cx.set_profile(nullptr);
    if (profiled) {
      f.image_profile.step_ms = decode_ms / s.n_gen;
      f.image_profile.ops = decode_profile_rows(ops, f.image_profile.step_ms, s.n_gen);
    }
    f.stats["image_decode_tok_s"].v.push_back(s.n_gen * 1000.0 / decode_ms);
    f.stats["image_request_ms"].v.push_back(ms_since(t0));
  }
}

std::vector<float> random_tile(const ModelConfig& cfg, std::mt19937& rng) {
  std::vector<float> px(static_cast<size_t>(3) * cfg.vision.image_size * cfg.vision.image_size);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (auto& v : px) v = u(rng);
  return px;
}

// Vision speed on one random tile (without --image).
void time_random_tile(const Model& m, const kernels::Compute& cx, const BenchSettings& s,
                      std::mt19937& rng, BenchFigures& f) {
  const std::vector<float> px = random_tile(m.config, rng);
  for (int r = 0; r < s.repeat; ++r) {
    const auto t = Clock::now();
    (void)m.vision.image_features(cx, px.data(), 1);
    f.stats["vision_ms_per_tile"].v.push_back(ms_since(t));
  }
}

// A fresh sequence holding one token, for decode from an empty context (tg-style).
Sequence one_token_sequence(const Model& m, const kernels::Compute& cx, int n_gen) {
  Sequence fresh(m, n_gen + 1);
  fresh.push(cx, 1);
  return fresh;
}

// Text prefill and decode on a random prompt of ordinary tokens.
void time_text(const Model& m, const kernels::Compute& cx, const BenchSettings& s,
               std::mt19937& rng, BenchFigures& f) {
  const ModelConfig& cfg = m.config;
  std::uniform_int_distribution<int32_t> tok(100,
                                             49000 < cfg.text.vocab ? 49000 : cfg.text.vocab - 1);
  RenderedPrompt text_prompt;  // ordinary tokens, no media
  text_prompt.ids.resize(static_cast<size_t>(s.n_prompt));
  for (auto& id : text_prompt.ids) id = tok(rng);
  text_prompt.source.assign(text_prompt.ids.size(), kTextSource);
  text_prompt.rows.assign(text_prompt.ids.size(), nullptr);
  for (int r = 0; r < s.repeat; ++r) {
    Sequence seq(m, s.n_prompt + s.n_gen);
    const auto t = Clock::now();
    seq.prefill(cx, text_prompt);
    f.stats["prefill_tok_s"].v.push_back(s.n_prompt * 1000.0 / ms_since(t));
    Sequence fresh = one_token_sequence(m, cx, s.n_gen);
    f.stats["decode_tok_s"].v.push_back(s.n_gen * 1000.0 /
                                        decode(cx, fresh, cfg.text.vocab, s.n_gen));
  }
}

// One more decode run with each operation timed (the timers' own cost is two clock reads an
// op, under 1% of a step), from an empty context like the decode figure.
DecodeProfile profile_decode(const Model& m, kernels::Compute& cx, int n_gen) {
  Sequence fresh = one_token_sequence(m, cx, n_gen);
  kernels::OpProfile ops;
  cx.set_profile(&ops);
  DecodeProfile p;
  p.step_ms = decode(cx, fresh, m.config.text.vocab, n_gen) / n_gen;
  cx.set_profile(nullptr);
  p.ops = decode_profile_rows(ops, p.step_ms, n_gen);
  return p;
}

// One vision tile with each operation timed: where a tile's time goes, and the GFLOP/s of each
// product (for setting against the arithmetic peak, bench/compare_llamacpp.py). A tile first
// runs untimed, as the tiles of a picture share their buffers: the profiled one is a picture's
// second tile, not one paying for ~30 MB of first-touched scratch.
TileProfile profile_vision_tile(const Model& m, kernels::Compute& cx, std::mt19937& rng) {
  const std::vector<float> px = random_tile(m.config, rng);
  VisionEncoder::TileScratch scratch;
  (void)m.vision.image_features(cx, px.data(), 1, &scratch);
  kernels::OpProfile ops;
  cx.set_profile(&ops);
  const auto t = Clock::now();
  (void)m.vision.image_features(cx, px.data(), 1, &scratch);
  TileProfile p;
  p.tile_ms = ms_since(t);
  cx.set_profile(nullptr);
  double timed = 0;
  for (const auto& r : ops.rows()) {
    timed += r.ms;
    p.ops.push_back({{"op", r.op},
                     {"calls_per_tile", r.calls},
                     {"ms_per_tile", r.ms},
                     {"share", r.ms / p.tile_ms},
                     {"gflop_per_tile", r.flops / 1e9},
                     {"gflop_s", r.ms > 0 ? r.flops / (r.ms * 1e6) : 0.0}});
  }
  p.ops.push_back({{"op", "outside the ops (patches, pixel shuffle)"},
                   {"calls_per_tile", 1},
                   {"ms_per_tile", p.tile_ms - timed},
                   {"share", (p.tile_ms - timed) / p.tile_ms},
                   {"gflop_per_tile", 0},
                   {"gflop_s", 0}});
  return p;
}

// Every measurement, in the order that keeps each figure honest: the picture request first (its
// peak RSS is that of a process that loaded the model and answered the picture), the text tests
// after, the profiled runs last.
BenchFigures measure(const BenchSettings& s) {
  BenchFigures f;
  // This run's threads and kernel path.
  kernels::Compute cx(s.load.options.threads, s.load.options.kernels);
  std::unique_ptr<Model> model = time_loads(s, f);
  if (!s.quantize.empty()) {
    requantize(const_cast<ModelWeights&>(model->weights),
               s.quantize == "q8_0" ? DType::Q8_0 : DType::F16, DType::F32);
  }
  const Model& m = *model;
  const int max_ctx = std::min(s.load.options.context, m.config.text.max_positions);
  if (s.n_prompt + s.n_gen > max_ctx)
    throw Error("-p + -n exceed the context of " + std::to_string(max_ctx));

  std::mt19937 rng(1234);
  if (!s.image.empty()) {
    time_picture_request(m, cx, s, max_ctx, f);
    f.image_peak_rss_mb = peak_rss_mb();
  } else if (!s.text_only) {
    time_random_tile(m, cx, s, rng, f);
  }
  time_text(m, cx, s, rng, f);
  f.peak_rss_mb = peak_rss_mb();
  if (s.profile) {
    f.text_profile = profile_decode(m, cx, s.n_gen);
    if (!s.text_only) f.vision_profile = profile_vision_tile(m, cx, rng);
  }
  f.threads = cx.threads();
  f.kernels = cx.path_name();
  f.vision_precision = m.vision.arithmetic(cx);
  // The work behind two figures, for setting them against the hardware's ceilings
  // (bench/compare_llamacpp.py).
  f.decode_weight_mb_per_token = m.decoder.weight_bytes_per_step() / 1e6;
  f.vision_gflop_per_tile = m.vision.flops_per_tile() / 1e9;
  return f;
}

// ---------------------------------------------------------------------------- printing

nlohmann::json figures_json(const BenchSettings& s, const BenchFigures& f) {
  nlohmann::json out = {{"model", s.load.model},
                        {"threads", f.threads},
                        {"kernels", f.kernels},
                        {"vision_precision", f.vision_precision},
                        {"text_weights", s.quantize.empty() ? "as stored" : s.quantize},
                        {"repeat", s.repeat},
                        {"n_prompt", s.n_prompt},
                        {"n_gen", s.n_gen},
                        {"image_tiles", f.image_tiles},
                        {"image_prompt_tokens", f.image_prompt_tokens},
                        {"decode_weight_mb_per_token", f.decode_weight_mb_per_token},
                        {"vision_gflop_per_tile", f.vision_gflop_per_tile},
                        {"peak_rss_mb", f.peak_rss_mb}};
  if (!s.image.empty()) out["image_peak_rss_mb"] = f.image_peak_rss_mb;
  if (s.profile) {
    out["profile"] = {{"step_ms", f.text_profile.step_ms}, {"ops", f.text_profile.ops}};
    if (!s.image.empty())
      out["image_decode_profile"] = {{"step_ms", f.image_profile.step_ms},
                                     {"ops", f.image_profile.ops}};
    if (!s.text_only)
      out["vision_profile"] = {{"tile_ms", f.vision_profile.tile_ms},
                               {"ops", f.vision_profile.ops}};
  }
  for (const auto& [k, st] : f.stats) {
    out[k] = st.median();
    out["range"][k] = {st.min(), st.max()};
  }
  return out;
}

void print_vision_profile(const TileProfile& p) {
  std::printf("\nvision tile: %.1f ms\n", p.tile_ms);
  std::printf("%-42s %8s %10s %7s %12s %8s\n", "op", "calls", "ms/tile", "share", "GFLOP",
              "GFLOP/s");
  for (const auto& r : p.ops) {
    std::printf("%-42s %8d %10.2f %6.1f%% %12.2f %8.1f\n", r["op"].get<std::string>().c_str(),
                r["calls_per_tile"].get<int>(), r["ms_per_tile"].get<double>(),
                r["share"].get<double>() * 100, r["gflop_per_tile"].get<double>(),
                r["gflop_s"].get<double>());
  }
}

void print_figures(const BenchSettings& s, const BenchFigures& f) {
  std::printf("model %s, %d threads, kernels %s, vision %s, %d runs (median, min-max)\n",
              s.load.model.c_str(), f.threads, f.kernels.c_str(), f.vision_precision.c_str(),
              s.repeat);
  std::printf("%-22s %12s %22s\n", "figure", "median", "range");
  for (const auto& [k, st] : f.stats) {
    std::printf("%-22s %12.2f %10.2f - %-10.2f\n", k.c_str(), st.median(), st.min(), st.max());
  }
  std::printf("%-22s %12.1f\n", "peak_rss_mb", f.peak_rss_mb);
  if (!s.image.empty()) std::printf("%-22s %12.1f\n", "image_peak_rss_mb", f.image_peak_rss_mb);
  if (f.image_tiles)
    std::printf("%-22s %12d (%d prompt tokens)\n", "image_tiles", f.image_tiles,
                f.image_prompt_tokens);
  std::printf("%-22s %12.1f MB of weights a decode step, %.1f GFLOP a vision tile\n", "work",
              f.decode_weight_mb_per_token, f.vision_gflop_per_tile);
  if (s.profile) {
    print_decode_profile("decode step", f.text_profile.ops, f.text_profile.step_ms, s.n_gen);
    if (!s.image.empty())
      print_decode_profile("decode step after the picture prompt", f.image_profile.ops,
                           f.image_profile.step_ms, s.n_gen);
    if (!s.text_only) print_vision_profile(f.vision_profile);
  }
}

}  // namespace

int run_bench(int argc, char** argv) {
  BenchSettings s;
  s.load.options.context = 4096;
  bool json = false;
  FlagTable flags;
  add_load_flags(flags, s.load);
  flags["-c"].help = "KV-cache size for the picture request (default 4096)";
  flags.add({"--image"}, "FILE", "also time the whole picture request (\"Describe the image.\")",
            [&](const std::string&, const std::string& v) { s.image = v; });
  flags.add({"--text-only"}, "", "time the text model alone (no vision tile; not with --image)",
            [&](const std::string&, const std::string&) { s.text_only = true; });
  flags.add({"-p"}, "N", "prompt tokens for the text prefill test (default 512)",
            [&](const std::string& a, const std::string& v) {
              s.n_prompt = parse_int(a, v, 1, 1 << 16);
            });
  flags.add(
      {"-n"}, "N", "tokens to decode (default 128)",
      [&](const std::string& a, const std::string& v) { s.n_gen = parse_int(a, v, 1, 1 << 16); });
  flags.add(
      {"-r", "--repeat"}, "N", "runs per figure; medians are reported (default 3)",
      [&](const std::string& a, const std::string& v) { s.repeat = parse_int(a, v, 1, 100); });
  flags.add({"--quantize"}, "T", "run the text model's matrices as T (q8_0, f16) after loading",
            [&](const std::string&, const std::string& v) {
              if (v != "q8_0" && v != "f16") throw UsageError("--quantize is q8_0 or f16");
              s.quantize = v;
            });
  flags.add({"--json"}, "", "print JSON instead of the table",
            [&](const std::string&, const std::string&) { json = true; });
  flags.add({"--profile"}, "",
            "also time each operation of a decode step (one more run of -n\n"
            "tokens; with --image, the first picture request's decode too):\n"
            "time per token, share, weight bytes and GB/s per op;\n"
            "and of one vision tile: time, share, GFLOP and GFLOP/s per op",
            [&](const std::string&, const std::string&) { s.profile = true; });
  if (!flags.parse(argc, argv)) {
    std::fputs((kUsage + flags.help()).c_str(), stdout);
    return 0;
  }
  if (s.load.model.empty()) throw UsageError("-m MODEL is required");
  if (s.text_only && !s.image.empty())
    throw UsageError("--text-only and --image exclude each other");
  const BenchFigures figures = measure(s);
  if (json) {
    std::puts(figures_json(s, figures).dump(2).c_str());
  } else {
    print_figures(s, figures);
  }
  return 0;
}

}  // namespace smolvlm::cli
