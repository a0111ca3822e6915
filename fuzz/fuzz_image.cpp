// libFuzzer target: the picture decoders (decode_image: JPEG through libjpeg, PNG through libpng)
// on arbitrary bytes; scripts/fuzz.sh runs it twice, from a JPEG and from a PNG seed corpus. Any
// input must decode to a picture of the size it claims or throw smolvlm::Error.
#include <smolvlm/error.h>

#include <cstddef>
#include <cstdint>

#include "vision/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const smolvlm::Image im = smolvlm::decode_image(data, size, "fuzz");
    if (im.width <= 0 || im.height <= 0 ||
        im.rgb.size() != static_cast<size_t>(im.width) * static_cast<size_t>(im.height) * 3) {
      __builtin_trap();
    }
    static volatile uint8_t sink;
    sink = im.rgb.back();
    return 0;
  } catch (const smolvlm::Error&) {
    return 0;
  }
}
