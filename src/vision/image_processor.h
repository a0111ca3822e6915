// SmolVLMImageProcessor (PIL path): resize to the longest edge, split into tiles plus a global
// tile, rescale and normalise. Also the per-frame video preprocessing.
#pragma once

#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "model/config.h"
#include "vision/image.h"

namespace smolvlm {

struct ProcessedImage {
  int rows = 0;  // 0 when not split (single tile)
  int cols = 0;
  int tile_size = 0;
  int n_tiles = 0;            // rows*cols + 1 when split, else 1
  std::vector<float> pixels;  // [n_tiles, 3, tile_size, tile_size], tiles row-major, global last
};

ProcessedImage preprocess_image(const Image& image, const ImageProcessorConfig& cfg);

// The same tiles as 8-bit RGB, a quarter of the floats' memory (a 640×480 photo's 13 tiles: 10 MB
// instead of 41), turned into pixel values one tile at a time as the encoder reaches it.
// pixel_values(t) gives exactly the floats preprocess_image holds for tile t.
struct PictureTiles {
  int rows = 0, cols = 0, tile_size = 0, n_tiles = 0;  // as ProcessedImage
  std::vector<uint8_t> rgb;  // [n_tiles, tile_size, tile_size, 3], tiles row-major, global last
  std::array<std::array<float, 256>, 3> norm{};  // channel × byte → rescaled, normalised value
  void pixel_values(int t, float* out) const;    // tile t as [3, tile_size, tile_size]
};
PictureTiles preprocess_image_tiles(const Image& image, const ImageProcessorConfig& cfg);

// The sizes preprocess_image uses for a width×height picture, without touching pixels (for
// counting image tokens up front). With max_tiles > 0 and a natural grid of more tiles, the working
// longest edge shrinks in steps of tile_size until rows·cols <= max_tiles; max_tiles == 1 (or no
// edge above one tile fitting) gives one tile exactly as do_split = false does.
struct ImagePlan {
  int resized_w = 0;  // §7.1 (longest edge, even rounding)
  int resized_h = 0;
  bool split = false;  // tiles + global (rows, cols > 0) vs one tile
  int grid_w = 0;      // §7.2 (multiples of the tile size); 0 when not split
  int grid_h = 0;
  int rows = 0;
  int cols = 0;
  int n_tiles = 0;
};
ImagePlan plan_image(int width, int height, const ImageProcessorConfig& cfg);

// §7.1 with Python semantics: (width, height) scaled so the longer side is `longest_edge`, the
// other side truncated and rounded up to even, at least 1; then HF's 4096 cap.
std::pair<int, int> fit_longest_edge(int width, int height, int longest_edge);

// One video frame → one tile (rows = cols = 0): BICUBIC to video_longest_edge, then to tile×tile.
ProcessedImage preprocess_video_frame(const Image& frame, const ImageProcessorConfig& cfg);

}  // namespace smolvlm
