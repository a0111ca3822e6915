// Image decoding and Pillow-exact resizing, against vectors made with Pillow 9.4 by
// tools/make_image_vectors.py (tests/fixtures/images/).
#include <gtest/gtest.h>
#include <png.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

// clang-format off
#include <cstdio>  // jpeglib.h needs FILE and size_t declared before it
#include <jpeglib.h>
// clang-format on

#include "smolvlm/error.h"
#include "test_support.h"
#include "vision/image.h"
#include "vision/resize.h"

namespace smolvlm {
namespace {

using nlohmann::json;

std::string images_dir() { return test::fixtures() + "/images"; }

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << path;
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)),
                              std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

json read_json(const std::string& path) { return json::parse(read_text_file(path)); }

std::string fnv64(const std::vector<uint8_t>& data) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint8_t b : data) {
    h ^= b;
    h *= 0x100000001b3ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::vector<uint8_t> from_hex(const std::string& hex) {
  std::vector<uint8_t> out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  }
  return out;
}

// The synthetic sources of tools/make_image_vectors.py (make_source there).
struct Lcg {
  uint32_t x;
  uint8_t byte() {
    x = x * 1664525u + 1013904223u;
    return static_cast<uint8_t>(x >> 24);
  }
};

Image make_source(const std::string& kind, int w, int h, int seed) {
  Image im;
  im.width = w;
  im.height = h;
  im.rgb.resize(static_cast<size_t>(w) * h * 3);
  Lcg rng{static_cast<uint32_t>(seed)};
  if (kind == "noise") {
    for (auto& v : im.rgb) v = rng.byte();
  } else if (kind == "blocks") {
    const int bw = (w + 2) / 3, bh = (h + 2) / 3;
    std::vector<uint8_t> cols(static_cast<size_t>(bw) * bh * 3);
    for (auto& v : cols) v = rng.byte();
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) {
        for (int c = 0; c < 3; ++c) {
          im.pixel(x, y)[c] = cols[(static_cast<size_t>(y / 3) * bw + x / 3) * 3 + c];
        }
      }
    }
  } else if (kind == "gradient") {
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) {
        uint8_t* p = im.pixel(x, y);
        p[0] = static_cast<uint8_t>((x * 255) / std::max(w - 1, 1));
        p[1] = static_cast<uint8_t>((y * 255) / std::max(h - 1, 1));
        p[2] = static_cast<uint8_t>(((x + y) * 7 + seed) & 255);
      }
    }
  } else {
    ADD_FAILURE() << "unknown source kind " << kind;
  }
  return im;
}

// --------------------------------------------------------------------------------------- resize

void check_resize_cases(const std::string& filter) {
  const json cases = read_json(images_dir() + "/resize_cases.json");
  const std::vector<uint8_t> blob = read_bytes(images_dir() + "/resize_expected.bin");
  int n_raw = 0, n_hash = 0, max_diff = 0;
  size_t n_diff = 0;
  for (const auto& c : cases["cases"]) {
    if (c["filter"] != filter) continue;
    const int sw = c["src"][0], sh = c["src"][1], dw = c["dst"][0], dh = c["dst"][1];
    SCOPED_TRACE(filter + " " + c["kind"].get<std::string>() + " " + std::to_string(sw) + "x" +
                 std::to_string(sh) + " -> " + std::to_string(dw) + "x" + std::to_string(dh));
    const Image src = make_source(c["kind"], sw, sh, c["seed"]);
    const Image out =
        filter == "lanczos" ? resize_lanczos(src, dw, dh) : resize_bicubic(src, dw, dh);
    ASSERT_EQ(out.width, dw);
    ASSERT_EQ(out.height, dh);
    ASSERT_EQ(out.rgb.size(), static_cast<size_t>(dw) * dh * 3);
    if (c.contains("fnv64")) {
      ++n_hash;
      EXPECT_EQ(fnv64(out.rgb), c["fnv64"].get<std::string>());
    } else {
      ++n_raw;
      const size_t off = c["offset"], n = c["nbytes"];
      ASSERT_LE(off + n, blob.size());
      ASSERT_EQ(n, out.rgb.size());
      size_t diffs = 0;
      for (size_t i = 0; i < n; ++i) {
        const int d = std::abs(static_cast<int>(out.rgb[i]) - blob[off + i]);
        if (d != 0) ++diffs;
        max_diff = std::max(max_diff, d);
      }
      n_diff += diffs;
      EXPECT_EQ(diffs, 0u);
    }
  }
  EXPECT_GT(n_raw, 10);
  EXPECT_GT(n_hash, 3);
  std::printf("[ %s ] %d raw cases (max abs diff %d, %zu values off), %d hashed cases\n",
              filter.c_str(), n_raw, max_diff, n_diff, n_hash);
}

