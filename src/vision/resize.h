// The PIL-exact resizes the SmolVLM processor uses.
#pragma once

#include <smolvlm/image.h>

namespace smolvlm {

// Pillow's Image.resize(..., LANCZOS) / (..., BICUBIC) for 8-bit RGB, bit-exact
// (separable, horizontal pass first, uint8 between passes, 22-bit fixed-point weights).
Image resize_lanczos(const Image& src, int width, int height);
Image resize_bicubic(const Image& src, int width, int height);

}  // namespace smolvlm
