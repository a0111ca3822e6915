// smolvlm bench: load, vision, prefill, decode and memory figures — medians over --repeat runs
// with their min–max, as a table for people and JSON for scripts.
#include <smolvlm/smolvlm.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
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

double peak_rss_mb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // Linux reports KiB
}

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

// Decodes n tokens greedily after whatever is in the cache; returns the ms spent.
double decode(const Model& m, const kernels::Compute& cx, KVCache& cache,
              std::vector<float>& logits, int n) {
  std::vector<float> emb(static_cast<size_t>(m.config.text.hidden));
  DecoderScratch scratch;  // as the answer loop keeps one
  const auto t = Clock::now();
  for (int i = 0; i < n; ++i) {
    const int32_t id = argmax(logits);
    m.decoder.embed(&id, 1, emb.data());
    m.decoder.forward(cx, emb.data(), 1, cache, scratch, logits.data());
  }
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

}  // namespace

int run_bench(int argc, char** argv) {
  std::string image;
  int n_prompt = 512, n_gen = 128, repeat = 3;
  bool json = false, profile = false;
  std::string quantize;
  LoadFlags load;
  load.options.context = 4096;
  FlagTable flags;
  add_load_flags(flags, load);
  flags["-c"].help = "KV-cache size for the picture request (default 4096)";
  flags.add({"--image"}, "FILE", "also time the whole picture request (\"Describe the image.\")",
            [&](const std::string&, const std::string& v) { image = v; });
  flags.add(
      {"-p"}, "N", "prompt tokens for the text prefill test (default 512)",
      [&](const std::string& a, const std::string& v) { n_prompt = parse_int(a, v, 1, 1 << 16); });
  flags.add(
      {"-n"}, "N", "tokens to decode (default 128)",
      [&](const std::string& a, const std::string& v) { n_gen = parse_int(a, v, 1, 1 << 16); });
  flags.add({"-r", "--repeat"}, "N", "runs per figure; medians are reported (default 3)",
            [&](const std::string& a, const std::string& v) { repeat = parse_int(a, v, 1, 100); });
  flags.add({"--quantize"}, "T", "run the text model's matrices as T (q8_0, f16) after loading",
            [&](const std::string&, const std::string& v) {
              if (v != "q8_0" && v != "f16") throw UsageError("--quantize is q8_0 or f16");
              quantize = v;
            });
  flags.add({"--json"}, "", "print JSON instead of the table",
            [&](const std::string&, const std::string&) { json = true; });
  flags.add({"--profile"}, "",
            "also time each operation of a decode step (one more run of -n\n"
            "tokens; with --image, the first picture request's decode too):\n"
            "time per token, share, weight bytes and GB/s per op;\n"
            "and of one vision tile: time, share, GFLOP and GFLOP/s per op",
            [&](const std::string&, const std::string&) { profile = true; });
  if (!flags.parse(argc, argv)) {
    std::fputs((kUsage + flags.help()).c_str(), stdout);
    return 0;
  }
  if (load.model.empty()) throw UsageError("-m MODEL is required");
  const std::string& model_dir = load.model;
  const std::string& mmproj = load.options.mmproj;
  const VisionPrecision vision_precision = load.options.vision_precision;
  const int context = load.options.context;
  // This run's threads and kernel path.
  kernels::Compute cx(load.options.threads, load.options.kernels);
  std::map<std::string, Stat> st;

  auto t = Clock::now();
  std::unique_ptr<Model> model =
      Model::load(model_dir, mmproj, vision_precision, load.options.cache_dir);
  st["load_cold_ms"].v.push_back(ms_since(t));  // first load in this process
  for (int r = 0; r < repeat; ++r) {
    model.reset();  // unmapping the previous copy is not part of loading this one
    t = Clock::now();
    model = Model::load(model_dir, mmproj, vision_precision,
                        load.options.cache_dir);  // the page cache is warm now
    st["load_warm_ms"].v.push_back(ms_since(t));
  }
  if (!quantize.empty()) {
    requantize(const_cast<ModelWeights&>(model->weights),
               quantize == "q8_0" ? DType::Q8_0 : DType::F16, DType::F32);
  }
  const Model& m = *model;
  const ModelConfig& cfg = m.config;
  const int max_ctx = std::min(context, cfg.text.max_positions);
  if (n_prompt + n_gen > max_ctx)
    throw Error("-p + -n exceed the context of " + std::to_string(max_ctx));

  std::mt19937 rng(1234);
  std::vector<float> logits(static_cast<size_t>(cfg.text.vocab));
  // The whole picture request, as `ask` runs it — first, so that its peak RSS is that of a
  // process that loaded the model and answered the picture (the text tests come after).
  // std::mt19937 is seeded below for the text tests either way.
  int tiles = 0, prompt_tokens = 0;
  nlohmann::json image_prof = nlohmann::json::array();
  double image_prof_step_ms = 0;
  if (!image.empty()) {
    const Image img = load_image_file(image);
    const std::vector<PromptMessage> msgs = {
        {"user", {{PromptItem::Kind::Image, {}}, {PromptItem::Kind::Text, "Describe the image."}}}};
    for (int r = 0; r < repeat; ++r) {
      const auto t0 = Clock::now();
      PreparedPrompt p = prepare_prompt(m, msgs, {img}, cfg.processor);
      tiles = p.n_tiles;
      prompt_tokens = static_cast<int>(p.ids.size());
      t = Clock::now();
      const std::vector<float> feats = m.encode_pictures(cx, p.pixels.data(), p.n_tiles);
      const double vision_ms = ms_since(t);
      st["vision_ms_per_image"].v.push_back(vision_ms);
      st["vision_ms_per_tile"].v.push_back(vision_ms / p.n_tiles);
      std::vector<float>().swap(p.pixels);  // as Engine::generate: not needed for the answer
      KVCache cache(cfg.text, max_ctx);
      const std::vector<float> x = embed_prompt(m, p.ids, feats);
      t = Clock::now();
      m.decoder.forward(cx, x.data(), prompt_tokens, cache, logits.data());
      st["image_prefill_tok_s"].v.push_back(prompt_tokens * 1000.0 / ms_since(t));
      st["ttft_ms"].v.push_back(ms_since(t0));
      // The first run's decode is profiled too (--profile): a step after the picture prompt
      // reads ~900 positions of keys and values a layer.
      kernels::OpProfile ops;
      if (profile && r == 0) cx.set_profile(&ops);
      const double decode_ms = decode(m, cx, cache, logits, n_gen);
      cx.set_profile(nullptr);
      if (profile && r == 0) {
        image_prof_step_ms = decode_ms / n_gen;
        image_prof = decode_profile_rows(ops, image_prof_step_ms, n_gen);
      }
      st["image_decode_tok_s"].v.push_back(n_gen * 1000.0 / decode_ms);
      st["image_request_ms"].v.push_back(ms_since(t0));
    }
  } else {  // vision speed on one random tile
    const size_t tile = static_cast<size_t>(3) * cfg.vision.image_size * cfg.vision.image_size;
    std::vector<float> px(tile);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (auto& v : px) v = u(rng);
    for (int r = 0; r < repeat; ++r) {
      t = Clock::now();
      (void)m.vision.image_features(cx, px.data(), 1);
      st["vision_ms_per_tile"].v.push_back(ms_since(t));
    }
  }
  const double image_rss = image.empty() ? 0.0 : peak_rss_mb();

  // Text prefill and decode on a random prompt of ordinary tokens.
  std::uniform_int_distribution<int32_t> tok(100,
                                             49000 < cfg.text.vocab ? 49000 : cfg.text.vocab - 1);
  std::vector<int32_t> ids(static_cast<size_t>(n_prompt));
  for (auto& id : ids) id = tok(rng);
  for (int r = 0; r < repeat; ++r) {
    KVCache cache(cfg.text, n_prompt + n_gen);
    const std::vector<float> x = embed_prompt(m, ids, {});
    t = Clock::now();
    m.decoder.forward(cx, x.data(), n_prompt, cache, logits.data());
    st["prefill_tok_s"].v.push_back(n_prompt * 1000.0 / ms_since(t));
    KVCache fresh(cfg.text, n_gen + 1);  // text-only decode from an empty context (tg-style)
    const int32_t first = 1;
    std::vector<float> emb(static_cast<size_t>(cfg.text.hidden));
    m.decoder.embed(&first, 1, emb.data());
    m.decoder.forward(cx, emb.data(), 1, fresh, logits.data());
    st["decode_tok_s"].v.push_back(n_gen * 1000.0 / decode(m, cx, fresh, logits, n_gen));
  }

  const double rss = peak_rss_mb();

  // One more decode run with each operation timed (the timers' own cost is two clock reads an
  // op, under 1% of a step), from an empty context like the decode figure above.
  nlohmann::json prof = nlohmann::json::array();
  double prof_step_ms = 0;
  if (profile) {
    kernels::OpProfile ops;
    KVCache fresh(cfg.text, n_gen + 1);
    const int32_t first = 1;
    std::vector<float> emb(static_cast<size_t>(cfg.text.hidden));
    m.decoder.embed(&first, 1, emb.data());
    m.decoder.forward(cx, emb.data(), 1, fresh, logits.data());
    cx.set_profile(&ops);
    prof_step_ms = decode(m, cx, fresh, logits, n_gen) / n_gen;
    cx.set_profile(nullptr);
    prof = decode_profile_rows(ops, prof_step_ms, n_gen);
  }

  // And one vision tile with each operation timed: where a tile's time goes, and the GFLOP/s of
  // each product (for setting against the arithmetic peak, bench/compare_llamacpp.py). A tile
  // first runs untimed, as the tiles of a picture share their buffers: the profiled one is a
  // picture's second tile, not one paying for ~30 MB of first-touched scratch.
  nlohmann::json vision_prof = nlohmann::json::array();
  double prof_tile_ms = 0;
  if (profile) {
    const size_t tile = static_cast<size_t>(3) * cfg.vision.image_size * cfg.vision.image_size;
    std::vector<float> px(tile);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (auto& v : px) v = u(rng);
    VisionEncoder::TileScratch scratch;
    (void)m.vision.image_features(cx, px.data(), 1, &scratch);
    kernels::OpProfile ops;
    cx.set_profile(&ops);
    t = Clock::now();
    (void)m.vision.image_features(cx, px.data(), 1, &scratch);
    prof_tile_ms = ms_since(t);
    cx.set_profile(nullptr);
    double timed = 0;
    for (const auto& r : ops.rows()) {
      timed += r.ms;
      vision_prof.push_back({{"op", r.op},
                             {"calls_per_tile", r.calls},
                             {"ms_per_tile", r.ms},
                             {"share", r.ms / prof_tile_ms},
                             {"gflop_per_tile", r.flops / 1e9},
                             {"gflop_s", r.ms > 0 ? r.flops / (r.ms * 1e6) : 0.0}});
    }
    vision_prof.push_back({{"op", "outside the ops (patches, pixel shuffle)"},
                           {"calls_per_tile", 1},
                           {"ms_per_tile", prof_tile_ms - timed},
                           {"share", (prof_tile_ms - timed) / prof_tile_ms},
                           {"gflop_per_tile", 0},
                           {"gflop_s", 0}});
  }

  nlohmann::json out = {{"model", model_dir},
                        {"threads", cx.threads()},
                        {"kernels", cx.path_name()},
                        {"vision_precision", m.vision.uses_bf16(cx) ? "bf16" : "f32"},
                        {"text_weights", quantize.empty() ? "as stored" : quantize},
                        {"repeat", repeat},
                        {"n_prompt", n_prompt},
                        {"n_gen", n_gen},
                        {"image_tiles", tiles},
                        {"image_prompt_tokens", prompt_tokens},
                        // The work behind two figures, for setting them against the hardware's
                        // ceilings (bench/compare_llamacpp.py).
                        {"decode_weight_mb_per_token", m.decoder.weight_bytes_per_step() / 1e6},
                        {"vision_gflop_per_tile", m.vision.flops_per_tile() / 1e9},
                        {"peak_rss_mb", rss}};
  if (!image.empty()) out["image_peak_rss_mb"] = image_rss;
  if (profile) {
    out["profile"] = {{"step_ms", prof_step_ms}, {"ops", prof}};
    if (!image.empty())
      out["image_decode_profile"] = {{"step_ms", image_prof_step_ms}, {"ops", image_prof}};
    out["vision_profile"] = {{"tile_ms", prof_tile_ms}, {"ops", vision_prof}};
  }
  for (const auto& [k, s] : st) {
    out[k] = s.median();
    out["range"][k] = {s.min(), s.max()};
  }
  if (json) {
    std::puts(out.dump(2).c_str());
    return 0;
  }
  std::printf("model %s, %d threads, kernels %s, vision %s, %d runs (median, min-max)\n",
              model_dir.c_str(), cx.threads(), cx.path_name(),
              m.vision.uses_bf16(cx) ? "bf16" : "f32", repeat);
  std::printf("%-22s %12s %22s\n", "figure", "median", "range");
  for (const auto& [k, s] : st) {
    std::printf("%-22s %12.2f %10.2f - %-10.2f\n", k.c_str(), s.median(), s.min(), s.max());
  }
  std::printf("%-22s %12.1f\n", "peak_rss_mb", rss);
  if (!image.empty()) std::printf("%-22s %12.1f\n", "image_peak_rss_mb", image_rss);
  if (tiles) std::printf("%-22s %12d (%d prompt tokens)\n", "image_tiles", tiles, prompt_tokens);
  std::printf("%-22s %12.1f MB of weights a decode step, %.1f GFLOP a vision tile\n", "work",
              m.decoder.weight_bytes_per_step() / 1e6, m.vision.flops_per_tile() / 1e9);
  if (profile) {
    print_decode_profile("decode step", prof, prof_step_ms, n_gen);
    if (!image.empty())
      print_decode_profile("decode step after the picture prompt", image_prof, image_prof_step_ms,
                           n_gen);
    std::printf("\nvision tile: %.1f ms\n", prof_tile_ms);
    std::printf("%-42s %8s %10s %7s %12s %8s\n", "op", "calls", "ms/tile", "share", "GFLOP",
                "GFLOP/s");
    for (const auto& r : vision_prof) {
      std::printf("%-42s %8d %10.2f %6.1f%% %12.2f %8.1f\n", r["op"].get<std::string>().c_str(),
                  r["calls_per_tile"].get<int>(), r["ms_per_tile"].get<double>(),
                  r["share"].get<double>() * 100, r["gflop_per_tile"].get<double>(),
                  r["gflop_s"].get<double>());
    }
  }
  return 0;
}

}  // namespace smolvlm::cli