TEST(LanczosResize, MatchesPillowBitExact) { check_resize_cases("lanczos"); }
TEST(BicubicResize, MatchesPillowBitExact) { check_resize_cases("bicubic"); }

TEST(LanczosResize, SameSizeIsACopy) {
  const Image src = make_source("noise", 13, 7, 99);
  const Image out = resize_lanczos(src, 13, 7);
  EXPECT_EQ(out.width, 13);
  EXPECT_EQ(out.height, 7);
  EXPECT_EQ(out.rgb, src.rgb);
  EXPECT_EQ(resize_bicubic(src, 13, 7).rgb, src.rgb);
}

TEST(LanczosResize, ConstantImageStaysConstant) {
  Image src;
  src.width = 31;
  src.height = 9;
  src.rgb.assign(31 * 9 * 3, 0);
  for (size_t i = 0; i < src.rgb.size(); i += 3) {
    src.rgb[i] = 200;
    src.rgb[i + 1] = 0;
    src.rgb[i + 2] = 255;
  }
  for (auto [w, h] : {std::pair{64, 3}, std::pair{5, 40}, std::pair{1, 1}, std::pair{200, 100}}) {
    for (const Image& out : {resize_lanczos(src, w, h), resize_bicubic(src, w, h)}) {
      for (size_t i = 0; i < out.rgb.size(); i += 3) {
        ASSERT_EQ(out.rgb[i], 200);
        ASSERT_EQ(out.rgb[i + 1], 0);
        ASSERT_EQ(out.rgb[i + 2], 255);
      }
    }
  }
}

TEST(LanczosResize, RejectsBadSizes) {
  const Image src = make_source("noise", 4, 4, 1);
  EXPECT_THROW(resize_lanczos(src, 0, 4), Error);
  EXPECT_THROW(resize_lanczos(src, 4, -1), Error);
  EXPECT_THROW(resize_bicubic(src, 40000, 4), Error);
  EXPECT_THROW(resize_lanczos(Image{}, 4, 4), Error);
  Image bad = src;
  bad.rgb.pop_back();
  EXPECT_THROW(resize_bicubic(bad, 2, 2), Error);
}

// -------------------------------------------------------------------------------------- decoding

TEST(ImageDecode, MatchesPillow) {
  const json cases = read_json(images_dir() + "/decode_cases.json");
  int n = 0;
  for (const auto& c : cases["cases"]) {
    const std::string file = c["file"];
    SCOPED_TRACE(file + " (" + c["note"].get<std::string>() + ", PIL mode " +
                 c["pil_mode"].get<std::string>() + ")");
    Image im;
    ASSERT_NO_THROW(im = load_image_file(images_dir() + "/" + file));
    ASSERT_EQ(im.width, c["w"].get<int>());
    ASSERT_EQ(im.height, c["h"].get<int>());
    ASSERT_EQ(im.rgb.size(), static_cast<size_t>(im.width) * im.height * 3);
    if (c.contains("rgb_hex")) {
      const std::vector<uint8_t> want = from_hex(c["rgb_hex"]);
      ASSERT_EQ(want.size(), im.rgb.size());
      size_t diffs = 0;
      int max_diff = 0;
      for (size_t i = 0; i < want.size(); ++i) {
        const int d = std::abs(static_cast<int>(im.rgb[i]) - want[i]);
        diffs += d != 0;
        max_diff = std::max(max_diff, d);
      }
      EXPECT_EQ(diffs, 0u) << "max abs diff " << max_diff;
    } else {
      EXPECT_EQ(fnv64(im.rgb), c["fnv64"].get<std::string>());
    }
    ++n;
  }
  EXPECT_GE(n, 40);
}

