// AVIF through libavif and HEIC/HEIF through libheif: Pillow 9.4 reads neither, so the pixels are
// what those libraries decode with their defaults (the primary image, 8 bits a channel, their
// own YUV to RGB conversion and chroma upsampling; libheif applies the file's rotation and
// mirroring, as its heif-convert does). A picture with alpha is composited over white, as HF's
// convert_to_rgb treats any RGBA picture.
#include <smolvlm/image.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "vision/picture_codecs.h"

#if SMOLVLM_HAVE_AVIF
#include <avif/avif.h>
#endif
#if SMOLVLM_HAVE_HEIF
#include <libheif/heif.h>
#endif

namespace smolvlm::codecs {

#if SMOLVLM_HAVE_AVIF || SMOLVLM_HAVE_HEIF
namespace {
// Copies interleaved 8-bit RGB or RGBA rows (any stride) into `out`.
void take_rows(Image& out, const uint8_t* pixels, size_t stride, bool alpha) {
  const size_t w = static_cast<size_t>(out.width);
  out.rgb.resize(w * static_cast<size_t>(out.height) * 3);
  for (int y = 0; y < out.height; ++y) {
    const uint8_t* src = pixels + stride * static_cast<size_t>(y);
    uint8_t* dst = out.pixel(0, y);
    if (alpha) {
      rgba_to_rgb_over_white(src, w, dst);
    } else {
      std::memcpy(dst, src, w * 3);
    }
  }
}
}  // namespace
#endif

#if SMOLVLM_HAVE_AVIF

Image decode_avif(const uint8_t* data, size_t size, const std::string& name) {
  std::unique_ptr<avifDecoder, void (*)(avifDecoder*)> dec(avifDecoderCreate(), avifDecoderDestroy);
  if (!dec) fail(name, "out of memory");
  dec->imageSizeLimit = static_cast<uint32_t>(kMaxPicturePixelsCeiling);
  auto check = [&](avifResult r, const char* what) {
    if (r != AVIF_RESULT_OK) fail(name, std::string(what) + " (" + avifResultToString(r) + ")");
  };
  check(avifDecoderSetIOMemory(dec.get(), data, size), "cannot read the AVIF file");
  check(avifDecoderParse(dec.get()), "corrupt or unsupported AVIF file");
  check_size(name, dec->image->width, dec->image->height);
  check(avifDecoderNextImage(dec.get()), "corrupt or truncated AVIF data");
  avifRGBImage rgb;
  avifRGBImageSetDefaults(&rgb, dec->image);
  const bool alpha = dec->alphaPresent != AVIF_FALSE;
  rgb.format = alpha ? AVIF_RGB_FORMAT_RGBA : AVIF_RGB_FORMAT_RGB;
  rgb.depth = 8;
  avifRGBImageAllocatePixels(&rgb);
  std::unique_ptr<avifRGBImage, void (*)(avifRGBImage*)> pixels(&rgb, avifRGBImageFreePixels);
  if (!rgb.pixels) fail(name, "out of memory");
  check(avifImageYUVToRGB(dec->image, &rgb), "cannot convert the AVIF picture to RGB");
  Image out;
  out.width = static_cast<int>(rgb.width);
  out.height = static_cast<int>(rgb.height);
  check_size(name, out.width, out.height);
  take_rows(out, rgb.pixels, rgb.rowBytes, alpha);
  return out;
}

#else

Image decode_avif(const uint8_t*, size_t, const std::string& name) {
  fail(name, "this build has no AVIF support (libavif was not found when it was built)");
}

#endif

#if SMOLVLM_HAVE_HEIF

Image decode_heif(const uint8_t* data, size_t size, const std::string& name) {
  using Context = std::unique_ptr<heif_context, void (*)(heif_context*)>;
  using Handle = std::unique_ptr<heif_image_handle, void (*)(const heif_image_handle*)>;
  auto check = [&](const heif_error& e, const char* what) {
    if (e.code != heif_error_Ok) {
      fail(name, std::string(what) + " (" + (e.message ? e.message : "libheif error") + ")");
    }
  };
  // Reads the file with no image side above `max_side`; returns the context and its picture.
  auto open = [&](int max_side) {
    Context ctx(heif_context_alloc(), heif_context_free);
    if (!ctx) fail(name, "out of memory");
    heif_context_set_maximum_image_size_limit(ctx.get(), max_side);
    check(heif_context_read_from_memory_without_copy(ctx.get(), data, size, nullptr),
          "corrupt or unsupported HEIF file");
    heif_image_handle* raw_handle = nullptr;
    check(heif_context_get_primary_image_handle(ctx.get(), &raw_handle), "the HEIF has no picture");
    Handle handle(raw_handle, heif_image_handle_release);
    return std::pair<Context, Handle>(std::move(ctx), std::move(handle));
  };
  // The picture's declared size is checked first; then the file is read again with every image
  // in it (a grid's output, its tiles) held near that size, as libheif allocates a grid's output
  // from the grid's own header: a kilobyte file declaring 64x64 with a grid of 30000x30000
  // otherwise costs gigabytes before any check of ours. The margin: encoders code in 64-pixel
  // blocks and grid tiles may overhang the picture (a 49x49 picture is a 64x64 tile).
  constexpr int kTileMargin = 256;
  int width = 0, height = 0;
  {
    const auto probe = open(32768);
    width = heif_image_handle_get_width(probe.second.get());
    height = heif_image_handle_get_height(probe.second.get());
  }
  check_size(name, width, height);
  auto [ctx, handle] = open(std::min(32768, std::max(width, height) + kTileMargin));
  const bool alpha = heif_image_handle_has_alpha_channel(handle.get()) != 0;
  heif_image* raw_image = nullptr;
  check(heif_decode_image(handle.get(), &raw_image, heif_colorspace_RGB,
                          alpha ? heif_chroma_interleaved_RGBA : heif_chroma_interleaved_RGB,
                          nullptr),
        "cannot decode the HEIF picture");
  std::unique_ptr<heif_image, void (*)(const heif_image*)> image(raw_image, heif_image_release);
  int stride = 0;
  const uint8_t* pixels =
      heif_image_get_plane_readonly(image.get(), heif_channel_interleaved, &stride);
  Image out;
  out.width = heif_image_get_width(image.get(), heif_channel_interleaved);
  out.height = heif_image_get_height(image.get(), heif_channel_interleaved);
  if (!pixels || stride <= 0) fail(name, "libheif gave no pixels");
  check_size(name, out.width, out.height);
  take_rows(out, pixels, static_cast<size_t>(stride), alpha);
  return out;
}

#else

Image decode_heif(const uint8_t*, size_t, const std::string& name) {
  fail(name, "this build has no HEIC/HEIF support (libheif was not found when it was built)");
}

#endif

}  // namespace smolvlm::codecs
