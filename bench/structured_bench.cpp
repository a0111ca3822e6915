// Structured outputs benchmark: compile time of each schema, the token index and mask costs, and
// decode tok/s with a schema against without, in the same run (see bench/README.md).
//
//   smolvlm_structured_bench [-m MODEL_DIR] [-t THREADS] [-n TOKENS] [--schemas FILE.json]
//
// FILE.json: a list of schemas (default: five typical ones built in). Prints a table, then one
// JSON object.
#include <smolvlm/constraint.h>
#include <smolvlm/smolvlm.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
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

const std::vector<std::string> kSchemas = {
    R"({"type":"object","properties":{"open":{"type":"boolean"}},"required":["open"],"additionalProperties":false})",
    R"({"type":"object","properties":{"people":{"type":"integer","minimum":0,"maximum":50},"vehicles":{"type":"array","items":{"enum":["car","bike","truck","bus"]}}},"required":["people","vehicles"],"additionalProperties":false})",
    R"({"type":"object","properties":{"total":{"type":"number"},"currency":{"enum":["EUR","USD","GBP"]},"date":{"type":"string","format":"date"},"items":{"type":"array","items":{"type":"object","properties":{"name":{"type":"string","maxLength":40},"qty":{"type":"integer","minimum":1,"maximum":99},"price":{"type":"number"}},"required":["name","price"],"additionalProperties":false}}},"required":["total","items"],"additionalProperties":false})",
    R"({"$defs":{"node":{"type":"object","properties":{"name":{"type":"string"},"children":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["name"],"additionalProperties":false}},"$ref":"#/$defs/node"})",
    R"({"type":"object","properties":{"id":{"type":"string","format":"uuid"},"email":{"type":"string","format":"email"},"when":{"type":"string","format":"date-time"},"code":{"type":"string","pattern":"^[A-Z]{3}-[0-9]{4}$"}},"required":["id","email","when","code"]})",
};

}  // namespace

int main(int argc, char** argv) {
  std::string model_dir = SMOLVLM_BENCH_TINY_MODEL;
  int threads = 2, tokens = 64;
  std::vector<std::string> schemas = kSchemas;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "-m")
      model_dir = value();
    else if (a == "-t")
      threads = std::atoi(value().c_str());
    else if (a == "-n")
      tokens = std::atoi(value().c_str());
    else if (a == "--schemas") {
      std::ifstream in(value());
      std::stringstream ss;
      ss << in.rdbuf();
      schemas.clear();
      for (const auto& s : nlohmann::json::parse(ss.str())) schemas.push_back(s.dump());
    } else {
      std::fprintf(stderr, "usage: %s [-m MODEL_DIR] [-t THREADS] [-n TOKENS] [--schemas FILE]\n",
                   argv[0]);
      return 2;
    }
  }
  try {
    LoadOptions lo;
    lo.threads = threads;
    auto engine = Engine::load(model_dir, lo);
    const Tokenizer tokenizer = Tokenizer::from_hf_json_file(model_dir + "/tokenizer.json");
    const auto t_index = Clock::now();
    const auto index = token_index_for(tokenizer);
    const double index_ms = ms_since(t_index);

    const Conversation conv = {{"user", {Content::text("Describe the scene as JSON.")}}};
    GenerationOptions base;
    base.max_new_tokens = tokens;
    base.temperature = 1.0f;
    base.seed = 1;
    // Warm up, then the unconstrained rate.
    engine->generate(conv, base);
    const Result free = engine->generate(conv, base);
    const double free_tps = free.metrics.decode_tokens_per_s();

    nlohmann::json rows = nlohmann::json::array();
    std::printf("%-4s %12s %12s %12s %10s %10s %8s\n", "#", "compile ms", "mask1 ms", "mask avg ms",
                "tok/s", "free tok/s", "ratio");
    for (size_t k = 0; k < schemas.size(); ++k) {
      std::vector<double> compile;
      std::shared_ptr<const Constraint> c;
      for (int r = 0; r < 10; ++r) {
        const auto t = Clock::now();
        c = Constraint::json_schema(schemas[k]);
        compile.push_back(ms_since(t));
      }
      std::sort(compile.begin(), compile.end());
      // Mask cost on a walk of the free answer's constrained twin.
      GenerationOptions g = base;
      g.constraint = c;
      const Result constrained = engine->generate(conv, g);
      constrain::Matcher m(c->compiled(), index);
      auto t = Clock::now();
      m.mask();
      const double first_mask = ms_since(t);
      double mask_total = 0;
      int masks = 0;
      for (int32_t id : constrained.tokens) {
        if (!m.accept_token(id)) break;
        t = Clock::now();
        m.mask();
        mask_total += ms_since(t);
        ++masks;
      }
      const double tps = constrained.metrics.decode_tokens_per_s();
      const double mask_avg = masks ? mask_total / masks : 0;
      std::printf("%-4zu %12.3f %12.3f %12.4f %10.1f %10.1f %7.1f%%\n", k,
                  compile[compile.size() / 2], first_mask, mask_avg, tps, free_tps,
                  free_tps > 0 ? 100 * tps / free_tps : 0);
      rows.push_back({{"schema", k},
                      {"compile_ms_median", compile[compile.size() / 2]},
                      {"first_mask_ms", first_mask},
                      {"mask_avg_ms", mask_avg},
                      {"tokens", constrained.tokens.size()},
                      {"complete", constrained.stopped_by_eos},
                      {"decode_tok_s", tps},
                      {"free_decode_tok_s", free_tps}});
    }
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
    const nlohmann::json out = {{"model", model_dir},
                                {"string_mask_cold_ms", string_cold_ms},
                                {"string_mask_cached_ms", string_warm_ms},
                                {"string_tokens_allowed", allowed},
                                {"threads", threads},
                                {"vocab", index->vocab_size()},
                                {"trie_nodes", index->nodes()},
                                {"token_index_ms", index_ms},
                                {"free_tokens", free.tokens.size()},
                                {"schemas", rows}};
    std::printf("%s\n", out.dump().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
