// libFuzzer target: the server's request parser (src/server/request.cpp) and stop-string filter
// on arbitrary bytes, as a client could send them. Any input must parse or throw RequestError;
// a crash, a sanitizer report or another exception type is a bug. The policy reaches nothing
// outside the bytes (no remote fetches, no local folder), as the server's default.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "server/request.h"
#include "server/text_stream.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  smolvlm::server::RequestPolicy policy;
  policy.max_pictures = 4;
  try {
    smolvlm::server::TempFiles files;
    const smolvlm::server::ChatRequest r = smolvlm::server::parse_chat_request(body, policy, files);
    // The stop strings the request named, over the request's own text, piece by piece.
    smolvlm::server::StopFilter filter(r.stop);
    std::string shown;
    for (size_t i = 0; i < size; i += 3) shown += filter.push(body.substr(i, 3));
    shown += filter.finish();
    if (shown.size() > size) __builtin_trap();  // it can only drop text, never add it
  } catch (const smolvlm::server::RequestError&) {
  }
  return 0;
}
