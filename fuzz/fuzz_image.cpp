// libFuzzer target: the picture decoders (decode_image: JPEG through libjpeg, PNG through libpng,
// WebP, GIF, TIFF, AVIF and HEIF through their libraries, BMP our own) on arbitrary bytes;
// scripts/fuzz.sh runs it three times, from a JPEG, a PNG and a corpus of the other formats. Any
// input must decode to a picture of the size it claims or throw smolvlm::Error.
#include <smolvlm/error.h>
#include <smolvlm/image.h>

#include <cstddef>
#include <cstdint>

#include "vision/image.h"

namespace {

// Whether the input is an arithmetic-coded JPEG (SOF9-11, SOF13-15) of more than 2^22 pixels.
// Those are the one kind of small file that legitimately decodes to a huge picture (arithmetic
// coding spends almost nothing on flat areas, so no size bound applies), which would only make
// the fuzzer report its own memory and time limits; they are skipped, as libjpeg-turbo's own
// fuzzers skip large pictures.
bool large_arithmetic_jpeg(const uint8_t* d, size_t n) {
  if (n < 4 || d[0] != 0xff || d[1] != 0xd8) return false;
  for (size_t i = 2; i + 9 < n;) {
    if (d[i] != 0xff) return false;
    const uint8_t m = d[i + 1];
    const size_t len = size_t{d[i + 2]} << 8 | d[i + 3];
    if ((m >= 0xc9 && m <= 0xcb) || (m >= 0xcd && m <= 0xcf)) {
      const uint64_t h = uint64_t{d[i + 5]} << 8 | d[i + 6], w = uint64_t{d[i + 7]} << 8 | d[i + 8];
      return w * h > (uint64_t{1} << 22);
    }
    if (m == 0xda) return false;  // scan data: no SOF came first
    i += 2 + len;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A few bytes of GIF, WebP or BMP RLE may legitimately claim a canvas of Pillow's 179 million
  // pixels (it is filled, not decoded): that only measures the fuzzer's memory and time limits,
  // so pictures are capped at 2^22 pixels here (the limit itself is tested in PictureLimit.*).
  static const bool capped = (smolvlm::set_max_picture_pixels(int64_t{1} << 22), true);
  (void)capped;
  if (large_arithmetic_jpeg(data, size)) return 0;
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