TEST(ImageDecode, FromMemoryEqualsFromFile) {
  const std::string path = images_dir() + "/decode/j420.jpg";
  const std::vector<uint8_t> bytes = read_bytes(path);
  const Image a = load_image_file(path);
  const Image b = decode_image(bytes.data(), bytes.size(), "mem.jpg");
  EXPECT_EQ(a.width, b.width);
  EXPECT_EQ(a.rgb, b.rgb);
}

TEST(ImageDecode, FormatChosenByContentNotName) {
  test::TempDir dir;
  write_bytes(dir / "photo.png", read_bytes(images_dir() + "/decode/j444.jpg"));
  write_bytes(dir / "picture.jpg", read_bytes(images_dir() + "/decode/rgb8.png"));
  EXPECT_EQ(load_image_file(dir / "photo.png").rgb,
            load_image_file(images_dir() + "/decode/j444.jpg").rgb);
  EXPECT_EQ(load_image_file(dir / "picture.jpg").rgb,
            load_image_file(images_dir() + "/decode/rgb8.png").rgb);
}

TEST(ImageDecode, JpegWithoutFinalEoiIsRejectedLikePillow) {
  // Pillow 9.4 reports "image file is truncated" even when only the EOI marker is missing.
  const std::vector<uint8_t> bytes = read_bytes(images_dir() + "/decode/j420_big.jpg");
  ASSERT_EQ(bytes[bytes.size() - 2], 0xff);
  ASSERT_EQ(bytes[bytes.size() - 1], 0xd9);
  EXPECT_NO_THROW(decode_image(bytes.data(), bytes.size(), "full"));
  EXPECT_THROW(decode_image(bytes.data(), bytes.size() - 2, "cut"), Error);
}

// ---------------------------------------------------------------------------------------- errors

// Runs `fn`, expects a smolvlm::Error whose message is one line and mentions `name`.
template <typename Fn>
std::string expect_error(Fn&& fn, const std::string& name) {
  try {
    fn();
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_NE(msg.find(name), std::string::npos) << msg;
    return msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a smolvlm::Error: " << e.what();
    return {};
  }
  ADD_FAILURE() << "no error for " << name;
  return {};
}

TEST(ImageErrors, MissingEmptyAndDirectory) {
  test::TempDir dir;
  const std::string missing = dir / "no_such_file.png";
  std::printf("  missing: %s\n",
              expect_error([&] { load_image_file(missing); }, "no_such_file.png").c_str());
  write_bytes(dir / "empty.jpg", {});
  std::printf("  empty: %s\n",
              expect_error([&] { load_image_file(dir / "empty.jpg"); }, "empty.jpg").c_str());
  expect_error([&] { load_image_file(dir.path()); }, dir.path());
  expect_error([&] { decode_image(nullptr, 0, "nothing"); }, "nothing");
}

