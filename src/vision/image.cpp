// Image decoding: JPEG via libjpeg, PNG via libpng, as PIL decodes them; the other formats are in
// picture_*.cpp (see picture_codecs.h), chosen here by the bytes' magic (picture_format.h).
//
// Decoding reproduces the pixels transformers' SmolVLM processor works on for Image.open(path):
// - RGB images: the decoded pixels as they are. An RGB PNG's tRNS colour key is ignored, because
//   HF's convert_to_rgb returns "RGB" images untouched.
// - Every other PIL mode: convert("RGBA"), alpha-composite over opaque white with Pillow's integer
//   arithmetic, drop the alpha (HF's convert_to_rgb). Opaque pixels come out unchanged.
// - JPEG: libjpeg with its defaults (islow DCT, fancy upsampling), as Pillow uses it. 1 component
//   gives grey, 3 give RGB (libjpeg's own YCbCr to RGB), 4 give CMYK, which Pillow reads as
//   Adobe-inverted ("CMYK;I") and converts with its cmyk2rgb; we do the same. A file cut short,
//   even by just its final EOI marker, is an error (Pillow: "image file is truncated"), and so is
//   entropy-coded data that libjpeg finds corrupt (a segment ending early, a bad Huffman or
//   arithmetic code, lost restart markers): libjpeg would fill the rest with grey and carry on.
//   EXIF orientation is NOT applied (Image.open does not apply it either).
// - PNG: every colour type and bit depth, interlaced or not. 16-bit samples keep their high byte
//   (PIL's ";16B" unpackers), except 16-bit greyscale: PIL opens it as mode "I" (0..65535) and its
//   I to RGB(A) conversion clips at 255, so every sample >= 255 comes out white. We reproduce that
//   (it is what transformers sees), odd as it is. Sub-byte grey is scaled to 0..255; a grey tRNS
//   key is compared, as Pillow does, with the scaled 8-bit value. Palette indices past the end of
//   PLTE map to Pillow's default grey ramp (i, i, i). Gamma and ICC chunks are ignored, as in
//   Pillow. Chunks after the image data are not read (Pillow does not need them either).
//
// Hostile files: a header can claim a picture far larger than the file could hold (a 31 KB JPEG
// or a 74-byte PNG saying 16000x16000). Such a file is refused before any pixel memory is
// allocated when it is provably too short (see jpeg_min_bytes, png_min_bytes: exact lower bounds,
// so no complete picture is refused), and the pixels are allocated row by row as they decode, so
// a file found corrupt half-way has not touched memory for the rest. PNG chunks other than the
// ones decoding needs are skipped unread, and libpng allocates at most kMaxPngChunkBytes for one.
#include "vision/image.h"

// clang-format off
#include <cstdio>  // jpeglib.h needs FILE and size_t declared before it
#include <jpeglib.h>
#include <jerror.h>  // after jpeglib.h: which warnings exist depends on its jconfig.h
// clang-format on
#include <png.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <csetjmp>
#include <cstring>
#include <functional>
#include <memory>
#include <numbers>
#include <string>
#include <vector>

#include "formats/mapped_file.h"
#include "smolvlm/error.h"
#include "vision/picture_codecs.h"
#include "vision/picture_format.h"

