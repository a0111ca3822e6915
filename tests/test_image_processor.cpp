// The SmolVLM image processor (spec §7) and video frames (§10) against transformers' outputs:
// tiny-smolvlm2/golden.* (tiles of 64, longest edge 256) and reference/processor_cases.json plus
// golden proc640x480.* (the real 256M processor: tiles of 512, longest edge 2048).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "formats/tensor.h"
#include "smolvlm/error.h"
#include "test_support.h"
#include "vision/image.h"
#include "vision/image_processor.h"

namespace smolvlm {
namespace {

using nlohmann::json;

// The tiny model's preprocessor_config.json, read here independently of the model loader.
ImageProcessorConfig tiny_config() {
  const json j = json::parse(read_text_file(test::tiny_model() + "/preprocessor_config.json"));
  ImageProcessorConfig c;
  c.longest_edge = j["size"]["longest_edge"];
  c.tile_size = j["max_image_size"]["longest_edge"];
  c.do_split = j["do_image_splitting"];
  for (int i = 0; i < 3; ++i) {
    c.mean[static_cast<size_t>(i)] = j["image_mean"][static_cast<size_t>(i)];
    c.std[static_cast<size_t>(i)] = j["image_std"][static_cast<size_t>(i)];
  }
  c.rescale = j["rescale_factor"];
  c.video_longest_edge = c.longest_edge;  // the video processor uses `size` (spec §10)
  return c;
}

ImageProcessorConfig real_config() {
  ImageProcessorConfig c;  // the defaults are SmolVLM2's real values
  c.longest_edge = 2048;
  c.tile_size = 512;
  c.video_longest_edge = 2048;
  return c;
}

Image tiny_image(const std::string& name) {
  return load_image_file(test::tiny_model() + "/images/" + name + ".png");
}

Image synthetic(int w, int h) {
  Image im;
  im.width = w;
  im.height = h;
  im.rgb.resize(static_cast<size_t>(w) * h * 3);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      uint8_t* p = im.pixel(x, y);
      p[0] = static_cast<uint8_t>(x * 7 + y);
      p[1] = static_cast<uint8_t>(y * 3);
      p[2] = static_cast<uint8_t>((x ^ y) * 5);
    }
  }
  return im;
}

// Largest R and C of the "<row_R_col_C>" markers in an expanded prompt.
std::pair<int, int> grid_in_prompt(const std::string& prompt) {
  int rows = 0, cols = 0;
  for (size_t at = prompt.find("<row_"); at != std::string::npos;
       at = prompt.find("<row_", at + 1)) {
    int r = 0, c = 0;
    if (std::sscanf(prompt.c_str() + at, "<row_%d_col_%d>", &r, &c) == 2) {
      rows = std::max(rows, r);
      cols = std::max(cols, c);
    }
  }
  return {rows, cols};
}

struct Diff {
  double max_abs = 0;
  size_t n_diff = 0;
};

Diff compare(const std::vector<float>& a, const std::vector<float>& b) {
  Diff d;
  EXPECT_EQ(a.size(), b.size());
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    const double e = std::fabs(static_cast<double>(a[i]) - b[i]);
    d.max_abs = std::max(d.max_abs, e);
    d.n_diff += a[i] != b[i];
  }
  return d;
}

// ---------------------------------------------------------------------------- tiny golden cases

