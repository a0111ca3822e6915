// libFuzzer target: the GGUF parser on arbitrary bytes. Any input must either parse into views that
// lie inside the buffer or throw smolvlm::Error; a crash, a sanitizer report, an uncaught exception
// of another type or an allocation the input cannot justify is a bug.
#include <smolvlm/error.h>

#include <cstddef>
#include <cstdint>

#include "formats/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const smolvlm::GgufContents c = smolvlm::parse_gguf(data, size, "fuzz.gguf");
    size_t sum = 0;
    for (const auto& [key, value] : c.metadata) sum += key.size() + value.to_string().size();
    for (const smolvlm::TensorView& t : c.tensors) {
      if (t.nbytes > 0) sum += t.data[0] + t.data[t.nbytes - 1];  // both ends lie in the buffer
    }
    static volatile size_t sink;
    sink = sum;
    return 0;
  } catch (const smolvlm::Error&) {
    return 0;
  }
}