namespace smolvlm {

std::string check_image_dims(int64_t w, int64_t h) {
  constexpr int64_t kMaxSide = 32768, kMaxPixels = int64_t{1} << 28;
  if (w <= 0 || h <= 0) {
    return "invalid size " + std::to_string(w) + "x" + std::to_string(h);
  }
  if (w > kMaxSide || h > kMaxSide || w * h > kMaxPixels) {
    return "size " + std::to_string(w) + "x" + std::to_string(h) + " is too large (limit " +
           std::to_string(kMaxSide) + " pixels a side, " + std::to_string(kMaxPixels) +
           " pixels in all)";
  }
  return {};
}

namespace {
std::atomic<int64_t> g_max_picture_pixels{kDefaultMaxPicturePixels};
}  // namespace

void set_max_picture_pixels(int64_t pixels) {
  if (pixels < 1 || pixels > kMaxPicturePixelsCeiling) {
    throw Error("the picture pixel limit must be from 1 to " +
                std::to_string(kMaxPicturePixelsCeiling) + ", not " + std::to_string(pixels));
  }
  g_max_picture_pixels.store(pixels, std::memory_order_relaxed);
}

int64_t max_picture_pixels() { return g_max_picture_pixels.load(std::memory_order_relaxed); }

std::string check_picture_dims(int64_t w, int64_t h) {
  std::string bad = check_image_dims(w, h);
  if (!bad.empty()) return bad;
  const int64_t limit = max_picture_pixels();
  if (w * h > limit) {
    return "the picture is " + std::to_string(w) + "x" + std::to_string(h) + " = " +
           std::to_string(w * h) + " pixels, over the limit of " + std::to_string(limit) +
           " (Pillow's decompression-bomb rule; --max-picture-pixels changes it)";
  }
  return {};
}

namespace codecs {

void fail(const std::string& name, const std::string& why) {
  throw Error("cannot decode image '" + one_line(name) + "': " + one_line(why));
}

void check_size(const std::string& name, int64_t w, int64_t h) {
  const std::string bad = check_picture_dims(w, h);
  if (!bad.empty()) fail(name, bad);
}

void over_white(const uint8_t* rgba, uint8_t* rgb) {
  const uint32_t a = rgba[3];
  if (a == 255) {
    rgb[0] = rgba[0];
    rgb[1] = rgba[1];
    rgb[2] = rgba[2];
    return;
  }
  if (a == 0) {
    rgb[0] = rgb[1] = rgb[2] = 255;
    return;
  }
  // Destination alpha is 255, so the output alpha is 255 and the weights are a/255 and (255-a)/255
  // in units of 1/128 (7 fractional bits, division by 255 via (x + (x >> 8)) >> 8, as Pillow).
  const uint32_t out_a255 = a * 255 + 255 * (255 - a);
  const uint32_t w_src = a * 255 * 255 * 128 / out_a255;
  const uint32_t w_dst = 255 * 128 - w_src;
  for (int c = 0; c < 3; ++c) {
    const uint32_t t = rgba[c] * w_src + 255 * w_dst + (0x80u << 7);
    rgb[c] = static_cast<uint8_t>((((t >> 8) + t) >> 8) >> 7);
  }
}

void rgba_to_rgb_over_white(const uint8_t* rgba, size_t pixels, uint8_t* rgb) {
  for (size_t i = 0; i < pixels; ++i) over_white(rgba + 4 * i, rgb + 3 * i);
}

}  // namespace codecs

namespace {

// The most libpng may allocate for one chunk's data (it skips larger ancillary chunks); far above
// any real PLTE or tRNS, the only ones read.
constexpr size_t kMaxPngChunkBytes = size_t{4} << 20;
// More scans than any encoder writes (progressive JPEGs have about 10); each scan may cost a pass
// over the whole picture, so thousands of tiny ones would take hours.
constexpr int kMaxJpegScans = 1000;

[[noreturn]] void decode_fail(const std::string& name, const std::string& why) {
  codecs::fail(name, why);
}

// The functions that call setjmp build no strings themselves (GCC's -Wclobbered fires on inlined
// std::string internals); they call these instead.
[[gnu::noinline]] bool dims_ok(std::string& reason, int64_t w, int64_t h) {
  reason = check_picture_dims(w, h);
  return reason.empty();
}
[[gnu::noinline]] void set_reason(std::string& reason, const char* what, int number = -1) {
  reason = what;
  if (number >= 0) reason += " " + std::to_string(number);
}
// The refusal of a file shorter than the least its claimed picture needs.
[[gnu::noinline]] void set_too_short(std::string& reason, const char* format, size_t size,
                                     int64_t w, int64_t h, uint64_t least) {
  reason = "the file's " + format_bytes(size) + " cannot hold the " + std::to_string(w) + "x" +
           std::to_string(h) + " " + format + " picture its header claims (that needs at least " +
           format_bytes(least) + "): corrupt or truncated";
}

using codecs::over_white;

// ------------------------------------------------------------------------------------------ JPEG

struct JpegErrorMgr {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  size_t file_size;
};

void jpeg_on_error(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegErrorMgr*>(cinfo->err);
  err->message[0] = '\0';
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// Fewer than one bit for each 8x8 block of an arithmetic-coded picture: possible for a flat
// picture, implausible for one with damage reported. (Huffman-coded files that short were refused
// before decoding: see jpeg_min_bytes.)
bool implausibly_small(j_common_ptr cinfo, size_t file_size) {
  const auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
  return cinfo->is_decompressor && d->arith_code &&
         uint64_t{d->image_width} * d->image_height > uint64_t{512} * file_size;
}

// Warnings about damaged data are errors: libjpeg would fill what it lost with grey and report
// success. Running out of data is one (Pillow reports a truncated file, even when only the final
// EOI marker is missing); so are a segment ending early and bad codes. The other warnings are
// ignored, as Pillow does (extraneous bytes between markers, say, are common and harmless),
// unless the picture is also implausibly large for the file: then the damage is what made it.
void jpeg_on_message(j_common_ptr cinfo, int level) {
  if (level >= 0) return;  // trace messages
  auto* err = reinterpret_cast<JpegErrorMgr*>(cinfo->err);
  const int code = cinfo->err->msg_code;
  if (code == JWRN_JPEG_EOF) {
    std::snprintf(err->message, sizeof(err->message), "truncated JPEG data");
    std::longjmp(err->jump, 1);
  }
  if (code == JWRN_HIT_MARKER || code == JWRN_HUFF_BAD_CODE || code == JWRN_ARITH_BAD_CODE ||
      code == JWRN_MUST_RESYNC || implausibly_small(cinfo, err->file_size)) {
    (*cinfo->err->format_message)(cinfo, err->message);
    std::longjmp(err->jump, 1);
  }
}

void jpeg_on_progress(j_common_ptr cinfo) {
  if (!cinfo->is_decompressor) return;
  if (reinterpret_cast<j_decompress_ptr>(cinfo)->input_scan_number > kMaxJpegScans) {
    auto* err = reinterpret_cast<JpegErrorMgr*>(cinfo->err);
    std::snprintf(err->message, sizeof(err->message),
                  "the JPEG has more than %d scans (encoders write about 10)", kMaxJpegScans);
    std::longjmp(err->jump, 1);
  }
}

// The fewest bytes a complete Huffman-coded JPEG of this size can have: every 8x8 block of a
// component costs at least one bit (its DC code; sequential files spend another on the end of
// block, progressive ones may not), and the full-resolution component has the most blocks.
// Arithmetic coding has no such floor (a flat picture costs almost nothing): 0 there.
uint64_t jpeg_min_bytes(const jpeg_decompress_struct& cinfo) {
  if (cinfo.arith_code) return 0;
  uint64_t blocks = 0;
  for (int c = 0; c < cinfo.num_components; ++c) {
    const jpeg_component_info& comp = cinfo.comp_info[c];
    blocks = std::max(blocks, uint64_t{comp.width_in_blocks} * comp.height_in_blocks);
  }
  return (blocks + 7) / 8;
}

struct JpegJob {
  jpeg_decompress_struct cinfo;
  JpegErrorMgr err;
  jpeg_progress_mgr progress;
  bool created = false;
  const uint8_t* data = nullptr;
  size_t size = 0;
  std::string fail_reason;  // set (instead of a longjmp) for our own checks
  std::vector<uint8_t> row;
  Image out;

  JpegJob() {
    std::memset(&cinfo, 0, sizeof(cinfo));
    std::memset(&err, 0, sizeof(err));
    std::memset(&progress, 0, sizeof(progress));
  }
  ~JpegJob() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
  JpegJob(const JpegJob&) = delete;
  JpegJob& operator=(const JpegJob&) = delete;
};

// The only frames between setjmp and a longjmp are this function's (which owns nothing that needs
// destroying; all state lives in `job`) and libjpeg's C frames.
bool run_jpeg(JpegJob& job) {
  job.cinfo.err = jpeg_std_error(&job.err.pub);
  job.err.pub.error_exit = jpeg_on_error;
  job.err.pub.emit_message = jpeg_on_message;
  job.err.file_size = job.size;
  if (setjmp(job.err.jump)) return false;

  jpeg_create_decompress(&job.cinfo);
  job.created = true;
  job.progress.progress_monitor = jpeg_on_progress;
  job.cinfo.progress = &job.progress;
  jpeg_mem_src(&job.cinfo, job.data, static_cast<unsigned long>(job.size));
  jpeg_read_header(&job.cinfo, TRUE);

  const int64_t w = job.cinfo.image_width;
  const int64_t h = job.cinfo.image_height;
  if (!dims_ok(job.fail_reason, w, h)) return false;
  if (const uint64_t least = jpeg_min_bytes(job.cinfo); job.size < least) {
    set_too_short(job.fail_reason, "JPEG", job.size, w, h, least);
    return false;
  }
  const int comps = job.cinfo.num_components;
  if (comps == 1) {
    job.cinfo.out_color_space = JCS_GRAYSCALE;
  } else if (comps == 3) {
    job.cinfo.out_color_space = JCS_RGB;
  } else if (comps == 4) {
    job.cinfo.out_color_space = JCS_CMYK;
  } else {
    set_reason(job.fail_reason, "unsupported JPEG: number of components", comps);
    return false;
  }
  jpeg_start_decompress(&job.cinfo);
  const int oc = job.cinfo.output_components;
  if ((comps == 1 && oc != 1) || (comps == 3 && oc != 3) || (comps == 4 && oc != 4)) {
    set_reason(job.fail_reason, "unexpected JPEG output layout");
    return false;
  }
  job.out.width = static_cast<int>(w);
  job.out.height = static_cast<int>(h);
  const size_t out_row = static_cast<size_t>(w) * 3;
  job.out.rgb.reserve(out_row * static_cast<size_t>(h));  // address space only: rows come as read
  job.row.resize(static_cast<size_t>(w) * static_cast<size_t>(oc));
  while (job.cinfo.output_scanline < job.cinfo.output_height) {
    const int y = static_cast<int>(job.cinfo.output_scanline);
    job.out.rgb.resize(job.out.rgb.size() + out_row);
    uint8_t* dst = job.out.pixel(0, y);
    JSAMPROW rows[1] = {oc == 3 ? dst : job.row.data()};
    if (jpeg_read_scanlines(&job.cinfo, rows, 1) != 1) {
      set_reason(job.fail_reason, "truncated JPEG data");
      return false;
    }
    if (oc == 1) {
      for (int64_t x = 0; x < w; ++x) dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = job.row[x];
    } else if (oc == 4) {
      // Pillow reads 4-component JPEGs as inverted CMYK ("CMYK;I", Adobe convention), then
      // converts with r = k' - c·k'/255 (k' = 255 - k), the division rounded as (x + (x >> 8))
      // >> 8.
      for (int64_t x = 0; x < w; ++x) {
        const uint8_t* p = &job.row[4 * x];
        const int nk = p[3];  // inverted K = 255 - K
        for (int c = 0; c < 3; ++c) {
          const int cc = 255 - p[c];
          const int t = cc * nk + 128;
          const int v = nk - (((t >> 8) + t) >> 8);
          dst[3 * x + c] = static_cast<uint8_t>(std::clamp(v, 0, 255));
        }
      }
    }
  }
  jpeg_finish_decompress(&job.cinfo);
  return true;
}

Image decode_jpeg(const uint8_t* data, size_t size, const std::string& name) {
  auto job = std::make_unique<JpegJob>();
  job->data = data;
  job->size = size;
  if (!run_jpeg(*job)) {
    decode_fail(name, job->fail_reason.empty() ? std::string(job->err.message) : job->fail_reason);
  }
  return std::move(job->out);
}

// ------------------------------------------------------------------------------------------- PNG

// What the PNG holds, for converting raw rows (after png_set_packing: one sample per byte for
// bit depths below 8; 16-bit samples big-endian).
struct PngLayout {
  int width = 0;
  int color_type = 0;
  int bit_depth = 8;
  int palette_size = 0;
  uint8_t palette[256][4] = {};  // RGBA, Pillow's ramp past PLTE's end, tRNS alphas applied
  bool has_key = false;          // grey tRNS colour key
  int key = 0;
};

struct PngJob {
  png_structp png = nullptr;
  png_infop info = nullptr;
  const uint8_t* data = nullptr;
  size_t size = 0;
  size_t pos = 0;
  std::string message;
  std::string fail_reason;
  // One row, or the whole picture when interlaced: left uninitialised (libpng writes every byte
  // before it is read), so a file found corrupt in an early pass has not touched the rest.
  std::unique_ptr<uint8_t[]> raw;
  std::vector<png_bytep> row_ptrs;  // interlaced only
  std::vector<uint8_t> rgba;        // one converted row
  PngLayout layout;
  Image out;

  PngJob() = default;
  ~PngJob() {
    if (png) png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
  }
  PngJob(const PngJob&) = delete;
  PngJob& operator=(const PngJob&) = delete;
};

void png_on_error(png_structp png, png_const_charp msg) {
  auto* job = static_cast<PngJob*>(png_get_error_ptr(png));
  job->message = msg ? msg : "PNG error";
  png_longjmp(png, 1);
}

void png_on_warning(png_structp, png_const_charp) {}

void png_read_mem(png_structp png, png_bytep dst, size_t n) {
  auto* job = static_cast<PngJob*>(png_get_io_ptr(png));
  if (n > job->size - job->pos) png_error(png, "truncated PNG data");
  std::memcpy(dst, job->data + job->pos, n);
  job->pos += n;
}

// Converts one raw row to RGBA following PIL's mode conversions (see the header comment).
void png_row_to_rgba(const PngLayout& L, const uint8_t* in, uint8_t* out) {
  const int w = L.width;
  const bool b16 = L.bit_depth == 16;
  switch (L.color_type) {
    case PNG_COLOR_TYPE_GRAY: {
      const int maxv = (1 << L.bit_depth) - 1;
      for (int x = 0; x < w; ++x) {
        int v;
        if (b16) {
          v = std::min((in[2 * x] << 8) | in[2 * x + 1], 255);  // PIL "I" → RGB clips
        } else {
          v = L.bit_depth == 8 ? in[x] : in[x] * 255 / maxv;
        }
        uint8_t* o = out + 4 * x;
        o[0] = o[1] = o[2] = static_cast<uint8_t>(v);
        o[3] = (L.has_key && v == L.key) ? 0 : 255;
      }
      break;
    }
    case PNG_COLOR_TYPE_GRAY_ALPHA:
      for (int x = 0; x < w; ++x) {
        uint8_t* o = out + 4 * x;
        const uint8_t g = b16 ? in[4 * x] : in[2 * x];
        o[0] = o[1] = o[2] = g;
        o[3] = b16 ? in[4 * x + 2] : in[2 * x + 1];
      }
      break;
    case PNG_COLOR_TYPE_RGB:
      for (int x = 0; x < w; ++x) {
        uint8_t* o = out + 4 * x;
        for (int c = 0; c < 3; ++c) o[c] = b16 ? in[6 * x + 2 * c] : in[3 * x + c];
        o[3] = 255;
      }
      break;
    case PNG_COLOR_TYPE_RGB_ALPHA:
      for (int x = 0; x < w; ++x) {
        uint8_t* o = out + 4 * x;
        for (int c = 0; c < 4; ++c) o[c] = b16 ? in[8 * x + 2 * c] : in[4 * x + c];
      }
      break;
    case PNG_COLOR_TYPE_PALETTE:
      for (int x = 0; x < w; ++x) std::memcpy(out + 4 * x, L.palette[in[x]], 4);
      break;
    default:
      break;
  }
}

// The fewest bytes a PNG of this size can have: its pixels, packed, come out of a zlib stream
// inside the file, and deflate expands at most 1032-fold (a 258-byte match in two bits).
uint64_t png_min_bytes(uint64_t w, uint64_t h, int bit_depth, int color_type) {
  int samples = 1;
  if (color_type == PNG_COLOR_TYPE_RGB) samples = 3;
  if (color_type == PNG_COLOR_TYPE_GRAY_ALPHA) samples = 2;
  if (color_type == PNG_COLOR_TYPE_RGB_ALPHA) samples = 4;
  const uint64_t pixel_bytes = (w * h * static_cast<uint64_t>(samples * bit_depth) + 7) / 8;
  return pixel_bytes / 1032;
}

bool run_png(PngJob& job) {
  png_structp png = job.png;
  png_infop info = job.info;
  if (setjmp(png_jmpbuf(png))) return false;

  png_set_read_fn(png, &job, png_read_mem);
  png_set_sig_bytes(png, 0);
  png_read_info(png, info);

  png_uint_32 w32 = 0, h32 = 0;
  int bit_depth = 0, color_type = 0, interlace = 0;
  png_get_IHDR(png, info, &w32, &h32, &bit_depth, &color_type, &interlace, nullptr, nullptr);
  if (!dims_ok(job.fail_reason, w32, h32)) return false;
  const int w = static_cast<int>(w32);
  const int h = static_cast<int>(h32);
  if (const uint64_t least = png_min_bytes(w32, h32, bit_depth, color_type); job.size < least) {
    set_too_short(job.fail_reason, "PNG", job.size, w, h, least);
    return false;
  }

  PngLayout& L = job.layout;
  L.width = w;
  L.color_type = color_type;
  L.bit_depth = bit_depth;
  if (color_type == PNG_COLOR_TYPE_PALETTE) {
    for (int i = 0; i < 256; ++i) {
      L.palette[i][0] = L.palette[i][1] = L.palette[i][2] = static_cast<uint8_t>(i);
      L.palette[i][3] = 255;
    }
    png_colorp plte = nullptr;
    int n = 0;
    if (png_get_PLTE(png, info, &plte, &n) & PNG_INFO_PLTE) {
      n = std::clamp(n, 0, 256);
      for (int i = 0; i < n; ++i) {
        L.palette[i][0] = plte[i].red;
        L.palette[i][1] = plte[i].green;
        L.palette[i][2] = plte[i].blue;
      }
    }
    L.palette_size = n;
  }
  {
    png_bytep trans_alpha = nullptr;
    int num_trans = 0;
    png_color_16p trans_color = nullptr;
    if (png_get_tRNS(png, info, &trans_alpha, &num_trans, &trans_color) & PNG_INFO_tRNS) {
      if (color_type == PNG_COLOR_TYPE_PALETTE && trans_alpha) {
        num_trans = std::clamp(num_trans, 0, 256);
        for (int i = 0; i < num_trans; ++i) L.palette[i][3] = trans_alpha[i];
      } else if (color_type == PNG_COLOR_TYPE_GRAY && trans_color) {
        L.has_key = true;
        L.key = trans_color->gray;
      }
      // An RGB colour key is ignored: HF leaves "RGB" images as they are.
    }
  }

  if (bit_depth < 8) png_set_packing(png);
  const int passes = png_set_interlace_handling(png);
  png_read_update_info(png, info);
  const size_t rowbytes = png_get_rowbytes(png, info);
  const int channels = png_get_channels(png, info);
  const size_t expect =
      static_cast<size_t>(w) * static_cast<size_t>(channels) * (bit_depth == 16 ? 2 : 1);
  if (rowbytes != expect) {
    set_reason(job.fail_reason, "unexpected PNG row layout");
    return false;
  }

  job.out.width = w;
  job.out.height = h;
  const size_t out_row = static_cast<size_t>(w) * 3;
  job.out.rgb.reserve(out_row * static_cast<size_t>(h));  // address space only: rows come as read
  job.rgba.resize(static_cast<size_t>(w) * 4);
  auto emit_row = [&](const uint8_t* raw_row, int y) {
    png_row_to_rgba(L, raw_row, job.rgba.data());
    job.out.rgb.resize(job.out.rgb.size() + out_row);
    uint8_t* dst = job.out.pixel(0, y);
    for (int x = 0; x < w; ++x) over_white(&job.rgba[4 * static_cast<size_t>(x)], dst + 3 * x);
  };
  if (passes <= 1) {
    job.raw.reset(new uint8_t[rowbytes]);
    for (int y = 0; y < h; ++y) {
      png_read_row(png, job.raw.get(), nullptr);
      emit_row(job.raw.get(), y);
    }
  } else {
    job.raw.reset(new uint8_t[rowbytes * static_cast<size_t>(h)]);
    job.row_ptrs.resize(static_cast<size_t>(h));
    for (int y = 0; y < h; ++y) job.row_ptrs[y] = job.raw.get() + rowbytes * y;
    png_read_image(png, job.row_ptrs.data());
    for (int y = 0; y < h; ++y) emit_row(job.row_ptrs[y], y);
  }
  // The chunks after the image data are not needed (Pillow stops there as well).
  return true;
}

Image decode_png(const uint8_t* data, size_t size, const std::string& name) {
  // IHDR is the first chunk: check the size before libpng reads further (it would read on to the
  // first IDAT before telling us).
  if (size >= 24 && std::memcmp(data + 12, "IHDR", 4) == 0) {
    auto be32 = [&](size_t at) {
      return (uint32_t{data[at]} << 24) | (uint32_t{data[at + 1]} << 16) |
             (uint32_t{data[at + 2]} << 8) | uint32_t{data[at + 3]};
    };
    codecs::check_size(name, be32(16), be32(20));
  }
  auto job = std::make_unique<PngJob>();
  job->data = data;
  job->size = size;
  job->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, job.get(), png_on_error, png_on_warning);
  if (!job->png) decode_fail(name, "out of memory");
  job->info = png_create_info_struct(job->png);
  if (!job->info) decode_fail(name, "out of memory");
  // The size limits are ours (check_dims, with a clearer message); lift libpng's.
  png_set_user_limits(job->png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
  // Chunks cost memory before they are checked (a tEXt may claim 2 GiB, a zTXt inflate without
  // end): skip every chunk decoding does not use (num_chunks -1: all but IHDR, PLTE, tRNS, IDAT,
  // IEND), and cap what libpng allocates for the rest.
  png_set_keep_unknown_chunks(job->png, PNG_HANDLE_CHUNK_NEVER, nullptr, -1);
  png_set_chunk_malloc_max(job->png, kMaxPngChunkBytes);
  if (!run_png(*job)) {
    decode_fail(name, job->fail_reason.empty() ? job->message : job->fail_reason);
  }
  return std::move(job->out);
}

}  // namespace

Image decode_image(const uint8_t* data, size_t size, const std::string& name_for_errors) {
  if (data == nullptr || size == 0) decode_fail(name_for_errors, "the file is empty");
  const char* format = picture_format(data, size);
  const std::string f = format ? format : "";
  if (f == "JPEG") return decode_jpeg(data, size, name_for_errors);
  if (f == "PNG") return decode_png(data, size, name_for_errors);
  if (f == "GIF") return codecs::decode_gif(data, size, name_for_errors);
  if (f == "WebP") return codecs::decode_webp(data, size, name_for_errors);
  if (f == "BMP") return codecs::decode_bmp(data, size, name_for_errors);
  if (f == "TIFF") return codecs::decode_tiff(data, size, name_for_errors);
  if (f == "AVIF") return codecs::decode_avif(data, size, name_for_errors);
  if (f == "HEIF") return codecs::decode_heif(data, size, name_for_errors);
  decode_fail(name_for_errors, std::string("unrecognised format (") + kPictureFormats + ")");
}

namespace {

// Reads `n` bytes at `offset` of a picture's bytes; false past the end.
using ReadAt = std::function<bool(uint64_t offset, uint8_t* out, size_t n)>;

bool header_size(const ReadAt& read_at, int& width, int& height) {
  uint8_t b[24];
  if (!read_at(0, b, 8)) return false;
  static const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
  auto be = [&](int at, int bytes) {
    uint32_t v = 0;
    for (int k = 0; k < bytes; ++k) v = v << 8 | b[at + k];
    return v;
  };
  if (std::memcmp(b, kPng, 8) == 0) {
    if (!read_at(0, b, 24) || std::memcmp(b + 12, "IHDR", 4) != 0) return false;
    if (be(16, 4) > 0x7fffffffu || be(20, 4) > 0x7fffffffu) return false;
    width = static_cast<int>(be(16, 4));
    height = static_cast<int>(be(20, 4));
    return true;
  }
  if (b[0] != 0xff || b[1] != 0xd8) return false;
  // JPEG: walk the marker segments up to the first SOFn (a bounded number of them: a real file
  // has a few dozen before its frame header).
  uint64_t at = 2;
  for (int segments = 0; segments < 10000; ++segments) {
    if (!read_at(at, b, 4) || b[0] != 0xff) return false;
    const uint8_t marker = b[1];
    if (marker == 0xff) {  // fill byte
      ++at;
      continue;
    }
    const bool standalone = marker == 0x01 || (marker >= 0xd0 && marker <= 0xd7);
    if (standalone) {
      at += 2;
      continue;
    }
    if (marker == 0xd9 || marker == 0xda) return false;  // EOI or SOS before any frame header
    const uint32_t length = be(2, 2);
    if (length < 2) return false;
    const bool sof =
        marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc;
    if (sof) {
      if (length < 7 || !read_at(at + 4, b, 5)) return false;
      height = static_cast<int>(be(1, 2));
      width = static_cast<int>(be(3, 2));
      return true;
    }
    at += 2 + length;
  }
  return false;
}

}  // namespace

bool image_header_size(const uint8_t* data, size_t size, int& width, int& height) {
  if (data == nullptr) return false;
  return header_size(
      [&](uint64_t offset, uint8_t* out, size_t n) {
        if (offset > size || n > size - offset) return false;
        std::memcpy(out, data + offset, n);
        return true;
      },
      width, height);
}

bool image_file_header_size(const std::string& path, int& width, int& height) {
  const InputFile file(path, "image", kMaxImageFileBytes);
  const uint64_t size = file.size();
  return header_size(
      [&](uint64_t offset, uint8_t* out, size_t n) {
        if (offset > size || n > size - offset) return false;
        while (n > 0) {
          const ssize_t got = ::pread(file.fd(), out, n, static_cast<off_t>(offset));
          if (got < 0 && errno == EINTR) continue;
          if (got <= 0) return false;
          out += got;
          n -= static_cast<size_t>(got);
          offset += static_cast<uint64_t>(got);
        }
        return true;
      },
      width, height);
}

Image load_image_file(const std::string& path) {
  const std::string bytes = read_file(path, "image", kMaxImageFileBytes);
  return decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), path);
}

