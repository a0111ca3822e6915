// Structured outputs benchmark (see bench/README.md):
//  - the compile time of every test schema (tests/fixtures/structured-schemas.json), median of 10;
//  - for each decode schema (bench/structured-decode-schemas.json: typical ones), decode tok/s
//    with the schema against without in the same run, greedy: rounds alternate the two, the free
//    answer as long as the constrained one (the same number of decode steps at the same
//    positions), and the medians are compared; with the mask cost per token of the answer on a
//    fresh matcher (as each answer has), and all the constraint adds a step replayed alone
//    ("added ms": set-up, mask, masking the logits, moving the grammar on) with the rate that
//    leaves the free steps ("ratio'": step / (step + added)), which a busy machine hardly moves;
//  - the costliest mask (inside a string: the whole token trie walked), cold and cached.
//
//   smolvlm_structured_bench [-m MODEL_DIR] [-t THREADS] [-n TOKENS] [--runs R]
//                            [--schemas FILE.json] [--decode-schemas FILE.json]
//
// Prints tables, then one JSON object.
#include <smolvlm/constraint.h>
#include <smolvlm/smolvlm.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "chat/constrained.h"
#include "text/tokenizer.h"

using namespace smolvlm;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

double thread_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

nlohmann::ordered_json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot open " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::ordered_json::parse(ss.str());
}

// The forward passes an answer made after the prompt's: one a token after the first (whose logits
// the prompt gave), and one more for the end of utterance the last of them gave.
int decode_steps(const Result& r) {
  return std::max(1, static_cast<int>(r.tokens.size()) - 1 + (r.stopped_by_eos ? 1 : 0));
}

struct DecodeSchema {
  std::string name, schema;
};

}  // namespace

