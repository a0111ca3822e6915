// The picture formats besides JPEG and PNG (WebP, GIF, BMP, TIFF against Debian's Pillow; AVIF
// and HEIF against what libavif and libheif encode and decode), the pixel limit (Pillow's
// decompression-bomb rule), and the answers of the tiny model for a picture of each format.
// Pictures are made at test time: tools/make_picture_formats.py writes the Pillow ones with their
// expected pixels; the AVIF and HEIF ones are encoded here with libavif and libheif.
#include <gtest/gtest.h>
#include <png.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "cli_runner.h"
#include "smolvlm/error.h"
#include "smolvlm/smolvlm.h"
#include "test_support.h"
#include "vision/image.h"
#include "vision/picture_format.h"

// The format libraries this build has (CMakeLists.txt defines those it found).
#ifndef SMOLVLM_HAVE_WEBP
#define SMOLVLM_HAVE_WEBP 0
#endif
#ifndef SMOLVLM_HAVE_GIF
#define SMOLVLM_HAVE_GIF 0
#endif
#ifndef SMOLVLM_HAVE_TIFF
#define SMOLVLM_HAVE_TIFF 0
#endif
#ifndef SMOLVLM_HAVE_AVIF
#define SMOLVLM_HAVE_AVIF 0
#endif
#ifndef SMOLVLM_HAVE_HEIF
#define SMOLVLM_HAVE_HEIF 0
#endif

#if SMOLVLM_HAVE_AVIF
#include <avif/avif.h>
#endif
#if SMOLVLM_HAVE_HEIF
#include <libheif/heif.h>
#endif

