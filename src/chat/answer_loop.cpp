#include "chat/answer_loop.h"

#include <smolvlm/error.h>

#include <cmath>

#include "util/process_memory.h"

namespace smolvlm {

AnswerStream::AnswerStream(const Model& model, std::vector<int32_t> history,
                           const GenerationOptions& options, const TextCallback& on_text,
                           Result& result)
    : model_(model),
      history_(std::move(history)),
      options_(options),
      on_text_(on_text),
      result_(result),
      sampler_({options.temperature, options.top_k, options.top_p, options.repeat_penalty,
                options.seed}),
      stream_(model.tokenizer, /*skip_special=*/true),
      start_(std::chrono::steady_clock::now()) {
  if (options.constraint)
    constrained_ =
        std::make_unique<ConstrainedStep>(*options.constraint, model.tokenizer, model.eos_id());
  if (cancel_requested()) result_.cancelled = true;
}

bool AnswerStream::cancel_requested() const {
  return options_.cancel != nullptr && options_.cancel->load(std::memory_order_relaxed);
}

std::optional<int32_t> AnswerStream::next(float* logits, bool room) {
  if (result_.cancelled || result_.stopped_by_eos || produced_ >= options_.max_new_tokens)
    return std::nullopt;
  if (cancel_requested()) {
    result_.cancelled = true;
    return std::nullopt;
  }
  const size_t vocab = static_cast<size_t>(model_.config.text.vocab);
  // Corrupt weights (a NaN or infinity in a file) show here first: the sampler would pick some
  // token from NaN logits and answer garbage with success, so the answer stops with an error.
  // One pass over a row the sampler reads anyway.
  for (size_t i = 0; i < vocab; ++i) {
    if (!std::isfinite(logits[i])) {
      throw Error("the model computed a non-finite logit (" +
                  std::string(std::isnan(logits[i]) ? "NaN" : "infinity") + " for token " +
                  std::to_string(i) + "): its weights are corrupt (NaN or infinity in the file?)");
    }
  }
  // Structured outputs: refused tokens masked (none allowed at all: the grammar is stuck).
  if (constrained_ && !constrained_->mask(logits, vocab)) return std::nullopt;
  const int32_t id = sampler_.sample(std::span<float>(logits, vocab), history_);
  if (id == model_.eos_id()) {
    result_.stopped_by_eos = true;
    return std::nullopt;
  }
  if (constrained_) constrained_->accept(id);
  ++produced_;
  result_.tokens.push_back(id);
  history_.push_back(id);
  const std::string piece = stream_.push(id);
  result_.text += piece;
  bool go_on = true;
  if (on_text_ && !piece.empty()) go_on = on_text_(piece);
  if (go_on && cancel_requested()) go_on = false;
  if (!go_on) result_.cancelled = true;
  if (!go_on || produced_ == options_.max_new_tokens || !room) return std::nullopt;
  return id;
}

void AnswerStream::finish() {
  const std::string rest = stream_.flush();
  result_.text += rest;
  if (on_text_ && !rest.empty()) on_text_(rest);
  result_.metrics.decode_ms +=
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count();
  result_.metrics.generated_tokens = static_cast<int>(result_.tokens.size());
  result_.metrics.peak_rss_bytes = peak_rss_bytes();
}

void generate_answer(const Model& model, const kernels::Compute& cx, Sequence& sequence,
                     std::vector<int32_t> history, const GenerationOptions& options,
                     const TextCallback& on_text, Result& result) {
  AnswerStream answer(model, std::move(history), options, on_text, result);
  while (const std::optional<int32_t> id = answer.next(sequence.logits(), sequence.has_room())) {
    sequence.push(cx, *id);
  }
  answer.finish();
}

}  // namespace smolvlm
