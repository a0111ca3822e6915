#include "chat/sequence.h"

#include <smolvlm/error.h>

#include <algorithm>

namespace smolvlm {

Sequence::Sequence(const Model& model, int capacity)
    : model_(model),
      cache_(model.config.text, capacity),
      logits_(static_cast<size_t>(model.config.text.vocab)),
      embedding_(static_cast<size_t>(model.config.text.hidden)) {}

size_t Sequence::reusable(const RenderedPrompt& prompt) const {
  size_t p = 0;
  const size_t limit = std::min(ids_.size(), prompt.size() == 0 ? 0 : prompt.size() - 1);
  while (p < limit && ids_[p] == prompt.ids[p] && source_[p] == prompt.source[p]) ++p;
  return p;
}

size_t Sequence::prefill(const kernels::Compute& cx, const RenderedPrompt& prompt) {
  const size_t keep = reusable(prompt);
  if (keep >= prompt.size()) throw Error("prefill: nothing left to run");
  try {
    cache_.truncate(static_cast<int>(keep));
    ids_.resize(keep);
    source_.resize(keep);
    const size_t n = prompt.size() - keep;
    const std::vector<float> x = embed_positions(model_, prompt, keep, n);
    model_.decoder.forward(cx, x.data(), static_cast<int>(n), cache_, scratch_, logits_.data());
  } catch (...) {
    clear();
    throw;
  }
  ids_ = prompt.ids;
  source_ = prompt.source;
  return keep;
}

void Sequence::push(const kernels::Compute& cx, int32_t id) {
  try {
    model_.decoder.embed(&id, 1, embedding_.data());
    model_.decoder.forward(cx, embedding_.data(), 1, cache_, scratch_, logits_.data());
  } catch (...) {
    clear();
    throw;
  }
  pushed_by_batch(id);
}

void Sequence::pushed_by_batch(int32_t id) {
  ids_.push_back(id);
  source_.push_back(kTextSource);
}

void Sequence::clear() {
  cache_.clear();
  ids_.clear();
  source_.clear();
}

}  // namespace smolvlm