namespace smolvlm {
namespace {

using nlohmann::json;

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

void write_all(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Writes 8-bit RGB (channels 3) or RGBA (4) rows as a PNG with libpng.
void write_png(const std::string& path, int w, int h, int channels, const uint8_t* pixels) {
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) std::abort();
  png_init_io(png, f);
  png_set_IHDR(png, info, static_cast<png_uint_32>(w), static_cast<png_uint_32>(h), 8,
               channels == 4 ? PNG_COLOR_TYPE_RGBA : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < h; ++y) {
    png_write_row(png, pixels + static_cast<size_t>(y) * static_cast<size_t>(w) * channels);
  }
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  std::fclose(f);
}

// Pillow's pictures, made once per test program run (a second or so).
struct PillowSet {
  std::unique_ptr<test::TempDir> dir;
  json manifest;
  std::string skip;  // why there is none
};

const PillowSet& pillow_set() {
  static PillowSet set = [] {
    PillowSet s;
    if (access("/usr/bin/python3", X_OK) != 0) {
      s.skip = "/usr/bin/python3 is needed to make the pictures with Pillow";
      return s;
    }
    s.dir = std::make_unique<test::TempDir>();
    const std::string script =
        std::string(SMOLVLM_FIXTURES_DIR) + "/../../tools/make_picture_formats.py";
    const test::CliResult r = test::run_cli({script, s.dir->path()}, "", {},
                                            test::CliProcess::Ms(120000), "/usr/bin/python3");
    if (r.status != 0) {
      s.skip = "make_picture_formats.py failed (Pillow with WebP, numpy?): " + r.err;
      return s;
    }
    s.manifest = json::parse(read_all(*s.dir / "manifest.json"));
    return s;
  }();
  return set;
}

#define NEED_PILLOW_SET()              \
  const PillowSet& set = pillow_set(); \
  if (!set.skip.empty()) GTEST_SKIP() << set.skip;
// For the tests that take one picture of each format Pillow writes.
#define NEED_PILLOW_FORMATS()                                          \
  NEED_PILLOW_SET();                                                   \
  if (!SMOLVLM_HAVE_WEBP || !SMOLVLM_HAVE_GIF || !SMOLVLM_HAVE_TIFF) { \
    GTEST_SKIP() << "this build lacks libwebp, giflib or libtiff";     \
  }

// The first picture of the set whose name ends with `suffix`.
std::string first_with_suffix(const PillowSet& set, const std::string& suffix) {
  for (const auto& c : set.manifest) {
    const std::string f = c["file"];
    if (f.size() >= suffix.size() &&
        f.compare(f.size() - suffix.size(), suffix.size(), suffix) == 0) {
      return *set.dir / f;
    }
  }
  return {};
}

// Whether this build has the library of the picture's format (BMP needs none).
bool format_built(const std::string& file) {
  auto ends = [&](const char* e) {
    const std::string ext = e;
    return file.size() > ext.size() && file.compare(file.size() - ext.size(), ext.size(), ext) == 0;
  };
  if (ends(".webp")) return SMOLVLM_HAVE_WEBP != 0;
  if (ends(".gif")) return SMOLVLM_HAVE_GIF != 0;
  if (ends(".tif")) return SMOLVLM_HAVE_TIFF != 0;
  return true;
}

TEST(PictureFormats, EveryVariantMatchesPillow) {
  NEED_PILLOW_SET();
  int n = 0, missing = 0;
  for (const auto& c : set.manifest) {
    const std::string file = c["file"];
    if (!format_built(file)) {
      ++missing;
      continue;
    }
    SCOPED_TRACE(file + " (" + c["note"].get<std::string>() + ")");
    const std::string want = read_all(*set.dir / (file + ".rgb"));
    Image im;
    try {
      im = load_image_file(*set.dir / file);
    } catch (const Error& e) {
      ADD_FAILURE() << e.what();
      continue;
    }
    ASSERT_EQ(im.width, c["w"].get<int>());
    ASSERT_EQ(im.height, c["h"].get<int>());
    ASSERT_EQ(want.size(), im.rgb.size());
    size_t diffs = 0, first = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      if (static_cast<uint8_t>(want[i]) != im.rgb[i] && diffs++ == 0) first = i;
    }
    EXPECT_EQ(diffs, 0u) << "first difference at pixel " << first / 3 << " channel " << first % 3
                         << ": " << int(im.rgb[first]) << ", Pillow "
                         << int(static_cast<uint8_t>(want[first]));
    ++n;
  }
  if (missing) GTEST_SKIP() << missing << " pictures of formats this build lacks";
  EXPECT_GE(n, 70);
  std::printf("  %d pictures equal to Pillow's\n", n);
}

TEST(PictureFormats, FormatFromTheBytesNotTheName) {
  NEED_PILLOW_FORMATS();
  test::TempDir dir;
  for (const char* suffix : {".webp", ".gif", ".bmp", ".tif"}) {
    const std::string src = first_with_suffix(set, suffix);
    const std::string bytes = read_all(src);
    EXPECT_NE(picture_format(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
              nullptr);
    write_all(dir / "named_wrongly.jpg", bytes);
    EXPECT_EQ(load_image_file(dir / "named_wrongly.jpg").rgb, load_image_file(src).rgb) << src;
  }
}

// Every cut and a few flipped bytes of each picture: a picture or a one-line Error, never more.
TEST(PictureFormats, TruncatedAndCorruptFilesFailCleanly) {
  NEED_PILLOW_SET();
  std::mt19937 rng(7);
  int refused = 0;
  for (const auto& c : set.manifest) {
    const std::string file = c["file"];
    const std::string bytes = read_all(*set.dir / file);
    auto attempt = [&](const std::string& b) {
      try {
        const Image im =
            decode_image(reinterpret_cast<const uint8_t*>(b.data()), b.size(), "cut/" + file);
        EXPECT_EQ(im.rgb.size(), size_t(im.width) * size_t(im.height) * 3);
      } catch (const Error& e) {
        const std::string m = e.what();
        EXPECT_EQ(m.find('\n'), std::string::npos) << m;
        EXPECT_NE(m.find("cut/" + file), std::string::npos) << m;
        ++refused;
      }
    };
    for (size_t cut = 0; cut < bytes.size(); cut += std::max<size_t>(1, bytes.size() / 23)) {
      attempt(bytes.substr(0, cut));
    }
    for (int k = 0; k < 8; ++k) {
      std::string b = bytes;
      for (int j = 0; j < 4; ++j) b[rng() % b.size()] = static_cast<char>(rng());
      attempt(b);
    }
  }
  EXPECT_GT(refused, 100);
}

// ------------------------------------------------------------------------------ AVIF and HEIF

struct Rgba {
  int w, h;
  std::vector<uint8_t> px;  // RGBA
};

[[maybe_unused]] Rgba test_picture(int w, int h, bool alpha) {
  Rgba p{w, h, std::vector<uint8_t>(size_t(w) * h * 4)};
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      uint8_t* o = &p.px[(size_t(y) * w + x) * 4];
      o[0] = uint8_t(x * 255 / (w - 1));
      o[1] = uint8_t(y * 255 / (h - 1));
      o[2] = uint8_t(((x / 8 + y / 8) % 2) * 180 + 40);
      o[3] = alpha ? uint8_t(x < w / 4 ? 0 : (x * 255 / (w - 1))) : 255;
    }
  }
  return p;
}

