// Decoded pictures and the PIL-exact resizes the SmolVLM processor uses.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace smolvlm {

// 8-bit RGB, row-major, 3 bytes a pixel.
struct ImageU8 {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;
  uint8_t* pixel(int x, int y) { return rgb.data() + (static_cast<size_t>(y) * width + x) * 3; }
  const uint8_t* pixel(int x, int y) const {
    return rgb.data() + (static_cast<size_t>(y) * width + x) * 3;
  }
};

// Decodes a JPEG or PNG file (chosen by magic bytes, not by name) to RGB, exactly as PIL's
// Image.open(...).convert("RGB") does: grey → RGB, palette → RGB, alpha composited over white.
// Throws smolvlm::Error with a one-line message for missing/empty/corrupt/unsupported files.
// (Precisely: the pixels of HF's convert_to_rgb(Image.open(path)) with Pillow 9.4: RGB as decoded,
// any other mode → RGBA → alpha_composite over opaque white → RGB. CMYK JPEGs are converted like
// Pillow; 16-bit grey PNGs clip at 255 like Pillow's mode "I". See image.cpp. Limits: 32768 pixels
// a side, 2^28 pixels in all, 1 GiB files.)
ImageU8 load_image_file(const std::string& path);
ImageU8 decode_image(const uint8_t* data, size_t size, const std::string& name_for_errors);

// Pillow's Image.resize(..., LANCZOS) / (..., BICUBIC) for 8-bit RGB, bit-exact
// (separable, horizontal pass first, uint8 between passes, 22-bit fixed-point weights).
ImageU8 resize_lanczos(const ImageU8& src, int width, int height);
ImageU8 resize_bicubic(const ImageU8& src, int width, int height);

}  // namespace smolvlm