TEST(ImageErrors, UnsupportedFormats) {
  test::TempDir dir;
  const std::vector<uint8_t> gif = {'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0, 0, 0, ';'};
  write_bytes(dir / "anim.gif", gif);
  const std::string m = expect_error([&] { load_image_file(dir / "anim.gif"); }, "anim.gif");
  EXPECT_NE(m.find("GIF"), std::string::npos) << m;
  std::printf("  gif: %s\n", m.c_str());
  const std::string text = "hello, this is not a picture\nsecond line\n";
  write_bytes(dir / "notes.png", std::vector<uint8_t>(text.begin(), text.end()));
  expect_error([&] { load_image_file(dir / "notes.png"); }, "notes.png");
  const std::vector<uint8_t> bmp = {'B', 'M', 0, 0, 0, 0};
  expect_error([&] { decode_image(bmp.data(), bmp.size(), "x.bmp"); }, "BMP");
  const std::vector<uint8_t> short_jpeg = {0xff, 0xd8};
  expect_error([&] { decode_image(short_jpeg.data(), short_jpeg.size(), "two.jpg"); }, "two.jpg");
}

TEST(ImageErrors, TruncatedJpeg) {
  for (const char* file : {"j420_big.jpg", "j420_big_prog.jpg", "j444.jpg"}) {
    const std::vector<uint8_t> bytes = read_bytes(images_dir() + "/decode/" + file);
    for (size_t cut : {size_t{3}, size_t{20}, size_t{200}, bytes.size() / 2, bytes.size() - 40,
                       bytes.size() - 1}) {
      SCOPED_TRACE(std::string(file) + " cut at " + std::to_string(cut));
      const std::string m =
          expect_error([&] { decode_image(bytes.data(), cut, std::string("cut_") + file); }, file);
      if (cut == bytes.size() / 2 && std::string(file) == "j420_big.jpg") {
        std::printf("  truncated jpeg: %s\n", m.c_str());
      }
    }
  }
}

TEST(ImageErrors, TruncatedPng) {
  for (const char* file : {"rgb8.png", "rgb8_i.png", "rgba_all_alphas.png", "p4.png"}) {
    const std::vector<uint8_t> bytes = read_bytes(images_dir() + "/decode/" + file);
    for (size_t cut : {size_t{8}, size_t{20}, size_t{40}, bytes.size() / 2}) {
      SCOPED_TRACE(std::string(file) + " cut at " + std::to_string(cut));
      const std::string m =
          expect_error([&] { decode_image(bytes.data(), cut, std::string("cut_") + file); }, file);
      if (cut == bytes.size() / 2 && std::string(file) == "rgb8.png") {
        std::printf("  truncated png: %s\n", m.c_str());
      }
    }
  }
}

TEST(ImageErrors, CorruptJpegHeader) {
  const std::vector<uint8_t> good = read_bytes(images_dir() + "/decode/j420.jpg");
  // Find the SOF0 marker: FF C0 len(2) precision(1) height(2) width(2) ncomp(1).
  size_t sof = 0;
  for (size_t i = 2; i + 9 < good.size(); ++i) {
    if (good[i] == 0xff && good[i + 1] == 0xc0) {
      sof = i;
      break;
    }
  }
  ASSERT_GT(sof, 0u);
  auto with = [&](size_t at, uint8_t v) {
    std::vector<uint8_t> b = good;
    b[at] = v;
    return b;
  };
  const std::vector<std::pair<std::string, std::vector<uint8_t>>> bad = {
      {"precision", with(sof + 4, 12)},  // 12-bit samples: not supported by this libjpeg
      {"components", with(sof + 9, 0)},  // no components
      {"marker", with(2, 0x00)},         // garbage instead of the first marker
  };
  for (const auto& entry : bad) {
    const std::string& what = entry.first;
    const std::vector<uint8_t>& bytes = entry.second;
    const std::string m =
        expect_error([&] { decode_image(bytes.data(), bytes.size(), "bad_" + what); }, what);
    std::printf("  corrupt jpeg (%s): %s\n", what.c_str(), m.c_str());
  }
  // Absurd dimensions: 65000 x 65000 in the SOF.
  std::vector<uint8_t> huge = good;
  huge[sof + 5] = huge[sof + 7] = 0xfd;
  huge[sof + 6] = huge[sof + 8] = 0xe8;
  const std::string m =
      expect_error([&] { decode_image(huge.data(), huge.size(), "huge.jpg"); }, "huge.jpg");
  EXPECT_NE(m.find("too large"), std::string::npos) << m;
}

uint32_t crc32(const uint8_t* p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
  }
  return ~c;
}