void check_image_case(const std::string& name, const std::vector<std::string>& images,
                      bool do_split) {
  ImageProcessorConfig cfg = tiny_config();
  cfg.do_split = do_split;
  std::vector<float> pixels;
  int tiles = 0;
  for (const auto& img : images) {
    const ProcessedImage p = preprocess_image(tiny_image(img), cfg);
    EXPECT_EQ(p.tile_size, 64);
    EXPECT_EQ(p.n_tiles, p.rows > 0 ? p.rows * p.cols + 1 : 1) << img;
    EXPECT_EQ(p.n_tiles == 1, p.rows == 0 && p.cols == 0) << img;
    EXPECT_EQ(p.pixels.size(), static_cast<size_t>(p.n_tiles) * 3 * 64 * 64);
    const ImagePlan plan = plan_image(tiny_image(img).width, tiny_image(img).height, cfg);
    EXPECT_EQ(plan.rows, p.rows);
    EXPECT_EQ(plan.cols, p.cols);
    EXPECT_EQ(plan.n_tiles, p.n_tiles);
    if (images.size() == 1 && p.rows > 0) {
      const auto [r, c] =
          grid_in_prompt(test::golden_json()["cases"][name]["expanded_prompt"].get<std::string>());
      EXPECT_EQ(r, p.rows);
      EXPECT_EQ(c, p.cols);
    }
    pixels.insert(pixels.end(), p.pixels.begin(), p.pixels.end());
    tiles += p.n_tiles;
  }
  const TensorView& want_t = test::golden_tensors().get(name + ".pixel_values");
  ASSERT_EQ(want_t.shape.size(), 4u);  // [tiles, 3, 64, 64]
  EXPECT_EQ(want_t.shape[0], tiles);
  const std::vector<float> want = to_f32(want_t);
  const Diff d = compare(pixels, want);
  std::printf("[ %s ] %d tiles, max abs %.3g, %zu of %zu values differ\n", name.c_str(), tiles,
              d.max_abs, d.n_diff, want.size());
  EXPECT_EQ(d.n_diff, 0u);
  EXPECT_EQ(d.max_abs, 0.0);
}

TEST(ImageProcessorGolden, ImageNoSplit) { check_image_case("image_nosplit", {"img_a"}, false); }
TEST(ImageProcessorGolden, ImageSplit) { check_image_case("image_split", {"img_b"}, true); }
TEST(ImageProcessorGolden, ImageTall) { check_image_case("image_tall", {"img_c"}, true); }
TEST(ImageProcessorGolden, ImageSmall) { check_image_case("image_small", {"img_d"}, true); }
TEST(ImageProcessorGolden, MultiTurn) { check_image_case("multi_turn", {"img_a"}, true); }
TEST(ImageProcessorGolden, TwoImages) { check_image_case("two_images", {"img_a", "img_d"}, true); }

TEST(ImageProcessorGolden, VideoFrames) {
  const ImageProcessorConfig cfg = tiny_config();
  std::vector<float> pixels;
  for (int i = 0; i < 8; ++i) {
    const ProcessedImage p = preprocess_video_frame(tiny_image("frame_" + std::to_string(i)), cfg);
    EXPECT_EQ(p.n_tiles, 1);
    EXPECT_EQ(p.rows, 0);
    EXPECT_EQ(p.cols, 0);
    pixels.insert(pixels.end(), p.pixels.begin(), p.pixels.end());
  }
  const std::vector<float> want = test::golden("video.pixel_values");
  const Diff d = compare(pixels, want);
  // transformers used torchvision's antialiased bicubic; PIL's differs by one level on 388 values
  // (the others differ by float rounding only, < 1e-6).
  size_t level_diffs = 0;
  for (size_t i = 0; i < std::min(pixels.size(), want.size()); ++i) {
    level_diffs += std::fabs(pixels[i] - want[i]) > 1e-3f;
  }
  std::printf("[ video ] max abs %.4g (%.2f levels), %zu of %zu values a level off (%zu differ)\n",
              d.max_abs, d.max_abs * 127.5, level_diffs, want.size(), d.n_diff);
  EXPECT_LE(d.max_abs, 0.01);
  EXPECT_LE(level_diffs, 388u);
}

// ----------------------------------------------------------------- real processor (reference)