// What the engine makes of these pixels as a PNG (verified against Pillow by ImageDecode.*).
// (These helpers serve the AVIF and HEIF tests: unused in a build without both libraries.)
[[maybe_unused]] Image via_png(const Rgba& p, const test::TempDir& dir) {
  write_png(dir / "ref.png", p.w, p.h, 4, p.px.data());
  return load_image_file(dir / "ref.png");
}

[[maybe_unused]] double mean_abs_diff(const Image& a, const Image& b) {
  if (a.rgb.size() != b.rgb.size()) return 1e9;
  double s = 0;
  for (size_t i = 0; i < a.rgb.size(); ++i) s += std::abs(int(a.rgb[i]) - int(b.rgb[i]));
  return s / double(a.rgb.size());
}

#if SMOLVLM_HAVE_AVIF
// Encodes with libavif; lossless (identity matrix, 4:4:4, quantizer 0) unless `lossy`. Empty
// when this libavif has no encoder.
std::string encode_avif(const Rgba& p, bool lossy) {
  if (!avifCodecName(AVIF_CODEC_CHOICE_AUTO, AVIF_CODEC_FLAG_CAN_ENCODE)) return {};
  avifImage* image = avifImageCreate(uint32_t(p.w), uint32_t(p.h), 8,
                                     lossy ? AVIF_PIXEL_FORMAT_YUV420 : AVIF_PIXEL_FORMAT_YUV444);
  image->yuvRange = AVIF_RANGE_FULL;
  if (!lossy) image->matrixCoefficients = AVIF_MATRIX_COEFFICIENTS_IDENTITY;
  avifRGBImage rgb;
  avifRGBImageSetDefaults(&rgb, image);
  rgb.format = AVIF_RGB_FORMAT_RGBA;
  rgb.depth = 8;
  rgb.pixels = const_cast<uint8_t*>(p.px.data());
  rgb.rowBytes = uint32_t(p.w) * 4;
  EXPECT_EQ(avifImageRGBToYUV(image, &rgb), AVIF_RESULT_OK);
  avifEncoder* enc = avifEncoderCreate();
  enc->speed = AVIF_SPEED_FASTEST;
  const int q = lossy ? 10 : AVIF_QUANTIZER_LOSSLESS;
  enc->minQuantizer = enc->maxQuantizer = q;
  enc->minQuantizerAlpha = enc->maxQuantizerAlpha = AVIF_QUANTIZER_LOSSLESS;
  avifRWData out = AVIF_DATA_EMPTY;
  const avifResult r = avifEncoderWrite(enc, image, &out);
  EXPECT_EQ(r, AVIF_RESULT_OK) << avifResultToString(r);
  std::string bytes(reinterpret_cast<const char*>(out.data), out.size);
  avifRWDataFree(&out);
  avifEncoderDestroy(enc);
  avifImageDestroy(image);
  return bytes;
}
#endif

TEST(PictureFormats, AvifAsLibavifDecodesIt) {
#if !SMOLVLM_HAVE_AVIF
  GTEST_SKIP() << "built without libavif";
#else
  test::TempDir dir;
  for (const bool alpha : {false, true}) {
    const Rgba p = test_picture(40, 30, alpha);
    const std::string bytes = encode_avif(p, false);
    if (bytes.empty()) GTEST_SKIP() << "this libavif cannot encode";
    ASSERT_STREQ(picture_format(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
                 "AVIF");
    write_all(dir / "picture.avif", bytes);
    const Image got = load_image_file(dir / "picture.avif");
    // Lossless: the pixels themselves (alpha composited over white, as a PNG of them gives).
    EXPECT_EQ(got.rgb, via_png(p, dir).rgb) << "alpha " << alpha;
  }
  const Rgba p = test_picture(40, 30, false);
  write_all(dir / "lossy.avif", encode_avif(p, true));
  EXPECT_LT(mean_abs_diff(load_image_file(dir / "lossy.avif"), via_png(p, dir)), 8.0);
#endif
}

#if SMOLVLM_HAVE_HEIF
}  // namespace
}  // namespace smolvlm

