// SmolVLMImageProcessor, PIL path (spec §7) and the per-frame video preprocessing (spec §10).
#include "vision/image_processor.h"

#include <algorithm>
#include <string>
#include <tuple>

#include "smolvlm/error.h"
#include "vision/resize.h"

namespace smolvlm {
namespace {

// transformers' MAX_IMAGE_SIZE: a cap after the longest-edge resize (only bites for
// longest_edge > 4096). A constant of HF's code, not of the model files.
constexpr int kHfMaxImageSize = 4096;

void check_config(const ImageProcessorConfig& cfg) {
  if (cfg.tile_size <= 0 || cfg.longest_edge <= 0 || cfg.video_longest_edge <= 0 ||
      cfg.max_tiles < 0) {
    throw Error("image processor: invalid configuration (tile " + std::to_string(cfg.tile_size) +
                ", longest edge " + std::to_string(cfg.longest_edge) + ", video longest edge " +
                std::to_string(cfg.video_longest_edge) + ", max tiles " +
                std::to_string(cfg.max_tiles) + ")");
  }
  for (float s : cfg.std) {
    if (!(s != 0.0f)) throw Error("image processor: image_std must not be zero");
  }
}

void check_image(const Image& image, const char* what) {
  if (image.width <= 0 || image.height <= 0 ||
      image.rgb.size() !=
          static_cast<size_t>(image.width) * static_cast<size_t>(image.height) * 3) {
    throw Error(std::string(what) + ": empty or malformed image (" + std::to_string(image.width) +
                "x" + std::to_string(image.height) + ")");
  }
}

int ceil_to_multiple(int v, int m) { return (v + m - 1) / m * m; }

// §7.2: (w, h) → multiples of the tile size; returns (W, H).
std::pair<int, int> fit_tile_multiple(int w, int h, int tile) {
  const double aspect = static_cast<double>(w) / h;
  int W, H;
  if (w >= h) {
    W = ceil_to_multiple(w, tile);
    H = ceil_to_multiple(static_cast<int>(W / aspect), tile);
  } else {
    H = ceil_to_multiple(h, tile);
    W = ceil_to_multiple(static_cast<int>(H * aspect), tile);
  }
  // HF could produce 0 here only through rounding on absurd aspect ratios; one tile at least.
  return {std::max(W, tile), std::max(H, tile)};
}

// The split plan for one working longest edge.
ImagePlan plan_with_edge(int width, int height, int longest_edge, int tile) {
  ImagePlan p;
  std::tie(p.resized_w, p.resized_h) = fit_longest_edge(width, height, longest_edge);
  const auto [W, H] = fit_tile_multiple(p.resized_w, p.resized_h, tile);
  if (W > tile || H > tile) {
    p.split = true;
    p.grid_w = W;
    p.grid_h = H;
    p.rows = H / tile;
    p.cols = W / tile;
    p.n_tiles = p.rows * p.cols + 1;
  } else {
    p.n_tiles = 1;  // a one-tile grid: the picture squashed to tile×tile, no global tile
  }
  return p;
}

ImagePlan plan_single(int width, int height, int longest_edge) {
  ImagePlan p;
  std::tie(p.resized_w, p.resized_h) = fit_longest_edge(width, height, longest_edge);
  p.n_tiles = 1;
  return p;
}

// rescale (in double, rounded to float) then (x - mean) / std in float, as transformers does; for
// mean = std = 0.5 and 1/255 this equals v / 127.5f - 1.0f bit for bit.
std::array<std::array<float, 256>, 3> norm_table(const ImageProcessorConfig& cfg) {
  std::array<std::array<float, 256>, 3> v{};
  for (int c = 0; c < 3; ++c) {
    for (int i = 0; i < 256; ++i) {
      const float x = static_cast<float>(static_cast<double>(i) * cfg.rescale);
      v[static_cast<size_t>(c)][static_cast<size_t>(i)] =
          (x - cfg.mean[static_cast<size_t>(c)]) / cfg.std[static_cast<size_t>(c)];
    }
  }
  return v;
}

// Appends the tile×tile block at (x0, y0) of `img` as 8-bit RGB rows.
void append_tile_rgb(const Image& img, int x0, int y0, int tile, std::vector<uint8_t>& out) {
  for (int y = 0; y < tile; ++y) {
    const uint8_t* p = img.pixel(x0, y0 + y);
    out.insert(out.end(), p, p + static_cast<size_t>(3) * tile);
  }
}

}  // namespace

std::pair<int, int> fit_longest_edge(int width, int height, int longest_edge) {
  if (width <= 0 || height <= 0 || longest_edge <= 0) {
    throw Error("image processor: invalid size " + std::to_string(width) + "x" +
                std::to_string(height) + " for longest edge " + std::to_string(longest_edge));
  }
  const double aspect = static_cast<double>(width) / height;
  int w, h;
  if (width >= height) {
    w = longest_edge;
    h = static_cast<int>(w / aspect);
    if (h % 2 != 0) ++h;
  } else {
    h = longest_edge;
    w = static_cast<int>(h * aspect);
    if (w % 2 != 0) ++w;
  }
  h = std::max(h, 1);
  w = std::max(w, 1);
  if (std::max(w, h) > kHfMaxImageSize) {
    if (w >= h) {
      h = static_cast<int>(static_cast<double>(h) * kHfMaxImageSize / w);
      w = kHfMaxImageSize;
    } else {
      w = static_cast<int>(static_cast<double>(w) * kHfMaxImageSize / h);
      h = kHfMaxImageSize;
    }
  }
  return {w, h};
}

// max_tiles (a speed option, not in HF): when the natural grid has more than max_tiles tiles, the
// working longest edge shrinks in steps of the tile size (longest_edge - tile, - 2·tile, ...; §7.1
// and §7.2 recomputed at each step) until rows·cols <= max_tiles. If no edge above one tile fits,
// and always when max_tiles == 1, the picture is not split: one tile, exactly as with do_split =
// false (the full-size resize squashed to tile×tile; rows = cols = 0, no global tile).
ImagePlan plan_image(int width, int height, const ImageProcessorConfig& cfg) {
  check_config(cfg);
  const int tile = cfg.tile_size;
  if (!cfg.do_split) return plan_single(width, height, cfg.longest_edge);
  ImagePlan p = plan_with_edge(width, height, cfg.longest_edge, tile);
  if (cfg.max_tiles == 0 || !p.split || p.rows * p.cols <= cfg.max_tiles) return p;
  if (cfg.max_tiles >= 2) {
    for (int edge = cfg.longest_edge - tile; edge > tile; edge -= tile) {
      ImagePlan q = plan_with_edge(width, height, edge, tile);
      if (q.split && q.rows * q.cols <= cfg.max_tiles) return q;
    }
  }
  return plan_single(width, height, cfg.longest_edge);
}

void PictureTiles::pixel_values(int t, float* out) const {
  const size_t plane = static_cast<size_t>(tile_size) * static_cast<size_t>(tile_size);
  const uint8_t* p = rgb.data() + static_cast<size_t>(t) * plane * 3;
  float* r = out;
  float* g = r + plane;
  float* b = g + plane;
  for (size_t i = 0; i < plane; ++i) {
    r[i] = norm[0][p[3 * i]];
    g[i] = norm[1][p[3 * i + 1]];
    b[i] = norm[2][p[3 * i + 2]];
  }
}

PictureTiles preprocess_image_tiles(const Image& image, const ImageProcessorConfig& cfg) {
  check_image(image, "image processor");
  const ImagePlan plan = plan_image(image.width, image.height, cfg);
  const int tile = cfg.tile_size;

  PictureTiles out;
  out.tile_size = tile;
  out.rows = plan.rows;
  out.cols = plan.cols;
  out.n_tiles = plan.n_tiles;
  out.norm = norm_table(cfg);
  out.rgb.reserve(static_cast<size_t>(plan.n_tiles) * 3 * static_cast<size_t>(tile) * tile);

  const Image resized = resize_lanczos(image, plan.resized_w, plan.resized_h);
  if (!plan.split) {
    append_tile_rgb(resize_lanczos(resized, tile, tile), 0, 0, tile, out.rgb);
    return out;
  }
  const Image grid = resize_lanczos(resized, plan.grid_w, plan.grid_h);
  for (int r = 0; r < plan.rows; ++r) {
    for (int c = 0; c < plan.cols; ++c) append_tile_rgb(grid, c * tile, r * tile, tile, out.rgb);
  }
  append_tile_rgb(resize_lanczos(grid, tile, tile), 0, 0, tile, out.rgb);  // global, last
  return out;
}

namespace {

ProcessedImage expand(const PictureTiles& tiles) {
  ProcessedImage out;
  out.rows = tiles.rows;
  out.cols = tiles.cols;
  out.tile_size = tiles.tile_size;
  out.n_tiles = tiles.n_tiles;
  const size_t per_tile = static_cast<size_t>(3) * tiles.tile_size * tiles.tile_size;
  out.pixels.resize(per_tile * static_cast<size_t>(tiles.n_tiles));
  for (int t = 0; t < tiles.n_tiles; ++t)
    tiles.pixel_values(t, out.pixels.data() + per_tile * static_cast<size_t>(t));
  return out;
}

}  // namespace

ProcessedImage preprocess_image(const Image& image, const ImageProcessorConfig& cfg) {
  return expand(preprocess_image_tiles(image, cfg));
}

ProcessedImage preprocess_video_frame(const Image& frame, const ImageProcessorConfig& cfg) {
  check_config(cfg);
  check_image(frame, "video frame");
  const int tile = cfg.tile_size;
  const auto [w, h] = fit_longest_edge(frame.width, frame.height, cfg.video_longest_edge);
  const Image squashed = resize_bicubic(resize_bicubic(frame, w, h), tile, tile);
  PictureTiles one;
  one.tile_size = tile;
  one.n_tiles = 1;
  one.norm = norm_table(cfg);
  append_tile_rgb(squashed, 0, 0, tile, one.rgb);
  return expand(one);
}

}  // namespace smolvlm