TEST(ImageProcessorReference, GridSizes) {
  const json cases =
      json::parse(read_text_file(test::fixtures() + "/reference/processor_cases.json"));
  const ImageProcessorConfig cfg = real_config();
  int n = 0;
  for (const auto& s : cases["sizes"]) {
    const int w = s["w"], h = s["h"];
    SCOPED_TRACE(std::to_string(w) + "x" + std::to_string(h));
    const json& want = s["default"];
    const ImagePlan plan = plan_image(w, h, cfg);
    EXPECT_EQ(plan.rows, want["rows"].get<int>());
    EXPECT_EQ(plan.cols, want["cols"].get<int>());
    EXPECT_EQ(plan.n_tiles, want["shape"][0].get<int>());
    const ProcessedImage p = preprocess_image(synthetic(w, h), cfg);
    EXPECT_EQ(p.rows, want["rows"].get<int>());
    EXPECT_EQ(p.cols, want["cols"].get<int>());
    EXPECT_EQ(p.n_tiles, want["shape"][0].get<int>());
    EXPECT_EQ(p.pixels.size(), static_cast<size_t>(p.n_tiles) * 3 * 512 * 512);
    ++n;
  }
  EXPECT_GE(n, 8);
}

TEST(ImageProcessorReference, Picture640x480) {
  const json cases =
      json::parse(read_text_file(test::fixtures() + "/reference/processor_cases.json"));
  const json* ref = nullptr;
  for (const auto& s : cases["sizes"]) {
    if (s["w"] == 640 && s["h"] == 480) ref = &s;
  }
  ASSERT_NE(ref, nullptr);
  const Image img = load_image_file(test::fixtures() + "/reference/proc_640x480.png");
  const ProcessedImage p = preprocess_image(img, real_config());
  ASSERT_EQ(p.rows, 3);
  ASSERT_EQ(p.cols, 4);
  ASSERT_EQ(p.n_tiles, 13);
  const size_t plane = 512 * 512;

  // Per-tile, per-channel means.
  const json& means = (*ref)["default"]["tile_mean"];
  ASSERT_EQ(means.size(), 13u);
  double worst_mean = 0;
  for (size_t t = 0; t < 13; ++t) {
    for (size_t c = 0; c < 3; ++c) {
      double sum = 0;
      const float* v = p.pixels.data() + (t * 3 + c) * plane;
      for (size_t i = 0; i < plane; ++i) sum += v[i];
      const double e = std::fabs(sum / plane - means[t][c].get<double>());
      worst_mean = std::max(worst_mean, e);
      EXPECT_LE(e, 2e-3) << "tile " << t << " channel " << c;
    }
  }

  // Tile 0 and the global tile against transformers' float16 copies.
  for (const auto& [tname, tile] :
       {std::pair{std::string("tile0"), size_t{0}}, std::pair{std::string("global"), size_t{12}}}) {
    const TensorView& tv = test::golden_tensors().get("proc640x480.default." + tname);
    ASSERT_EQ(tv.dtype, DType::F16);
    ASSERT_EQ(tv.numel(), static_cast<int64_t>(3 * plane));
    const std::vector<float> want = to_f32(tv);
    const float* ours = p.pixels.data() + tile * 3 * plane;
    double max_abs = 0, sum_abs = 0;
    size_t f16_mismatch = 0;
    for (size_t i = 0; i < 3 * plane; ++i) {
      const double e = std::fabs(static_cast<double>(ours[i]) - want[i]);
      max_abs = std::max(max_abs, e);
      sum_abs += e;
      f16_mismatch += f16_to_f32(f32_to_f16(ours[i])) != want[i];
    }
    std::printf(
        "[ 640x480 %s ] max abs %.3g, mean abs %.3g, %zu values differ after f16 rounding\n",
        tname.c_str(), max_abs, sum_abs / (3 * plane), f16_mismatch);
    EXPECT_LE(max_abs, 0.02);
    EXPECT_LE(sum_abs / (3 * plane), 1e-3);
    EXPECT_EQ(f16_mismatch, 0u);
  }
  std::printf("[ 640x480 ] worst tile mean error %.3g\n", worst_mean);
}

// --------------------------------------------------------------------------- sizes and options

