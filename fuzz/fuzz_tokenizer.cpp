// libFuzzer target: tokenizer.json (Tokenizer::from_hf_json) on arbitrary bytes, then a round
// trip through what loaded. Any input must load or throw smolvlm::Error; a loaded tokenizer must
// encode and decode without failing.
#include <smolvlm/error.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "text/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  smolvlm::Tokenizer tok;
  try {
    tok = smolvlm::Tokenizer::from_hf_json(text, "fuzz/tokenizer.json");
  } catch (const smolvlm::Error&) {
    return 0;
  }
  const std::vector<int32_t> ids = tok.encode("Hello 123 w\xc3\xb6rld <image>!\n");
  for (int32_t id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= tok.vocab_size()) __builtin_trap();
  }
  static volatile size_t sink;
  sink = tok.decode(ids).size();
  return 0;
}
