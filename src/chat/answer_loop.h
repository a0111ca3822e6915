// The token loop shared by Engine::generate and Chat::ask: sample, stream, feed back.
#pragma once

#include <smolvlm/smolvlm.h>

#include <cstdint>
#include <vector>

#include "model/model.h"
#include "text/decoder.h"

namespace smolvlm {

// Starts from `logits` (those of the last prompt position) and generates until the end-of-utterance
// token, options.max_new_tokens, a full `cache`, options.cancel or a false from on_text. Every
// token except the last one sampled is run through the decoder (appended to `cache` and to `fed`
// when non-null). `history` is the prompt's ids (the repetition penalty sees them). Fills
// result.text, tokens, stopped_by_eos, cancelled, metrics.decode_ms / generated_tokens.
void generate_answer(const Model& model, KVCache& cache, std::vector<float>& logits,
                     std::vector<int32_t> history, const GenerationOptions& options,
                     const TextCallback& on_text, Result& result,
                     std::vector<int32_t>* fed = nullptr);

// The process's peak resident set size (getrusage), in bytes.
int64_t peak_rss_bytes();

}  // namespace smolvlm
