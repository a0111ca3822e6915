// libFuzzer target: a model's config.json (parse_hf_config) on arbitrary bytes. Any input must
// either give a validated config or throw smolvlm::Error: every integer in range, no truncation.
#include <smolvlm/error.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const smolvlm::ModelConfig c =
        smolvlm::parse_hf_config({"fuzz/config.json", text}, nullptr, nullptr, "fuzz");
    // What validate() promised: sizes the engine can divide by.
    if (c.text.heads <= 0 || c.text.kv_heads <= 0 || c.vision.patch <= 0 || c.scale_factor <= 0) {
      __builtin_trap();
    }
    return 0;
  } catch (const smolvlm::Error&) {
    return 0;
  }
}
