// WebP through libwebp's animation decoder, which Pillow 9.4 uses for every WebP file (still or
// animated): the first frame on the canvas, RGBA. A file without alpha is Pillow's "RGB" (its
// channels as decoded); one with alpha is "RGBA", composited over white as HF's convert_to_rgb
// does. Lossy, lossless and animated files alike.
#include <smolvlm/image.h>

#include <cstring>
#include <memory>
#include <string>

#include "vision/picture_codecs.h"

#if SMOLVLM_HAVE_WEBP
#include <webp/decode.h>
#include <webp/demux.h>
#endif

namespace smolvlm::codecs {

#if SMOLVLM_HAVE_WEBP

Image decode_webp(const uint8_t* data, size_t size, const std::string& name) {
  WebPBitstreamFeatures features;
  const VP8StatusCode status = WebPGetFeatures(data, size, &features);
  if (status != VP8_STATUS_OK) {
    fail(name, status == VP8_STATUS_NOT_ENOUGH_DATA ? "truncated WebP header"
                                                    : "corrupt or unsupported WebP header");
  }
  // The canvas size, checked before the decoder allocates it.
  check_size(name, features.width, features.height);
  WebPAnimDecoderOptions options;
  if (!WebPAnimDecoderOptionsInit(&options)) fail(name, "libwebp version mismatch");
  options.color_mode = MODE_RGBA;
  options.use_threads = 0;
  WebPData webp{data, size};
  std::unique_ptr<WebPAnimDecoder, void (*)(WebPAnimDecoder*)> dec(
      WebPAnimDecoderNew(&webp, &options), WebPAnimDecoderDelete);
  if (!dec) fail(name, "corrupt or truncated WebP file");
  WebPAnimInfo info;
  if (!WebPAnimDecoderGetInfo(dec.get(), &info)) fail(name, "corrupt WebP file");
  check_size(name, info.canvas_width, info.canvas_height);
  uint8_t* buf = nullptr;
  int timestamp = 0;
  if (!WebPAnimDecoderGetNext(dec.get(), &buf, &timestamp) || !buf) {
    fail(name, "corrupt or truncated WebP data");
  }
  Image out;
  out.width = static_cast<int>(info.canvas_width);
  out.height = static_cast<int>(info.canvas_height);
  const size_t pixels = static_cast<size_t>(out.width) * static_cast<size_t>(out.height);
  out.rgb.resize(pixels * 3);
  if (features.has_alpha) {
    rgba_to_rgb_over_white(buf, pixels, out.rgb.data());
  } else {
    for (size_t i = 0; i < pixels; ++i) std::memcpy(&out.rgb[3 * i], buf + 4 * i, 3);
  }
  return out;
}

#else

Image decode_webp(const uint8_t*, size_t, const std::string& name) {
  fail(name, "this build has no WebP support (libwebp was not found when it was built)");
}

#endif

}  // namespace smolvlm::codecs