// A PNG with just a signature and an IHDR (valid CRC) of the given size.
std::vector<uint8_t> png_header(uint32_t w, uint32_t h) {
  std::vector<uint8_t> b = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a,
                            0,    0,   0,   13,  'I',  'H',  'D',  'R'};
  for (uint32_t v : {w, h}) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(v >> s));
  }
  for (uint8_t v : {8, 2, 0, 0, 0}) b.push_back(v);
  const uint32_t crc = crc32(b.data() + 12, 17);
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(crc >> s));
  return b;
}

TEST(ImageErrors, AbsurdPngDimensions) {
  for (auto [w, h] : {std::pair{40000u, 10u}, std::pair{10u, 40000u}, std::pair{20000u, 20000u}}) {
    const std::vector<uint8_t> b = png_header(w, h);
    const std::string m =
        expect_error([&] { decode_image(b.data(), b.size(), "big.png"); }, "big.png");
    EXPECT_NE(m.find("too large"), std::string::npos) << m;
  }
  // A sane header with no image data after it.
  const std::vector<uint8_t> b = png_header(16, 16);
  expect_error([&] { decode_image(b.data(), b.size(), "nodata.png"); }, "nodata.png");
}

TEST(ImageErrors, CorruptPngChunks) {
  std::vector<uint8_t> b = read_bytes(images_dir() + "/decode/rgb8.png");
  b[30] ^= 0x01;  // IHDR's CRC (bytes 29..32) no longer matches
  std::printf(
      "  bad crc: %s\n",
      expect_error([&] { decode_image(b.data(), b.size(), "crc.png"); }, "crc.png").c_str());
}

// Random damage to every fixture: each must decode or throw smolvlm::Error, never crash or leak
// (this matters under ASan/UBSan).
TEST(ImageErrors, RandomCorruptionNeverCrashes) {
  const json cases = read_json(images_dir() + "/decode_cases.json");
  std::mt19937 rng(7);
  int thrown = 0, decoded = 0;
  for (const auto& c : cases["cases"]) {
    const std::vector<uint8_t> good = read_bytes(images_dir() + "/" + c["file"].get<std::string>());
    for (int trial = 0; trial < 12; ++trial) {
      std::vector<uint8_t> b = good;
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int f = 0; f < flips; ++f) {
        b[rng() % b.size()] = static_cast<uint8_t>(rng());
      }
      if (trial % 3 == 2) b.resize(rng() % b.size());
      try {
        const Image im = decode_image(b.data(), b.size(), "fuzz");
        ASSERT_EQ(im.rgb.size(), static_cast<size_t>(im.width) * im.height * 3);
        ++decoded;
      } catch (const Error& e) {
        ASSERT_EQ(std::string(e.what()).find('\n'), std::string::npos);
        ++thrown;
      }
    }
  }
  std::printf("  corrupted files: %d decoded anyway, %d rejected\n", decoded, thrown);
  EXPECT_GT(thrown, 0);
}

// ------------------------------------------------- pictures whose headers claim more than the file

// A flat black picture encoded by libjpeg (baseline or progressive, grey or YCbCr 4:2:0): flat
// pictures are what compresses best, so they are the test of the "too short" bound.
std::vector<uint8_t> black_jpeg(int w, int h, int components, bool progressive) {
  jpeg_compress_struct c{};
  jpeg_error_mgr err{};
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* out = nullptr;
  unsigned long out_size = 0;
  jpeg_mem_dest(&c, &out, &out_size);
  c.image_width = static_cast<JDIMENSION>(w);
  c.image_height = static_cast<JDIMENSION>(h);
  c.input_components = components;
  c.in_color_space = components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 75, TRUE);
  c.optimize_coding = TRUE;  // the shortest Huffman codes libjpeg can make
  if (progressive) jpeg_simple_progression(&c);
  jpeg_start_compress(&c, TRUE);
  std::vector<uint8_t> row(static_cast<size_t>(w) * static_cast<size_t>(components), 0);
  while (c.next_scanline < c.image_height) {
    JSAMPROW rows[1] = {row.data()};
    jpeg_write_scanlines(&c, rows, 1);
  }
  jpeg_finish_compress(&c);
  std::vector<uint8_t> bytes(out, out + out_size);
  jpeg_destroy_compress(&c);
  std::free(out);
  return bytes;
}