namespace smolvlm {
namespace {

heif_error write_to_string(heif_context*, const void* data, size_t size, void* user) {
  static_cast<std::string*>(user)->append(static_cast<const char*>(data), size);
  return heif_error{heif_error_Ok, heif_suberror_Unspecified, "ok"};
}

// Encodes with libheif's HEVC encoder (x265); empty when there is none.
std::string encode_heic(const Rgba& p, bool alpha) {
  heif_context* ctx = heif_context_alloc();
  heif_encoder* enc = nullptr;
  if (heif_context_get_encoder_for_format(ctx, heif_compression_HEVC, &enc).code != heif_error_Ok) {
    heif_context_free(ctx);
    return {};
  }
  heif_encoder_set_lossy_quality(enc, 90);
  heif_image* img = nullptr;
  heif_image_create(p.w, p.h, heif_colorspace_RGB,
                    alpha ? heif_chroma_interleaved_RGBA : heif_chroma_interleaved_RGB, &img);
  heif_image_add_plane(img, heif_channel_interleaved, p.w, p.h, 8);
  int stride = 0;
  uint8_t* dst = heif_image_get_plane(img, heif_channel_interleaved, &stride);
  const int ch = alpha ? 4 : 3;
  for (int y = 0; y < p.h; ++y) {
    for (int x = 0; x < p.w; ++x) {
      std::memcpy(dst + size_t(y) * stride + size_t(x) * ch, &p.px[(size_t(y) * p.w + x) * 4], ch);
    }
  }
  EXPECT_EQ(heif_context_encode_image(ctx, img, enc, nullptr, nullptr).code, heif_error_Ok);
  std::string bytes;
  heif_writer writer{};
  writer.writer_api_version = 1;
  writer.write = write_to_string;
  EXPECT_EQ(heif_context_write(ctx, &writer, &bytes).code, heif_error_Ok);
  heif_image_release(img);
  heif_encoder_release(enc);
  heif_context_free(ctx);
  return bytes;
}
#endif

TEST(PictureFormats, HeicAsLibheifDecodesIt) {
#if !SMOLVLM_HAVE_HEIF
  GTEST_SKIP() << "built without libheif";
#else
  test::TempDir dir;
  for (const bool alpha : {false, true}) {
    const Rgba p = test_picture(48, 32, alpha);
    const std::string bytes = encode_heic(p, alpha);
    if (bytes.empty()) GTEST_SKIP() << "this libheif has no HEVC encoder";
    ASSERT_STREQ(picture_format(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
                 "HEIF");
    write_all(dir / "picture.heic", bytes);
    const Image got = load_image_file(dir / "picture.heic");
    ASSERT_EQ(got.width, p.w);
    ASSERT_EQ(got.height, p.h);
    // Lossy: near the pixels; the transparent quarter is white.
    EXPECT_LT(mean_abs_diff(got, via_png(p, dir)), 6.0) << "alpha " << alpha;
    if (alpha) {
      EXPECT_EQ(got.pixel(2, 2)[0], 255);
      EXPECT_EQ(got.pixel(2, 2)[2], 255);
    }
  }
#endif
}

// ------------------------------------------------------------------------------ pixel limit

// A PNG whose header says w x h, with a small IDAT after it: refused from the header.
std::string png_header_only(uint32_t w, uint32_t h) {
  std::string s = "\x89PNG\r\n\x1a\n";
  auto be32 = [&](uint32_t v) {
    for (int i = 3; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 255));
  };
  be32(13);
  s += "IHDR";
  be32(w);
  be32(h);
  s += std::string("\x08\x02\x00\x00\x00", 5);
  be32(0);                            // CRC (never reached)
  s += std::string(256 << 10, '\0');  // about the size of the 254 KB bomb of the issue
  return s;
}

TEST(PictureLimit, PillowsDecompressionBombRuleFromTheHeader) {
  ASSERT_EQ(max_picture_pixels(), kDefaultMaxPicturePixels);
  ASSERT_EQ(kDefaultMaxPicturePixels, 178956970);  // Image.MAX_IMAGE_PIXELS * 2 (Pillow 9.4)
  // 16384 x 16384: 2^28 pixels, within the hard limit but over Pillow's.
  const std::string bomb = png_header_only(16384, 16384);
  const auto t0 = std::chrono::steady_clock::now();
  try {
    decode_image(reinterpret_cast<const uint8_t*>(bomb.data()), bomb.size(), "bomb.png");
    ADD_FAILURE() << "the 16384x16384 PNG was not refused";
  } catch (const Error& e) {
    const std::string m = e.what();
    std::printf("  %s\n", m.c_str());
    EXPECT_NE(m.find("bomb.png"), std::string::npos);
    EXPECT_NE(m.find("268435456 pixels"), std::string::npos) << m;
    EXPECT_NE(m.find("178956970"), std::string::npos) << m;
    EXPECT_NE(m.find("--max-picture-pixels"), std::string::npos) << m;
  }
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(ms, 50.0);
  // Just at the limit: not refused for its size (it fails later: the data is not there).
  const std::string at = png_header_only(178956970 / 10000, 10000);  // 17895 x 10000
  try {
    decode_image(reinterpret_cast<const uint8_t*>(at.data()), at.size(), "at.png");
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find("178956970"), std::string::npos) << e.what();
  }
}

TEST(PictureLimit, EveryFormatChecksItsHeaderAndTheLimitMoves) {
  NEED_PILLOW_FORMATS();
  for (const char* suffix : {".webp", ".gif", ".bmp", ".tif", ".rgb24.bmp"}) {
    const std::string path = first_with_suffix(set, suffix);
    if (path.empty()) continue;
    const Image im = load_image_file(path);
    const int64_t pixels = int64_t(im.width) * im.height;
    set_max_picture_pixels(pixels - 1);
    try {
      load_image_file(path);
      ADD_FAILURE() << path << " was not refused over the limit";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("over the limit of " + std::to_string(pixels - 1)),
                std::string::npos)
          << e.what();
    }
    set_max_picture_pixels(pixels);
    EXPECT_NO_THROW(load_image_file(path));
    set_max_picture_pixels(kDefaultMaxPicturePixels);
  }
  EXPECT_THROW(set_max_picture_pixels(0), Error);
  EXPECT_THROW(set_max_picture_pixels(kMaxPicturePixelsCeiling + 1), Error);
  EXPECT_EQ(max_picture_pixels(), kDefaultMaxPicturePixels);
}