TEST(ImageProcessorPlan, SpecTable) {
  const ImageProcessorConfig cfg = real_config();
  struct Row {
    int w, h, w1, h1, W, H, rows, cols;
  };
  for (const Row& r :
       {Row{640, 480, 2048, 1536, 2048, 1536, 3, 4}, Row{480, 640, 1536, 2048, 1536, 2048, 4, 3},
        Row{1024, 1024, 2048, 2048, 2048, 2048, 4, 4}, Row{100, 100, 2048, 2048, 2048, 2048, 4, 4},
        Row{1600, 1067, 2048, 1366, 2048, 1536, 3, 4},
        Row{1920, 1080, 2048, 1152, 2048, 1536, 3, 4}, Row{3000, 200, 2048, 136, 2048, 512, 1, 4},
        Row{200, 3000, 136, 2048, 512, 2048, 4, 1}}) {
    SCOPED_TRACE(std::to_string(r.w) + "x" + std::to_string(r.h));
    const ImagePlan p = plan_image(r.w, r.h, cfg);
    EXPECT_EQ(p.resized_w, r.w1);
    EXPECT_EQ(p.resized_h, r.h1);
    EXPECT_EQ(p.grid_w, r.W);
    EXPECT_EQ(p.grid_h, r.H);
    EXPECT_EQ(p.rows, r.rows);
    EXPECT_EQ(p.cols, r.cols);
    EXPECT_EQ(p.n_tiles, r.rows * r.cols + 1);
    EXPECT_TRUE(p.split);
  }
}

TEST(ImageProcessorPlan, LongestEdgeRounding) {
  EXPECT_EQ(fit_longest_edge(40, 30, 256), std::make_pair(256, 192));
  EXPECT_EQ(fit_longest_edge(120, 80, 256), std::make_pair(256, 170));  // int(170.67) = 170
  EXPECT_EQ(fit_longest_edge(90, 400, 256), std::make_pair(58, 256));   // int(57.6) = 57 → 58
  EXPECT_EQ(fit_longest_edge(5000, 1, 2048), std::make_pair(2048, 1));  // 0 → at least 1
  EXPECT_EQ(fit_longest_edge(1, 1, 7), std::make_pair(7, 8));  // only the short side is made even
  // HF's 4096 cap, only reachable with longest_edge > 4096.
  EXPECT_EQ(fit_longest_edge(3000, 2000, 6000), std::make_pair(4096, 2730));
  EXPECT_THROW(fit_longest_edge(0, 10, 256), Error);
}

TEST(ImageProcessorPlan, NoSplitAndSmallEdges) {
  ImageProcessorConfig cfg = real_config();
  cfg.do_split = false;
  ImagePlan p = plan_image(640, 480, cfg);
  EXPECT_FALSE(p.split);
  EXPECT_EQ(p.n_tiles, 1);
  EXPECT_EQ(p.rows, 0);
  EXPECT_EQ(p.resized_w, 2048);
  // Longest edge at or below the tile: one tile, no global.
  cfg = real_config();
  cfg.longest_edge = 400;
  p = plan_image(640, 480, cfg);
  EXPECT_FALSE(p.split);
  EXPECT_EQ(p.n_tiles, 1);
  const ProcessedImage out = preprocess_image(synthetic(64, 48), cfg);
  EXPECT_EQ(out.n_tiles, 1);
  EXPECT_EQ(out.pixels.size(), 3u * 512 * 512);
}