// A flat black RGB PNG at zlib's best compression (about 1029:1 for zeros; deflate's limit is
// 1032:1).
std::vector<uint8_t> black_png(int w, int h) {
  std::vector<uint8_t> bytes;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  png_set_write_fn(
      png, &bytes,
      [](png_structp p, png_bytep data, size_t n) {
        auto* b = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(p));
        b->insert(b->end(), data, data + n);
      },
      nullptr);
  png_set_IHDR(png, info, static_cast<png_uint_32>(w), static_cast<png_uint_32>(h), 8,
               PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_set_compression_level(png, 9);
  png_set_filter(png, 0, PNG_FILTER_NONE);
  png_write_info(png, info);
  std::vector<uint8_t> row(static_cast<size_t>(w) * 3, 0);
  for (int y = 0; y < h; ++y) png_write_row(png, row.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return bytes;
}

TEST(ImageHostile, FlatPicturesThatCompressBestStillDecode) {
  // The refusal of files too short for their claimed size must never catch a real picture: the
  // flattest ones, which compress best, decode in full.
  const int w = 2048, h = 2048;  // the bounds scale with the size: no need for 16000x16000
  const std::vector<uint8_t> png = black_png(w, h);
  const Image from_png = decode_image(png.data(), png.size(), "black.png");
  EXPECT_EQ(from_png.width, w);
  EXPECT_EQ(from_png.height, h);
  EXPECT_EQ(from_png.rgb, std::vector<uint8_t>(static_cast<size_t>(w) * h * 3, 0));
  std::printf("  black %dx%d PNG: %zu bytes, %.0f:1\n", w, h, png.size(),
              3.0 * w * h / static_cast<double>(png.size()));
  for (int components : {1, 3}) {
    for (bool progressive : {false, true}) {
      const std::vector<uint8_t> jpg = black_jpeg(w, h, components, progressive);
      SCOPED_TRACE(std::to_string(components) + " components, progressive " +
                   std::to_string(progressive) + ", " + std::to_string(jpg.size()) + " bytes");
      const Image im = decode_image(jpg.data(), jpg.size(), "black.jpg");
      EXPECT_EQ(im.width, w);
      EXPECT_EQ(im.height, h);
      EXPECT_EQ(im.rgb.size(), static_cast<size_t>(w) * h * 3);
      EXPECT_LE(*std::max_element(im.rgb.begin(), im.rgb.end()), 1);  // black, give or take IDCT
      // The bound (a bit per 8x8 block of the largest component) is below what libjpeg needed.
      EXPECT_GT(jpg.size(), static_cast<size_t>(w / 8) * (h / 8) / 8);
    }
  }
}

// `good` with the size in its SOF replaced.
std::vector<uint8_t> with_sof_size(std::vector<uint8_t> b, int w, int h) {
  for (size_t i = 2; i + 9 < b.size();) {
    if (b[i + 1] == 0xc0 || b[i + 1] == 0xc2) {
      b[i + 5] = static_cast<uint8_t>(h >> 8);
      b[i + 6] = static_cast<uint8_t>(h);
      b[i + 7] = static_cast<uint8_t>(w >> 8);
      b[i + 8] = static_cast<uint8_t>(w);
      return b;
    }
    i += 2 + (size_t{b[i + 2]} << 8 | b[i + 3]);
  }
  ADD_FAILURE() << "no SOF marker";
  return b;
}

TEST(ImageHostile, JpegTooShortForItsClaimedSize) {
  for (const char* file : {"j420_big.jpg", "j420_big_prog.jpg", "jgrey.jpg", "jcmyk.jpg"}) {
    SCOPED_TRACE(file);
    const std::vector<uint8_t> b =
        with_sof_size(read_bytes(images_dir() + "/decode/" + file), 13000, 13000);
    const std::string m = expect_error([&] { decode_image(b.data(), b.size(), "big.jpg"); },
                                       "cannot hold the 13000x13000 JPEG picture");
    EXPECT_NE(m.find("big.jpg"), std::string::npos) << m;
  }
}

TEST(ImageHostile, JpegCorruptDataIsAnError) {
  // Twice its real height: the entropy-coded data ends half-way, which libjpeg reports as a
  // warning ("premature end of data segment") before filling the rest with grey.
  for (const char* file : {"j420_big.jpg", "j420_big_prog.jpg"}) {
    SCOPED_TRACE(file);
    const std::vector<uint8_t> b =
        with_sof_size(read_bytes(images_dir() + "/decode/" + file), 333, 502);
    expect_error([&] { decode_image(b.data(), b.size(), "tall.jpg"); },
                 "premature end of data segment");
  }
}

TEST(ImageHostile, PngTooShortForItsClaimedSize) {
  // 13000x13000 RGB (within the pixel limit) with an IDAT of a few bytes: libpng would fail only
  // after the first row.
  std::vector<uint8_t> b = png_header(13000, 13000);
  const std::vector<uint8_t> idat = {0,    0,    0, 9, 'I', 'D', 'A', 'T', 0x78,
                                     0x9c, 0x63, 0, 0, 0,   1,   0,   1};
  b.insert(b.end(), idat.begin(), idat.end());
  const uint32_t crc = crc32(idat.data() + 4, idat.size() - 4);
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(crc >> s));
  const std::string m = expect_error([&] { decode_image(b.data(), b.size(), "big.png"); },
                                     "cannot hold the 13000x13000 PNG picture");
  std::printf("  %s\n", m.c_str());
}