int main(int argc, char** argv) {
  std::string model_dir = SMOLVLM_BENCH_TINY_MODEL;
  std::string compile_file = SMOLVLM_BENCH_SOURCE_DIR "/tests/fixtures/structured-schemas.json";
  std::string decode_file = SMOLVLM_BENCH_SOURCE_DIR "/bench/structured-decode-schemas.json";
  int threads = 2, tokens = 64, runs = 5;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "-m") {
      model_dir = value();
    } else if (a == "-t") {
      threads = std::atoi(value().c_str());
    } else if (a == "-n") {
      tokens = std::atoi(value().c_str());
    } else if (a == "--runs") {
      runs = std::max(1, std::atoi(value().c_str()));
    } else if (a == "--schemas") {
      compile_file = value();
    } else if (a == "--decode-schemas") {
      decode_file = value();
    } else {
      std::fprintf(stderr,
                   "usage: %s [-m MODEL_DIR] [-t THREADS] [-n TOKENS] [--runs R] [--schemas FILE] "
                   "[--decode-schemas FILE]\n",
                   argv[0]);
      return 2;
    }
  }
  try {
    std::vector<std::string> compile_schemas;
    for (const auto& s : read_json(compile_file)) compile_schemas.push_back(s.dump());
    std::vector<DecodeSchema> decode_schemas;
    for (const auto& d : read_json(decode_file))
      decode_schemas.push_back({d["name"].get<std::string>(), d["schema"].dump()});

    // ---- Compile time of every schema (the schema text to the byte-level grammar).
    nlohmann::json compile_rows = nlohmann::json::array();
    std::vector<double> compile_medians;
    std::printf("compile time, %zu schemas (%s), median of 10 each:\n", compile_schemas.size(),
                compile_file.c_str());
    for (size_t k = 0; k < compile_schemas.size(); ++k) {
      std::vector<double> t;
      size_t rules = 0;
      for (int r = 0; r < 10; ++r) {
        const auto t0 = Clock::now();
        const auto c = Constraint::json_schema(compile_schemas[k]);
        t.push_back(ms_since(t0));
        rules = c->compiled()->rules.size();
      }
      const double m = median(t);
      compile_medians.push_back(m);
      compile_rows.push_back({{"schema", k}, {"compile_ms_median", m}, {"rules", rules}});
    }
    std::vector<double> sorted = compile_medians;
    std::sort(sorted.begin(), sorted.end());
    const double compile_p50 = median(sorted), compile_max = sorted.back();
    const double compile_p90 = sorted[std::min(sorted.size() - 1, sorted.size() * 9 / 10)];
    std::printf(
        "  median %.3f ms, p90 %.3f ms, max %.3f ms (schema %zu)\n", compile_p50, compile_p90,
        compile_max,
        static_cast<size_t>(std::max_element(compile_medians.begin(), compile_medians.end()) -
                            compile_medians.begin()));

    // ---- Decode with a schema against without, alternating.
    LoadOptions lo;
    lo.threads = threads;
    auto engine = Engine::load(model_dir, lo);
    // A GGUF folder carries no tokenizer.json: the tiny model's is the same SmolVLM2 vocabulary.
    std::string tokenizer_file = model_dir + "/tokenizer.json";
    if (!std::ifstream(tokenizer_file)) tokenizer_file = SMOLVLM_BENCH_TINY_MODEL "/tokenizer.json";
    const Tokenizer tokenizer = Tokenizer::from_hf_json_file(tokenizer_file);
    auto t_index = Clock::now();
    const auto index = token_index_for(tokenizer);
    const double index_ms = ms_since(t_index);
    const int32_t eos = tokenizer.token_id("<end_of_utterance>");
    t_index = Clock::now();
    token_index_for(tokenizer);  // what each answer pays: the vocabulary's fingerprint
    const double index_lookup_ms = ms_since(t_index);

    const Conversation conv = {{"user", {Content::text("Describe the scene as JSON.")}}};
    // Greedy: the choice of a token costs the same with and without a mask (sampling at a
    // temperature would draw from fewer candidates under a mask, flattering it).
    GenerationOptions base;
    base.max_new_tokens = tokens;
    engine->generate(conv, base);  // warm up
    nlohmann::json rows = nlohmann::json::array();
    double all_with_ms = 0, all_free_ms = 0;
    int all_tokens = 0;
    std::printf(
        "\ndecode, greedy, %d rounds alternating (the free answer as many steps), -n %d, %d "
        "threads; rates in decode steps/s, medians:\n",
        runs, tokens, threads);
    std::printf("%-36s %7s %10s %10s %8s %10s %10s %10s %8s\n", "schema", "tokens", "with", "free",
                "ratio", "mask ms", "mask max", "added ms", "ratio'");
    for (const DecodeSchema& d : decode_schemas) {
      const auto c = Constraint::json_schema(d.schema);
      std::vector<double> with_tps, free_tps, masks_ms, overhead_ms;
      double mask_max = 0;
      int tokens_sum = 0, complete = 0;
      for (int r = 0; r < runs; ++r) {
        // Odd rounds run the free answer first, so that neither variant always follows the other.
        // The free answer makes as many decode steps (forward passes) as the constrained one.
        GenerationOptions g = base;
        g.constraint = c;
        auto run_free = [&](int n_steps) {
          GenerationOptions f = base;
          f.max_new_tokens = n_steps + 1;
          return engine->generate(conv, f);
        };
        Result with, free;
        if (r % 2 == 0) {
          with = engine->generate(conv, g);
          free = run_free(decode_steps(with));
        } else {
          free = run_free(tokens);
          with = engine->generate(conv, g);
          if (decode_steps(with) < decode_steps(free)) free = run_free(decode_steps(with));
        }
        const double with_rate = decode_steps(with) * 1000.0 / with.metrics.decode_ms;
        const double free_rate = decode_steps(free) * 1000.0 / free.metrics.decode_ms;
        with_tps.push_back(with_rate);
        free_tps.push_back(free_rate);
        all_with_ms += with.metrics.decode_ms;
        all_free_ms += decode_steps(with) * 1000.0 / free_rate;
        all_tokens += decode_steps(with);
        tokens_sum += static_cast<int>(with.tokens.size());
        complete += with.stopped_by_eos;
        // The mask's own cost on this answer, replayed on a fresh matcher (as an answer has).
        constrain::Matcher m(c->compiled(), index);
        for (int32_t id : with.tokens) {
          const auto t = Clock::now();
          m.mask();
          const double ms = ms_since(t);
          masks_ms.push_back(ms);
          mask_max = std::max(mask_max, ms);
          if (!m.accept_token(id)) break;
        }
        // All the constraint adds to an answer, replayed alone (the load of a shared machine
        // hits the alternating rates above; this hardly): its set-up (the token index found
        // again, a matcher), then each step's mask on the logits and the grammar moved on.
        // Timed in this thread's CPU time: the time slices a busy machine gives other processes
        // are left out (the cache they share is not).
        std::vector<float> logits(index->vocab_size(), 0.5f);
        const double t_all = thread_cpu_ms();
        ConstrainedStep step(*c, tokenizer, eos);
        for (size_t k = 0; k <= with.tokens.size(); ++k) {
          if (k == with.tokens.size() && !with.stopped_by_eos) break;
          step.mask(logits.data(), logits.size());
          if (k < with.tokens.size()) step.accept(with.tokens[k]);
        }
        overhead_ms.push_back((thread_cpu_ms() - t_all) / decode_steps(with));
      }
      double mask_mean = 0;
      for (double v : masks_ms) mask_mean += v;
      mask_mean = masks_ms.empty() ? 0 : mask_mean / static_cast<double>(masks_ms.size());
      const double w = median(with_tps), fr = median(free_tps);
      // The rate the free steps would keep with the overhead added to each: step / (step + o).
      const double over = median(overhead_ms);
      const double derived = fr > 0 ? 1.0 / (1.0 + over * fr / 1000.0) : 0;
      std::printf("%-36s %7.1f %10.1f %10.1f %7.1f%% %10.4f %10.3f %10.3f %7.1f%%\n",
                  d.name.c_str(), static_cast<double>(tokens_sum) / runs, w, fr,
                  fr > 0 ? 100 * w / fr : 0, mask_mean, mask_max, over, 100 * derived);
      rows.push_back({{"name", d.name},
                      {"mean_tokens", static_cast<double>(tokens_sum) / runs},
                      {"complete_answers", complete},
                      {"decode_tok_s_with_median", w},
                      {"decode_tok_s_free_median", fr},
                      {"ratio", fr > 0 ? w / fr : 0},
                      {"with_tok_s", with_tps},
                      {"free_tok_s", free_tps},
                      {"mask_mean_ms", mask_mean},
                      {"overhead_ms_per_step", over},
                      {"ratio_from_overhead", derived},
                      {"mask_max_ms", mask_max}});
    }
    const double overall = all_with_ms > 0 ? all_free_ms / all_with_ms : 0;
    std::printf("all schemas together: %d decode steps, with a schema %.1f%% of the free rate\n",
                all_tokens, 100 * overall);

    // The costliest mask: inside a string (almost every token allowed: the whole trie walked),
    // cold (a fresh matcher: no DFA steps known yet), then warm (the cached mask).
    constrain::Matcher cold(Constraint::json_object()->compiled(), index);
    cold.accept_bytes("{\"");
    auto t0 = Clock::now();
    const auto& bits = cold.mask();
    const double string_cold_ms = ms_since(t0);
    size_t allowed = 0;
    for (uint64_t w : bits) allowed += static_cast<size_t>(__builtin_popcountll(w));
    cold.accept_bytes("ab");  // back to the same state: the cached mask
    t0 = Clock::now();
    cold.mask();
    const double string_warm_ms = ms_since(t0);
    std::printf("inside a string: %zu tokens allowed, mask %.3f ms cold, %.4f ms cached\n", allowed,
                string_cold_ms, string_warm_ms);
    std::printf("token index: built in %.1f ms (%zu trie nodes), found again in %.2f ms\n",
                index_ms, index->nodes(), index_lookup_ms);
    const nlohmann::json out = {{"model", model_dir},
                                {"threads", threads},
                                {"runs", runs},
                                {"max_new_tokens", tokens},
                                {"compile_ms_p50", compile_p50},
                                {"compile_ms_p90", compile_p90},
                                {"compile_ms_max", compile_max},
                                {"compile", compile_rows},
                                {"decode", rows},
                                {"decode_ratio_all", overall},
                                {"string_mask_cold_ms", string_cold_ms},
                                {"string_mask_cached_ms", string_warm_ms},
                                {"string_tokens_allowed", allowed},
                                {"vocab", index->vocab_size()},
                                {"trie_nodes", index->nodes()},
                                {"token_index_ms", index_ms},
                                {"token_index_lookup_ms", index_lookup_ms}};
    std::printf("%s\n", out.dump().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
