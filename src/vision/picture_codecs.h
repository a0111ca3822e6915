// The picture decoders behind decode_image (image.cpp): one per format, each in its own file.
// Internal to src/vision.
#pragma once

#include <smolvlm/image.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace smolvlm::codecs {

// Throws the one-line decoding error: "cannot decode image 'NAME': WHY".
[[noreturn]] void fail(const std::string& name, const std::string& why);
// Throws unless a picture of w x h may be decoded (the size limits and the pixel limit); every
// decoder calls it with the header's size, before it allocates pixels.
void check_size(const std::string& name, int64_t w, int64_t h);

// Composites one RGBA pixel over opaque white as Pillow's alpha_composite(white, src) does (HF's
// convert_to_rgb for every mode but RGB), and drops the alpha.
void over_white(const uint8_t* rgba, uint8_t* rgb);
// A whole RGBA picture (rows packed) to RGB over white.
void rgba_to_rgb_over_white(const uint8_t* rgba, size_t pixels, uint8_t* rgb);

Image decode_bmp(const uint8_t* data, size_t size, const std::string& name);
Image decode_gif(const uint8_t* data, size_t size, const std::string& name);
Image decode_webp(const uint8_t* data, size_t size, const std::string& name);
Image decode_tiff(const uint8_t* data, size_t size, const std::string& name);
Image decode_avif(const uint8_t* data, size_t size, const std::string& name);
Image decode_heif(const uint8_t* data, size_t size, const std::string& name);

}  // namespace smolvlm::codecs
