#include "chat/answer_loop.h"

#include <sys/resource.h>

#include <chrono>

#include "text/sampler.h"

namespace smolvlm {

void generate_answer(const Model& model, KVCache& cache, std::vector<float>& logits,
                     std::vector<int32_t> history, const GenerationOptions& options,
                     const TextCallback& on_text, Result& result, std::vector<int32_t>* fed) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  Sampler sampler(
      {options.temperature, options.top_k, options.top_p, options.repeat_penalty, options.seed});
  StreamDecoder stream(model.tokenizer, /*skip_special=*/true);
  std::vector<float> emb(static_cast<size_t>(model.config.text.hidden));
  auto cancelled = [&] {
    return options.cancel != nullptr && options.cancel->load(std::memory_order_relaxed);
  };
  bool go_on = !cancelled();
  result.cancelled = !go_on;
  for (int i = 0; i < options.max_new_tokens && go_on; ++i) {
    const int32_t id = sampler.sample(logits, history);
    if (id == model.eos_id()) {
      result.stopped_by_eos = true;
      break;
    }
    result.tokens.push_back(id);
    history.push_back(id);
    const std::string piece = stream.push(id);
    result.text += piece;
    if (on_text && !piece.empty()) go_on = on_text(piece);
    if (go_on && cancelled()) go_on = false;
    if (!go_on) result.cancelled = true;
    if (!go_on || i + 1 == options.max_new_tokens || cache.length() >= cache.capacity()) break;
    model.decoder.embed(&id, 1, emb.data());
    model.decoder.forward(emb.data(), 1, cache, logits.data());
    if (fed) fed->push_back(id);
  }
  const std::string rest = stream.flush();
  result.text += rest;
  if (on_text && !rest.empty()) on_text(rest);
  result.metrics.decode_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  result.metrics.generated_tokens = static_cast<int>(result.tokens.size());
  result.metrics.peak_rss_bytes = peak_rss_bytes();
}

int64_t peak_rss_bytes() {
  rusage ru{};
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return static_cast<int64_t>(ru.ru_maxrss) * 1024;  // Linux reports KiB
}

}  // namespace smolvlm