Image Image::from_file(const std::string& path) { return load_image_file(path); }

Image Image::from_bytes(const uint8_t* data, size_t size, const std::string& name) {
  return decode_image(data, size, name);
}

namespace {
Image copy_pixels(int width, int height, const uint8_t* pixels, size_t stride, bool bgr) {
  const std::string bad = check_image_dims(width, height);
  if (!bad.empty()) throw Error("the picture's " + bad);
  if (pixels == nullptr) throw Error("the picture is empty");
  const size_t row = static_cast<size_t>(width) * 3;
  if (stride == 0) stride = row;
  if (stride < row) throw Error("the picture's row stride is shorter than its rows");
  Image out{width, height, std::vector<uint8_t>(row * static_cast<size_t>(height))};
  for (int y = 0; y < height; ++y) {
    const uint8_t* src = pixels + stride * static_cast<size_t>(y);
    uint8_t* dst = out.rgb.data() + row * static_cast<size_t>(y);
    if (!bgr) {
      std::memcpy(dst, src, row);
      continue;
    }
    for (size_t x = 0; x < row; x += 3) {
      dst[x] = src[x + 2];
      dst[x + 1] = src[x + 1];
      dst[x + 2] = src[x];
    }
  }
  return out;
}
}  // namespace

Image Image::from_rgb(int width, int height, const uint8_t* pixels, size_t stride) {
  return copy_pixels(width, height, pixels, stride, false);
}

Image Image::from_bgr(int width, int height, const uint8_t* pixels, size_t stride) {
  return copy_pixels(width, height, pixels, stride, true);
}

}  // namespace smolvlm
