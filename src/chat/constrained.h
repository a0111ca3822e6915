// Structured outputs at sampling: the answer's grammar matcher, and the mask it puts on logits.
#pragma once

#include <smolvlm/constraint.h>

#include <cstdint>
#include <memory>

#include "constrain/matcher.h"
#include "text/tokenizer.h"

namespace smolvlm {

// The token index of a tokenizer (every token's bytes in a trie; special tokens left out), built
// once per distinct vocabulary and shared.
std::shared_ptr<const constrain::TokenIndex> token_index_for(const Tokenizer& tokenizer);

class ConstrainedStep {
 public:
  ConstrainedStep(const Constraint& constraint, const Tokenizer& tokenizer, int32_t eos);
  // Sets every refused token's logit to -inf (EOS stays only when the grammar is complete).
  // Returns false when no token at all is allowed.
  bool mask(float* logits, size_t vocab);
  // Moves the grammar on by the chosen token (an allowed one).
  void accept(int32_t id);
  bool complete() const { return matcher_.accepting(); }

 private:
  constrain::Matcher matcher_;
  int32_t eos_;
};

}  // namespace smolvlm
