// One conversation's place in the decoder: its KV cache, what the cache holds position by
// position (token ids and where each came from, so a later prompt can keep the longest common
// prefix), the logits after its last position and the scratch of its passes. Engine::generate
// keeps one for an answer, Chat one for its dialogue, the Scheduler one per slot; the
// bookkeeping is written here once.
#pragma once

#include <cstdint>
#include <vector>

#include "chat/conversation_prompt.h"
#include "kernels/compute.h"
#include "loader/model.h"
#include "text/decoder.h"

namespace smolvlm {

class Sequence {
 public:
  // Room for `capacity` positions (the KV cache's pages are reserved, not touched, until used).
  Sequence(const Model& model, int capacity);

  int length() const { return cache_.length(); }
  int capacity() const { return cache_.capacity(); }
  bool has_room() const { return cache_.length() < cache_.capacity(); }
  // What the cache holds, position by position.
  const std::vector<int32_t>& ids() const { return ids_; }
  // The logits after the last position run (a prefill's last prompt position, or the last push).
  float* logits() { return logits_.data(); }

  // How many of `prompt`'s positions this sequence could keep: the longest prefix whose ids and
  // sources equal what it holds, leaving at least the last prompt position to run for its logits.
  size_t reusable(const RenderedPrompt& prompt) const;
  // Keeps that prefix and runs the rest of `prompt`; returns the positions kept. On an error the
  // sequence is cleared (its cache may hold part of a pass).
  size_t prefill(const kernels::Compute& cx, const RenderedPrompt& prompt);
  // Runs one more token (an answer's next) after what is held.
  void push(const kernels::Compute& cx, int32_t id);
  // For a pass that runs many sequences at once (the Scheduler's step): this sequence's rows, and
  // afterwards the token those rows were.
  SequenceRows next_row() { return {&cache_, 1}; }
  void pushed_by_batch(int32_t id);
  void clear();

 private:
  const Model& model_;
  KVCache cache_;
  std::vector<int32_t> ids_;
  std::vector<int64_t> source_;
  std::vector<float> logits_;
  std::vector<float> embedding_;  // push's one row
  DecoderScratch scratch_;
};

}  // namespace smolvlm