TEST(PictureLimit, CommandLineFlag) {
  test::TempDir dir;
  write_all(dir / "bomb.png", png_header_only(16384, 16384));
  const test::CliResult r = test::run_cli(
      {"ask", "-m", test::tiny_model(), "-i", dir / "bomb.png", "-p", "What is it?", "-n", "2"});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("178956970"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_LT(r.peak_rss_kb, 400 * 1024) << "peak RSS";
  // A lower limit refuses a small picture; a bad value is a usage error.
  std::vector<uint8_t> px(20 * 10 * 3, 128);
  write_png(dir / "small.png", 20, 10, 3, px.data());
  const test::CliResult low =
      test::run_cli({"ask", "-m", test::tiny_model(), "--max-picture-pixels", "199", "-i",
                     dir / "small.png", "-p", "What is it?", "-n", "2"});
  EXPECT_EQ(low.status, 1) << low.err;
  EXPECT_NE(low.err.find("over the limit of 199"), std::string::npos) << low.err;
  const test::CliResult ok =
      test::run_cli({"ask", "-m", test::tiny_model(), "--max-picture-pixels", "200", "--no-split",
                     "-i", dir / "small.png", "-p", "What is it?", "-n", "2"});
  EXPECT_EQ(ok.status, 0) << ok.err;
  const test::CliResult bad = test::run_cli(
      {"ask", "-m", test::tiny_model(), "--max-picture-pixels", "0", "-p", "Hi", "-n", "2"});
  EXPECT_EQ(bad.status, 2) << bad.err;
}

// ------------------------------------------------------------------- through the tiny model

// Greedy ids for one picture through the tiny model; the golden for a new format is the same
// decoded pixels as a PNG (PNG is verified against HF by the golden suites).
std::vector<int32_t> answer_ids(Engine& engine, const std::string& picture) {
  GenerationOptions gen;
  gen.max_new_tokens = 6;
  gen.split_images = false;  // one tile a picture: the decoding is what is tested
  const Result r = engine.generate(
      {{"user", {Content::image_file(picture), Content::text("Describe the image.")}}}, gen);
  return r.tokens;
}

TEST(PictureFormats, TinyModelAnswersEachFormatAsItsPng) {
  test::TempDir dir;
  // Each picture with the pixels it must decode to: Pillow's for the formats Pillow reads, the
  // encoded pixels for a lossless AVIF, libheif's own decoding for HEIC (lossy, no other
  // reference).
  std::vector<std::pair<std::string, Image>> cases;
  const PillowSet& set = pillow_set();
  if (set.skip.empty() && SMOLVLM_HAVE_WEBP && SMOLVLM_HAVE_GIF && SMOLVLM_HAVE_TIFF) {
    for (const auto& c : set.manifest) {
      const std::string f = c["file"];
      if (f != "alpha_lossy.webp" && f != "anim.gif" && f != "rle8.bmp" &&
          f != "RGBA_tiff_lzw.tif") {
        continue;
      }
      const std::string px = read_all(*set.dir / (f + ".rgb"));
      cases.push_back({*set.dir / f, Image{c["w"].get<int>(), c["h"].get<int>(),
                                           std::vector<uint8_t>(px.begin(), px.end())}});
    }
  }
#if SMOLVLM_HAVE_AVIF
  const Rgba avif_px = test_picture(40, 30, true);
  const std::string avif = encode_avif(avif_px, false);
  if (!avif.empty()) {
    write_all(dir / "p.avif", avif);
    cases.push_back({dir / "p.avif", via_png(avif_px, dir)});
  }
#endif
#if SMOLVLM_HAVE_HEIF
  const std::string heic = encode_heic(test_picture(48, 32, false), false);
  if (!heic.empty()) {
    write_all(dir / "p.heic", heic);
    cases.push_back({dir / "p.heic", load_image_file(dir / "p.heic")});
  }
#endif
  if (cases.empty()) GTEST_SKIP() << "no picture of a new format could be made";
  auto engine = Engine::load(test::tiny_model());
  for (const auto& [path, want] : cases) {
    SCOPED_TRACE(path);
    write_png(dir / "same.png", want.width, want.height, 3, want.rgb.data());
    const std::vector<int32_t> ids = answer_ids(*engine, path);
    EXPECT_EQ(ids.size(), 6u);
    EXPECT_EQ(ids, answer_ids(*engine, dir / "same.png"));
  }
  std::printf("  %zu formats answered as their PNGs\n", cases.size());
}

// The formats through the command line: ask -i, --messages and chat's /image answer as the same
// pixels as PNGs do.
TEST(PictureFormats, CommandLineAskMessagesAndChat) {
  NEED_PILLOW_FORMATS();
  test::TempDir dir;
  std::vector<std::string> originals, pngs;
  for (const char* f : {"lossless.webp", "transparent.gif", "pal4.bmp", "multipage.tif"}) {
    originals.push_back(*set.dir / f);
    const Image want = load_image_file(originals.back());
    pngs.push_back(dir / (std::string(f) + ".png"));
    write_png(pngs.back(), want.width, want.height, 3, want.rgb.data());
  }
  auto ask = [&](const std::vector<std::string>& pictures) {
    std::vector<std::string> args = {"ask", "-m", test::tiny_model(), "-p",    "Compare them.",
                                     "-n",  "6",  "--no-split",       "--json"};
    for (const auto& p : pictures) {
      args.push_back("-i");
      args.push_back(p);
    }
    const test::CliResult r = test::run_cli(args);
    EXPECT_EQ(r.status, 0) << r.err;
    return json::parse(r.out.empty() ? "{}" : r.out).value("tokens", json::array());
  };
  const json ids = ask(originals);
  EXPECT_EQ(ids.size(), 6u);
  EXPECT_EQ(ids, ask(pngs));

  auto messages = [&](const std::vector<std::string>& pictures) {
    json content = json::array();
    for (const auto& p : pictures) content.push_back({{"type", "image"}, {"path", p}});
    content.push_back({{"type", "text"}, {"text", "Compare them."}});
    write_all(dir / "chat.json", json::array({{{"role", "user"}, {"content", content}}}).dump());
    const test::CliResult r = test::run_cli({"ask", "-m", test::tiny_model(), "--messages",
                                             dir / "chat.json", "-n", "6", "--no-split", "--json"});
    EXPECT_EQ(r.status, 0) << r.err;
    return json::parse(r.out.empty() ? "{}" : r.out).value("tokens", json::array());
  };
  EXPECT_EQ(messages(originals), ids);

  auto chat = [&](const std::string& picture) {
    const test::CliResult r =
        test::run_cli({"chat", "-m", test::tiny_model(), "-n", "6", "--no-split"},
                      "/image " + picture + "\nWhat is it?\nexit\n");
    EXPECT_EQ(r.status, 0) << r.err;
    return r.out;
  };
  EXPECT_EQ(chat(originals[3]), chat(pngs[3])) << originals[3];
}

}  // namespace
}  // namespace smolvlm