TEST(ImageProcessorPlan, MaxTilesCap) {
  ImageProcessorConfig cfg = real_config();
  cfg.max_tiles = 12;  // the natural 3x4 grid fits
  ImagePlan p = plan_image(640, 480, cfg);
  EXPECT_EQ(p.rows * p.cols, 12);
  cfg.max_tiles = 6;  // edge 1536 gives 3x3 = 9, edge 1024 gives 2x2
  p = plan_image(640, 480, cfg);
  EXPECT_EQ(p.rows, 2);
  EXPECT_EQ(p.cols, 2);
  EXPECT_EQ(p.n_tiles, 5);
  EXPECT_EQ(p.resized_w, 1024);
  cfg.max_tiles = 2;  // 3000x200: 1x4 → edge 1536: 1x3 → edge 1024: 1x2
  p = plan_image(3000, 200, cfg);
  EXPECT_EQ(p.rows, 1);
  EXPECT_EQ(p.cols, 2);
  cfg.max_tiles = 3;  // a square picture cannot make 2..3 tiles: no split
  p = plan_image(500, 500, cfg);
  EXPECT_FALSE(p.split);
  EXPECT_EQ(p.n_tiles, 1);

  // max_tiles = 1 is exactly do_split = false.
  const Image img = synthetic(300, 200);
  cfg.max_tiles = 1;
  const ProcessedImage one = preprocess_image(img, cfg);
  ImageProcessorConfig nosplit = real_config();
  nosplit.do_split = false;
  const ProcessedImage ref = preprocess_image(img, nosplit);
  EXPECT_EQ(one.n_tiles, 1);
  EXPECT_EQ(one.rows, 0);
  EXPECT_EQ(one.pixels, ref.pixels);

  cfg.max_tiles = 6;
  const ProcessedImage capped = preprocess_image(img, cfg);
  EXPECT_LE(capped.rows * capped.cols, 6);
  EXPECT_EQ(capped.n_tiles, capped.rows * capped.cols + 1);
  EXPECT_EQ(capped.pixels.size(), static_cast<size_t>(capped.n_tiles) * 3 * 512 * 512);
}

TEST(ImageProcessorNormalize, MatchesTransformersForAllLevels) {
  // A 16x16 picture holding all 256 levels, with 16-pixel tiles and edge: no resize happens.
  ImageProcessorConfig cfg;
  cfg.longest_edge = 16;
  cfg.tile_size = 16;
  cfg.do_split = false;
  Image img;
  img.width = img.height = 16;
  img.rgb.resize(16 * 16 * 3);
  for (int i = 0; i < 256; ++i) {
    img.rgb[3 * i] = static_cast<uint8_t>(i);
    img.rgb[3 * i + 1] = static_cast<uint8_t>(255 - i);
    img.rgb[3 * i + 2] = static_cast<uint8_t>(i * 7);
  }
  const ProcessedImage p = preprocess_image(img, cfg);
  ASSERT_EQ(p.pixels.size(), 3u * 256);
  for (int i = 0; i < 256; ++i) {
    for (int c = 0; c < 3; ++c) {
      const int v = img.rgb[3 * i + c];
      // spec §7.5: bit-identical to the float32 expression v / 127.5f - 1.0f.
      EXPECT_EQ(p.pixels[static_cast<size_t>(c) * 256 + i], static_cast<float>(v) / 127.5f - 1.0f)
          << "level " << v;
    }
  }
  // Other mean/std: (float(v * rescale) - mean) / std.
  cfg.mean = {0.485f, 0.456f, 0.406f};
  cfg.std = {0.229f, 0.224f, 0.225f};
  const ProcessedImage q = preprocess_image(img, cfg);
  for (int i = 0; i < 256; ++i) {
    for (int c = 0; c < 3; ++c) {
      const int v = img.rgb[3 * i + c];
      const float x = static_cast<float>(v * (1.0 / 255.0));
      EXPECT_EQ(q.pixels[static_cast<size_t>(c) * 256 + i],
                (x - cfg.mean[static_cast<size_t>(c)]) / cfg.std[static_cast<size_t>(c)]);
    }
  }
}

TEST(ImageProcessorErrors, BadInputs) {
  const ImageProcessorConfig cfg = tiny_config();
  EXPECT_THROW(preprocess_image(Image{}, cfg), Error);
  EXPECT_THROW(preprocess_video_frame(Image{}, cfg), Error);
  ImageProcessorConfig bad = cfg;
  bad.tile_size = 0;
  EXPECT_THROW(preprocess_image(synthetic(8, 8), bad), Error);
  bad = cfg;
  bad.std[1] = 0.0f;
  EXPECT_THROW(preprocess_image(synthetic(8, 8), bad), Error);
  bad = cfg;
  bad.max_tiles = -1;
  EXPECT_THROW(plan_image(8, 8, bad), Error);
}

}  // namespace
}  // namespace smolvlm
