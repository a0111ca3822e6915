// GIF through giflib: the first frame, as Pillow 9.4's GifImagePlugin gives it, then HF's
// convert_to_rgb:
// - the picture is the logical screen, grown to hold the first frame where that frame reaches
//   past it; outside the frame it is the transparent index when the frame has one, else index 0;
// - the frame's own palette, else the global one; a palette that is just the grey ramp
//   (entry i = (i, i, i)) makes Pillow read the picture as "L", which gives the same pixels;
//   indices past the palette's end take Pillow's default grey ramp;
// - the transparent index of the frame's graphic control extension becomes alpha 0, so those
//   pixels come out white (composited over white, as HF converts "P" pictures).
// The later frames are not read.
#include <smolvlm/image.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "vision/picture_codecs.h"

#if SMOLVLM_HAVE_GIF
#include <gif_lib.h>
#endif

namespace smolvlm::codecs {

#if SMOLVLM_HAVE_GIF
namespace {

struct MemReader {
  const uint8_t* data;
  size_t size;
  size_t pos;
};

int read_mem(GifFileType* gif, GifByteType* dst, int n) {
  auto* r = static_cast<MemReader*>(gif->UserData);
  const size_t left = r->size - r->pos;
  const size_t k = n < 0 ? 0 : std::min(static_cast<size_t>(n), left);
  std::memcpy(dst, r->data + r->pos, k);
  r->pos += k;
  return static_cast<int>(k);
}

struct GifCloser {
  void operator()(GifFileType* g) const {
    int err = 0;
    DGifCloseFile(g, &err);
  }
};

// Whether Pillow keeps the palette: any entry other than the grey of its index.
bool palette_needed(const ColorMapObject* map) {
  for (int i = 0; i < map->ColorCount; ++i) {
    const GifColorType& c = map->Colors[i];
    if (!(c.Red == i && c.Green == i && c.Blue == i)) return true;
  }
  return false;
}

}  // namespace

Image decode_gif(const uint8_t* data, size_t size, const std::string& name) {
  MemReader reader{data, size, 0};
  int err = 0;
  std::unique_ptr<GifFileType, GifCloser> gif(DGifOpen(&reader, read_mem, &err));
  auto gif_fail = [&](const char* what) {
    const int code = gif ? gif->Error : err;
    const char* msg = GifErrorString(code);
    fail(name, std::string(what) + " (" + (msg ? msg : "corrupt GIF") + ")");
  };
  if (!gif) gif_fail("not a readable GIF");
  const int screen_w = gif->SWidth, screen_h = gif->SHeight;
  const ColorMapObject* global =
      gif->SColorMap && palette_needed(gif->SColorMap) ? gif->SColorMap : nullptr;
  int transparent = -1;
  for (;;) {
    GifRecordType type;
    if (DGifGetRecordType(gif.get(), &type) == GIF_ERROR) gif_fail("truncated or corrupt GIF");
    if (type == TERMINATE_RECORD_TYPE) fail(name, "the GIF holds no picture");
    if (type == EXTENSION_RECORD_TYPE) {
      int code = 0;
      GifByteType* ext = nullptr;
      if (DGifGetExtension(gif.get(), &code, &ext) == GIF_ERROR) gif_fail("corrupt GIF extension");
      // Pillow reads the first sub-block of a graphic control extension: flags, delay, index.
      if (code == GRAPHICS_EXT_FUNC_CODE && ext && ext[0] >= 4 && (ext[1] & 1)) {
        transparent = ext[4];
      }
      while (ext) {
        if (DGifGetExtensionNext(gif.get(), &ext) == GIF_ERROR) gif_fail("corrupt GIF extension");
      }
      continue;
    }
    if (type != IMAGE_DESC_RECORD_TYPE) continue;
    if (DGifGetImageDesc(gif.get()) == GIF_ERROR) gif_fail("corrupt GIF image descriptor");
    break;
  }
  const GifImageDesc& d = gif->Image;
  const int64_t x0 = d.Left, y0 = d.Top, fw = d.Width, fh = d.Height;
  const int64_t w = std::max<int64_t>(screen_w, x0 + fw), h = std::max<int64_t>(screen_h, y0 + fh);
  check_size(name, w, h);
  const ColorMapObject* palette = global;
  if (d.ColorMap) palette = palette_needed(d.ColorMap) ? d.ColorMap : nullptr;

  // RGBA for every index (Pillow's ramp first, the palette over it, the transparent one clear).
  uint8_t rgba[256][4];
  for (int i = 0; i < 256; ++i) {
    rgba[i][0] = rgba[i][1] = rgba[i][2] = static_cast<uint8_t>(i);
    rgba[i][3] = 255;
  }
  if (palette) {
    for (int i = 0; i < palette->ColorCount && i < 256; ++i) {
      rgba[i][0] = palette->Colors[i].Red;
      rgba[i][1] = palette->Colors[i].Green;
      rgba[i][2] = palette->Colors[i].Blue;
    }
  }
  if (transparent >= 0) rgba[transparent][3] = 0;
  uint8_t rgb[256][3];
  for (int i = 0; i < 256; ++i) over_white(rgba[i], rgb[i]);

  Image out;
  out.width = static_cast<int>(w);
  out.height = static_cast<int>(h);
  // The canvas: the transparent index, else 0, then the frame's rows over it.
  const uint8_t* fill = rgb[transparent >= 0 ? transparent : 0];
  const size_t row = static_cast<size_t>(w) * 3;
  out.rgb.resize(row * static_cast<size_t>(h));
  for (size_t i = 0; i < row; i += 3) std::memcpy(&out.rgb[i], fill, 3);
  for (int64_t y = 1; y < h; ++y) std::memcpy(&out.rgb[row * y], out.rgb.data(), row);
  std::vector<GifPixelType> line(static_cast<size_t>(fw));
  auto put_row = [&](int64_t y) {
    uint8_t* dst = out.pixel(static_cast<int>(x0), static_cast<int>(y0 + y));
    for (int64_t x = 0; x < fw; ++x) std::memcpy(dst + 3 * x, rgb[line[x]], 3);
  };
  if (fw > 0 && fh > 0) {
    if (d.Interlace) {
      static const int kStart[4] = {0, 4, 2, 1}, kStep[4] = {8, 8, 4, 2};
      for (int pass = 0; pass < 4; ++pass) {
        for (int64_t y = kStart[pass]; y < fh; y += kStep[pass]) {
          if (DGifGetLine(gif.get(), line.data(), static_cast<int>(fw)) == GIF_ERROR) {
            gif_fail("truncated or corrupt GIF data");
          }
          put_row(y);
        }
      }
    } else {
      for (int64_t y = 0; y < fh; ++y) {
        if (DGifGetLine(gif.get(), line.data(), static_cast<int>(fw)) == GIF_ERROR) {
          gif_fail("truncated or corrupt GIF data");
        }
        put_row(y);
      }
    }
  }
  return out;
}

#else

Image decode_gif(const uint8_t*, size_t, const std::string& name) {
  fail(name, "this build has no GIF support (giflib was not found when it was built)");
}

#endif

}  // namespace smolvlm::codecs
