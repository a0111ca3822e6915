// libFuzzer target: a --messages conversation (smolvlm ask, apps/smolvlm/messages.cpp) on
// arbitrary bytes. Any input must give a conversation ending with a user turn or throw
// smolvlm::Error with a one-line message.
#include <smolvlm/error.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "messages.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const smolvlm::Conversation conv = smolvlm::cli::parse_messages(text, "fuzz/messages.json");
    if (conv.empty() || conv.back().role != "user") __builtin_trap();
    return 0;
  } catch (const smolvlm::Error& e) {
    if (std::string(e.what()).find('\n') != std::string::npos) __builtin_trap();
    return 0;
  }
}
