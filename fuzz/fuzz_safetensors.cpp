// libFuzzer target: the safetensors parser on arbitrary bytes (header JSON, dtypes, shapes,
// offsets). Any input must either parse into views inside the buffer or throw smolvlm::Error.
#include <smolvlm/error.h>

#include <cstddef>
#include <cstdint>

#include "formats/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto tensors = smolvlm::parse_safetensors(data, size, "fuzz.safetensors");
    size_t sum = 0;
    for (const auto& [name, t] : tensors) {
      sum += name.size();
      if (t.nbytes > 0) sum += t.data[0] + t.data[t.nbytes - 1];  // both ends lie in the buffer
    }
    static volatile size_t sink;
    sink = sum;
    return 0;
  } catch (const smolvlm::Error&) {
    return 0;
  }
}