TEST(ImageHostile, PngChunksAreSkippedOrCapped) {
  // A tEXt chunk claiming 2^31 - 1 bytes in a 93-byte file: refused without allocating it.
  std::vector<uint8_t> b = png_header(1, 1);
  for (const char v : std::string("\x7f\xff\xff\xfftEXt", 8)) b.push_back(static_cast<uint8_t>(v));
  b.resize(b.size() + 48, 'x');
  expect_error([&] { decode_image(b.data(), b.size(), "text.png"); }, "text.png");
  // A picture with a large (1 MiB) zTXt chunk before its pixels still decodes: unused chunks are
  // skipped.
  const std::vector<uint8_t> good = read_bytes(images_dir() + "/decode/rgb8.png");
  std::vector<uint8_t> with_text(good.begin(), good.begin() + 33);  // signature + IHDR
  const uint32_t len = 1 << 20;
  std::vector<uint8_t> chunk = {static_cast<uint8_t>(len >> 24),
                                static_cast<uint8_t>(len >> 16),
                                static_cast<uint8_t>(len >> 8),
                                static_cast<uint8_t>(len),
                                'z',
                                'T',
                                'X',
                                't'};
  chunk.resize(chunk.size() + len, 'q');
  const uint32_t crc = crc32(chunk.data() + 4, chunk.size() - 4);
  for (int s = 24; s >= 0; s -= 8) chunk.push_back(static_cast<uint8_t>(crc >> s));
  with_text.insert(with_text.end(), chunk.begin(), chunk.end());
  with_text.insert(with_text.end(), good.begin() + 33, good.end());
  const Image a = decode_image(good.data(), good.size(), "rgb8.png");
  const Image t = decode_image(with_text.data(), with_text.size(), "rgb8_text.png");
  EXPECT_EQ(a.rgb, t.rgb);
}

TEST(ImageHostile, OnlyRegularFilesAreRead) {
  test::TempDir dir;
  ASSERT_EQ(::mkfifo((dir / "pipe.png").c_str(), 0600), 0);
  expect_error([&] { load_image_file(dir / "pipe.png"); }, "is a FIFO, not a regular file");
  expect_error([&] { load_image_file("/dev/zero"); }, "is a character device");
  expect_error([&] { load_image_file(dir.path()); }, "is a directory");
}

}  // namespace
}  // namespace smolvlm
