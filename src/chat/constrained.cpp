#include "chat/constrained.h"

#include <smolvlm/error.h>

#include <algorithm>
#include <limits>
#include <map>
#include <mutex>

namespace smolvlm {

std::shared_ptr<const constrain::TokenIndex> token_index_for(const Tokenizer& tokenizer) {
  // Keyed by the vocabulary's content (an FNV-1a hash of every token's bytes and special flag),
  // so a tokenizer at a reused address never finds another one's index.
  // Every answer pays for this hash, so it keeps nothing; the vocabulary is copied only to build
  // an index that is not there yet.
  uint64_t h = 1469598103934665603ULL;
  const size_t vocab = tokenizer.vocab_size();
  for (size_t id = 0; id < vocab; ++id) {
    for (unsigned char c : tokenizer.token_bytes(static_cast<int32_t>(id)))
      h = (h ^ c) * 1099511628211ULL;
    h = (h ^ (tokenizer.is_special(static_cast<int32_t>(id)) ? 0x1FFu : 0x100u)) * 1099511628211ULL;
  }
  // Held for the process's life (a few MB each; a process sees one or two vocabularies), at most
  // kKeep of them.
  constexpr size_t kKeep = 4;
  static std::mutex mu;
  static std::map<uint64_t, std::shared_ptr<const constrain::TokenIndex>> cache;
  const std::lock_guard lock(mu);
  if (const auto found = cache.find(h); found != cache.end()) return found->second;
  if (cache.size() >= kKeep) cache.erase(cache.begin());
  std::vector<std::string> bytes(vocab);
  std::vector<bool> special(vocab);
  for (size_t id = 0; id < vocab; ++id) {
    bytes[id] = tokenizer.token_bytes(static_cast<int32_t>(id));
    special[id] = tokenizer.is_special(static_cast<int32_t>(id));
  }
  auto index = std::make_shared<const constrain::TokenIndex>(std::move(bytes), special);
  cache.emplace(h, index);
  return index;
}

ConstrainedStep::ConstrainedStep(const Constraint& constraint, const Tokenizer& tokenizer,
                                 int32_t eos)
    : matcher_(constraint.compiled(), token_index_for(tokenizer)), eos_(eos) {}

bool ConstrainedStep::mask(float* logits, size_t vocab) {
  const std::vector<uint64_t>& bits = matcher_.mask();
  constexpr float kNo = -std::numeric_limits<float>::infinity();
  const bool eos_ok = eos_ >= 0 && static_cast<size_t>(eos_) < vocab && matcher_.accepting();
  const float eos_logit = eos_ok ? logits[eos_] : kNo;
  bool any = eos_ok;
  // A word at a time: inside a string nearly every word is all ones (nothing to do), elsewhere
  // nearly every word is zero (64 logits set at once).
  for (size_t w = 0; w * 64 < vocab; ++w) {
    const uint64_t word = w < bits.size() ? bits[w] : 0;
    const size_t begin = w * 64, end = std::min(vocab, begin + 64);
    if (word == ~uint64_t{0} && end - begin == 64) {
      any = true;
      continue;
    }
    any = any || word != 0;
    if (word == 0) {
      std::fill(logits + begin, logits + end, kNo);
      continue;
    }
    for (size_t id = begin; id < end; ++id) {
      if (!((word >> (id - begin)) & 1u)) logits[id] = kNo;
    }
  }
  if (eos_ok) logits[eos_] = eos_logit;
  return any;
}

void ConstrainedStep::accept(int32_t id) {
  if (!matcher_.accept_token(id))
    throw Error("structured output: the sampler chose a refused token");
}

}  // namespace smolvlm
