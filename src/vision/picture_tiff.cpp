// TIFF through libtiff (every compression it decodes: LZW, Deflate, PackBits, ...), the first
// page, read the way Pillow 9.4 reads it and converted as HF's convert_to_rgb does:
// - grey (MinIsBlack; MinIsWhite inverted) of 1, 2, 4 or 8 bits: scaled to 0..255; 16 bits:
//   Pillow's mode "I;16", whose conversion clips at 255 (as 16-bit grey PNGs);
// - grey + alpha (8 bits) and RGB(A) of 8 or 16 bits: 16-bit samples keep their high byte
//   (Pillow's ";16" raw modes); alpha (unassociated; associated is un-premultiplied first, as
//   Pillow's "RGBa") is composited over white; RGB without alpha as it is;
// - palette (1, 2, 4, 8 bits): the colour map's 16-bit entries divided by 256;
// - CMYK (8 bits): Pillow's cmyk2rgb.
// Planar (separate-plane) files, YCbCr/JPEG-in-TIFF and other sample formats are refused.
#include <smolvlm/image.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "vision/picture_codecs.h"

#if SMOLVLM_HAVE_TIFF
#include <tiffio.h>
#endif

namespace smolvlm::codecs {

#if SMOLVLM_HAVE_TIFF
namespace {

// libtiff may allocate at most this much at once (a strip, a tile, a directory's arrays).
constexpr tmsize_t kMaxTiffAlloc = tmsize_t{256} << 20;

struct MemFile {
  const uint8_t* data;
  size_t size;
  size_t pos = 0;
  std::string error;  // libtiff's first error message
};

tmsize_t mem_read(thandle_t h, void* dst, tmsize_t n) {
  auto* f = static_cast<MemFile*>(h);
  if (n < 0) return -1;
  const size_t left = f->pos < f->size ? f->size - f->pos : 0;
  const size_t k = std::min(static_cast<size_t>(n), left);
  std::memcpy(dst, f->data + f->pos, k);
  f->pos += k;
  return static_cast<tmsize_t>(k);
}
tmsize_t mem_write(thandle_t, void*, tmsize_t) { return -1; }
toff_t mem_seek(thandle_t h, toff_t off, int whence) {
  auto* f = static_cast<MemFile*>(h);
  uint64_t base = 0;
  if (whence == SEEK_CUR) base = f->pos;
  if (whence == SEEK_END) base = f->size;
  const uint64_t to = base + off;
  if (to < base) return static_cast<toff_t>(-1);
  f->pos = static_cast<size_t>(std::min<uint64_t>(to, SIZE_MAX));
  return to;
}
int mem_close(thandle_t) { return 0; }
toff_t mem_size(thandle_t h) { return static_cast<MemFile*>(h)->size; }
int mem_map(thandle_t, void**, toff_t*) { return 0; }
void mem_unmap(thandle_t, void*, toff_t) {}

int on_error(TIFF*, void* user, const char* module, const char* fmt, va_list ap) {
  auto* f = static_cast<MemFile*>(user);
  if (f->error.empty()) {
    char buf[256];
    std::vsnprintf(buf, sizeof(buf), fmt, ap);
    f->error = std::string(module ? module : "libtiff") + ": " + buf;
  }
  return 1;
}
int on_warning(TIFF*, void*, const char*, const char*, va_list) { return 1; }

struct TiffCloser {
  void operator()(TIFF* t) const { TIFFClose(t); }
};
struct OptionsFree {
  void operator()(TIFFOpenOptions* o) const { TIFFOpenOptionsFree(o); }
};

// libtiff hands out 16-bit samples in the machine's byte order, whatever the file's.
uint16_t sample16(const uint8_t* row, size_t i) {
  uint16_t v;
  std::memcpy(&v, row + 2 * i, 2);
  return v;
}

uint8_t mul_div255(int a, int b) {  // Pillow's MULDIV255
  const int t = a * b + 128;
  return static_cast<uint8_t>(((t >> 8) + t) >> 8);
}

}  // namespace

Image decode_tiff(const uint8_t* data, size_t size, const std::string& name) {
  MemFile file{data, size, 0, {}};
  std::unique_ptr<TIFFOpenOptions, OptionsFree> opts(TIFFOpenOptionsAlloc());
  if (!opts) fail(name, "out of memory");
  TIFFOpenOptionsSetMaxSingleMemAlloc(opts.get(), kMaxTiffAlloc);
  TIFFOpenOptionsSetErrorHandlerExtR(opts.get(), on_error, &file);
  TIFFOpenOptionsSetWarningHandlerExtR(opts.get(), on_warning, &file);
  // "m": no memory mapping (our procs read from the buffer).
  std::unique_ptr<TIFF, TiffCloser> tif(TIFFClientOpenExt(name.c_str(), "rm", &file, mem_read,
                                                          mem_write, mem_seek, mem_close, mem_size,
                                                          mem_map, mem_unmap, opts.get()));
  auto tiff_fail = [&](const std::string& what) {
    fail(name, file.error.empty() ? what : what + " (" + file.error + ")");
  };
  if (!tif) tiff_fail("corrupt or truncated TIFF header");
  uint32_t w = 0, h = 0;
  uint16_t bits = 1, spp = 1, photometric = 0, planar = PLANARCONFIG_CONTIG, sample_format = 1;
  if (!TIFFGetField(tif.get(), TIFFTAG_IMAGEWIDTH, &w) ||
      !TIFFGetField(tif.get(), TIFFTAG_IMAGELENGTH, &h)) {
    tiff_fail("the TIFF has no picture size");
  }
  check_size(name, w, h);
  TIFFGetFieldDefaulted(tif.get(), TIFFTAG_BITSPERSAMPLE, &bits);
  TIFFGetFieldDefaulted(tif.get(), TIFFTAG_SAMPLESPERPIXEL, &spp);
  TIFFGetFieldDefaulted(tif.get(), TIFFTAG_PLANARCONFIG, &planar);
  TIFFGetFieldDefaulted(tif.get(), TIFFTAG_SAMPLEFORMAT, &sample_format);
  if (!TIFFGetField(tif.get(), TIFFTAG_PHOTOMETRIC, &photometric)) {
    tiff_fail("the TIFF has no photometric interpretation");
  }
  uint16_t extra_count = 0;
  uint16_t* extra = nullptr;
  TIFFGetField(tif.get(), TIFFTAG_EXTRASAMPLES, &extra_count, &extra);
  const int alpha_kind = extra_count > 0 && extra ? extra[0] : -1;  // 1 associated, 2 not

  const std::string layout = std::to_string(spp) + " samples of " + std::to_string(bits) +
                             " bits, photometric " + std::to_string(photometric);
  auto unsupported = [&] { fail(name, "unsupported TIFF layout (" + layout + ")"); };
  if (sample_format != SAMPLEFORMAT_UINT) unsupported();
  if (planar != PLANARCONFIG_CONTIG && spp > 1) {
    fail(name, "unsupported TIFF layout (separate colour planes)");
  }
  const bool grey = photometric == PHOTOMETRIC_MINISBLACK || photometric == PHOTOMETRIC_MINISWHITE;
  const bool invert = photometric == PHOTOMETRIC_MINISWHITE;
  bool ok = false;
  if (grey) {
    ok = (spp == 1 && (bits == 1 || bits == 2 || bits == 4 || bits == 8 || bits == 16)) ||
         (spp == 2 && bits == 8 && !invert);
  } else if (photometric == PHOTOMETRIC_RGB) {
    ok = (spp == 3 || spp == 4) && (bits == 8 || bits == 16);
  } else if (photometric == PHOTOMETRIC_PALETTE) {
    ok = spp == 1 && (bits == 1 || bits == 2 || bits == 4 || bits == 8);
  } else if (photometric == PHOTOMETRIC_SEPARATED) {
    ok = spp == 4 && bits == 8;
  }
  if (!ok) unsupported();
  if (invert && bits == 16) unsupported();

  uint8_t pal[256][3];
  for (int i = 0; i < 256; ++i) pal[i][0] = pal[i][1] = pal[i][2] = static_cast<uint8_t>(i);
  if (photometric == PHOTOMETRIC_PALETTE) {
    uint16_t *r = nullptr, *g = nullptr, *b = nullptr;
    if (!TIFFGetField(tif.get(), TIFFTAG_COLORMAP, &r, &g, &b) || !r || !g || !b) {
      tiff_fail("the palette TIFF has no colour map");
    }
    for (int i = 0; i < (1 << bits); ++i) {
      pal[i][0] = static_cast<uint8_t>(r[i] >> 8);
      pal[i][1] = static_cast<uint8_t>(g[i] >> 8);
      pal[i][2] = static_cast<uint8_t>(b[i] >> 8);
    }
  }

  Image out;
  out.width = static_cast<int>(w);
  out.height = static_cast<int>(h);
  out.rgb.resize(static_cast<size_t>(w) * h * 3);
  const int bps = bits == 16 ? 2 : 1;  // bytes per sample (8 and 16 bits)
  const int maxv = (1 << std::min<int>(bits, 8)) - 1;
  // One decoded row (packed as the file has it) to RGB.
  auto convert_row = [&](const uint8_t* in, uint32_t y) {
    uint8_t* o = out.pixel(0, static_cast<int>(y));
    for (uint32_t x = 0; x < w; ++x, o += 3) {
      if (grey && spp == 1) {
        int v;
        if (bits == 16) {
          v = std::min<int>(sample16(in, x), 255);
        } else {
          const uint32_t bit = x * bits;
          const int s = (in[bit >> 3] >> (8 - bits - (bit & 7))) & maxv;
          v = s * 255 / maxv;
          if (invert) v = 255 - v;
        }
        o[0] = o[1] = o[2] = static_cast<uint8_t>(v);
      } else if (grey) {  // grey + alpha, 8 bits
        uint8_t rgba[4] = {in[2 * x], in[2 * x], in[2 * x], in[2 * x + 1]};
        if (alpha_kind == EXTRASAMPLE_ASSOCALPHA) {
          // Pillow's "La" → "LA": v * 255 / a, rounded and clipped (alpha 0 keeps 0).
          const int a = rgba[3];
          const int v = a == 0 ? 0 : std::min(255, (rgba[0] * 255 + a / 2) / a);
          rgba[0] = rgba[1] = rgba[2] = static_cast<uint8_t>(v);
        }
        over_white(rgba, o);
      } else if (photometric == PHOTOMETRIC_RGB) {
        // 16-bit samples keep their high byte.
        uint8_t rgba[4] = {0, 0, 0, 255};
        for (int c = 0; c < spp; ++c) {
          const size_t i = static_cast<size_t>(x) * spp + c;
          rgba[c] = bps == 2 ? static_cast<uint8_t>(sample16(in, i) >> 8) : in[i];
        }
        if (spp == 3) {
          std::memcpy(o, rgba, 3);
        } else {
          if (alpha_kind == EXTRASAMPLE_ASSOCALPHA && rgba[3] != 255) {
            // Pillow's "RGBa" → "RGBA": each channel * 255 / alpha, clipped (alpha 0: 0).
            const int a = rgba[3];
            for (int c = 0; c < 3; ++c) {
              rgba[c] = a == 0 ? 0 : static_cast<uint8_t>(std::min(255, rgba[c] * 255 / a));
            }
          }
          if (alpha_kind == -1 || alpha_kind == EXTRASAMPLE_UNSPECIFIED) {
            std::memcpy(o, rgba, 3);  // Pillow's "RGBX": the fourth sample is not alpha
          } else {
            over_white(rgba, o);
          }
        }
      } else if (photometric == PHOTOMETRIC_PALETTE) {
        const uint32_t bit = x * bits;
        const int i = (in[bit >> 3] >> (8 - bits - (bit & 7))) & maxv;
        std::memcpy(o, pal[i], 3);
      } else {  // CMYK: Pillow's cmyk2rgb
        const uint8_t* p = in + 4 * static_cast<size_t>(x);
        const int nk = 255 - p[3];
        for (int c = 0; c < 3; ++c) o[c] = static_cast<uint8_t>(nk - mul_div255(p[c], nk));
      }
    }
  };

  if (TIFFIsTiled(tif.get())) {
    uint32_t tw = 0, th = 0;
    TIFFGetField(tif.get(), TIFFTAG_TILEWIDTH, &tw);
    TIFFGetField(tif.get(), TIFFTAG_TILELENGTH, &th);
    const tmsize_t tile_bytes = TIFFTileSize(tif.get());
    const tmsize_t tile_row = TIFFTileRowSize(tif.get());
    if (tw == 0 || th == 0 || tile_bytes <= 0 || tile_row <= 0 || th > 65536) {
      tiff_fail("corrupt TIFF tiles");
    }
    std::vector<uint8_t> tile(static_cast<size_t>(tile_bytes));
    const size_t row_bytes = (static_cast<size_t>(w) * spp * bits + 7) / 8;
    std::vector<uint8_t> band(row_bytes * th);
    for (uint32_t y0 = 0; y0 < h; y0 += th) {
      for (uint32_t x0 = 0; x0 < w; x0 += tw) {
        if (TIFFReadTile(tif.get(), tile.data(), x0, y0, 0, 0) < 0) {
          tiff_fail("corrupt or truncated TIFF data");
        }
        // Tiles start on whole bytes; sub-byte pixels in tiles must line up with bytes too.
        const size_t at = static_cast<size_t>(x0) * spp * bits / 8;
        const size_t n = std::min<size_t>(static_cast<size_t>(tile_row), row_bytes - at);
        if ((static_cast<size_t>(x0) * spp * bits) % 8 != 0) unsupported();
        for (uint32_t r = 0; r < th; ++r) {
          std::memcpy(&band[r * row_bytes + at], &tile[r * static_cast<size_t>(tile_row)], n);
        }
      }
      for (uint32_t r = 0; r < th && y0 + r < h; ++r) convert_row(&band[r * row_bytes], y0 + r);
    }
  } else {
    const tmsize_t line = TIFFScanlineSize(tif.get());
    if (line <= 0) tiff_fail("corrupt TIFF strips");
    std::vector<uint8_t> row(static_cast<size_t>(line));
    for (uint32_t y = 0; y < h; ++y) {
      if (TIFFReadScanline(tif.get(), row.data(), y, 0) < 0) {
        tiff_fail("corrupt or truncated TIFF data");
      }
      convert_row(row.data(), y);
    }
  }
  return out;
}

#else

Image decode_tiff(const uint8_t*, size_t, const std::string& name) {
  fail(name, "this build has no TIFF support (libtiff was not found when it was built)");
}

#endif

}  // namespace smolvlm::codecs
