// The token loop shared by Engine::generate, Chat::ask and the Scheduler: sample, stream, feed
// back. AnswerStream holds one answer's state and leaves running the decoder to its owner, so the
// Scheduler can run the answers of many slots in one batched forward pass.
#pragma once

#include <smolvlm/smolvlm.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "chat/constrained.h"
#include "chat/sequence.h"
#include "kernels/compute.h"
#include "loader/model.h"
#include "text/decoder.h"
#include "text/sampler.h"
#include "text/tokenizer.h"

namespace smolvlm {

class AnswerStream {
 public:
  // `history` is the prompt's ids (the repetition penalty sees them). Fills `result` (text, tokens,
  // stopped_by_eos, cancelled, and at finish() metrics.decode_ms / generated_tokens / peak RSS).
  AnswerStream(const Model& model, std::vector<int32_t> history, const GenerationOptions& options,
               const TextCallback& on_text, Result& result);

  // Given the logits of the last position (modified: penalty, temperature), samples and streams the
  // next token. Returns the token to run through the decoder next, or nothing when the answer is
  // over (end of utterance, the token cap, cancel, on_text's false, or `room` false: the cache is
  // full).
  std::optional<int32_t> next(float* logits, bool room);
  // Flushes the held-back text and fills the metrics. Call once, at the end.
  void finish();
  // Cancelled from outside (GenerationOptions::cancel): checked by the owner between steps.
  bool cancel_requested() const;

 private:
  const Model& model_;
  std::vector<int32_t> history_;
  const GenerationOptions& options_;
  const TextCallback& on_text_;
  Result& result_;
  Sampler sampler_;
  StreamDecoder stream_;
  int produced_ = 0;
  std::unique_ptr<ConstrainedStep> constrained_;  // GenerationOptions::constraint, when set
  std::chrono::steady_clock::time_point start_;
};

// Generates until the answer is over, pushing each fed-back token onto `sequence`, whose logits
// are the last prompt position's to begin with.
void generate_answer(const Model& model, const kernels::Compute& cx, Sequence& sequence,
                     std::vector<int32_t> history, const GenerationOptions& options,
                     const TextCallback& on_text, Result& result);

}  // namespace smolvlm
