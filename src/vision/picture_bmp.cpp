// BMP, read here (no library), the way Pillow 9.4's BmpImagePlugin reads it, and converted as
// HF's convert_to_rgb converts the mode Pillow gives:
// - headers of 12 (OS/2: 16-bit sizes, 3-byte palette entries), 40, 64, 108 and 124 bytes; a
//   height whose top byte is 0xFF means top-down rows (Pillow's test, not the sign);
// - 1/4/8 bits: a palette ("P"), unless every entry is the grey of its index (2 colours: black
//   and white), which Pillow reads as "1" or "L" (the same pixels); indices past the palette's
//   end take Pillow's default grey ramp;
// - 16 bits: 5-5-5 (or 5-6-5 with BITFIELDS), each channel scaled c * 255 / max;
// - 24 bits: BGR; 32 bits: BGRX, the fourth byte ignored (Pillow's "RGB"), unless BITFIELDS name
//   an alpha mask: then "RGBA", composited over white as HF does;
// - RLE8 and RLE4 as Pillow's BmpRleDecoder runs them (runs clipped at the row's end, absolute
//   runs not, word alignment by the position in the file, a delta read as Pillow 9.4 reads it
//   (the two bytes after its offsets), missing pixels an error).
// Anything else Pillow refuses is refused, with its reason.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "vision/picture_codecs.h"

namespace smolvlm::codecs {
namespace {

uint32_t le16(const uint8_t* p) { return uint32_t{p[0]} | uint32_t{p[1]} << 8; }
uint32_t le32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

// How a row of the pixel data unpacks (Pillow's raw modes).
enum class Raw { P1, P4, P8, BGR15, BGR16, BGR, BGRX, XBGR, ABGR, RGBA, BGRA };

struct Bmp {
  const uint8_t* data;
  size_t size;
  const std::string& name;
  [[noreturn]] void bad(const std::string& why) const { fail(name, why); }
};

}  // namespace

Image decode_bmp(const uint8_t* data, size_t size, const std::string& name) {
  const Bmp f{data, size, name};
  if (size < 18) f.bad("truncated BMP header");
  const uint32_t offset = le32(data + 10);
  const uint32_t header_size = le32(data + 14);
  if (header_size != 12 && header_size != 40 && header_size != 64 && header_size != 108 &&
      header_size != 124) {
    f.bad("unsupported BMP header type (" + std::to_string(header_size) + ")");
  }
  if (size < 14 + size_t{header_size}) f.bad("truncated BMP header");
  const uint8_t* h = data + 18;  // the header after its size field
  size_t pos = 14 + header_size;
  int64_t width = 0, height = 0;
  uint32_t bits = 0, compression = 0, colors = 0, palette_padding = 4;
  bool top_down = false;
  uint32_t masks[4] = {0, 0, 0, 0};
  if (header_size == 12) {
    width = le16(h);
    height = le16(h + 2);
    bits = le16(h + 6);
    palette_padding = 3;
  } else {
    top_down = h[7] == 0xff;
    width = le32(h);
    height = top_down ? (int64_t{1} << 32) - le32(h + 4) : le32(h + 4);
    bits = le16(h + 10);
    compression = le32(h + 12);
    colors = le32(h + 28);
    if (compression == 3) {
      if (header_size - 4 >= 52) {
        for (int i = 0; i < 4; ++i) masks[i] = le32(h + 36 + 4 * i);
      } else {
        if (size < pos + 12) f.bad("truncated BMP header");
        for (int i = 0; i < 3; ++i) masks[i] = le32(data + pos + 4 * i);
        pos += 12;
      }
    }
  }
  if (bits > 32) f.bad("unsupported BMP pixel depth (" + std::to_string(bits) + ")");
  if (colors == 0 && bits <= 8) colors = uint32_t{1} << bits;  // (only palettes use it)
  uint64_t data_at = offset;
  if (offset == 14 + header_size && bits <= 8) data_at += uint64_t{4} * colors;

  Raw raw;
  bool palette = false;
  switch (bits) {
    case 1:
      raw = Raw::P1, palette = true;
      break;
    case 4:
      raw = Raw::P4, palette = true;
      break;
    case 8:
      raw = Raw::P8, palette = true;
      break;
    case 16:
      raw = Raw::BGR15;
      break;
    case 24:
      raw = Raw::BGR;
      break;
    case 32:
      raw = Raw::BGRX;
      break;
    default:
      f.bad("unsupported BMP pixel depth (" + std::to_string(bits) + ")");
  }
  const bool rle = compression == 1 || compression == 2;
  if (compression == 3) {
    auto is = [&](uint32_t r, uint32_t g, uint32_t b, uint32_t a) {
      return masks[0] == r && masks[1] == g && masks[2] == b && masks[3] == a;
    };
    auto is3 = [&](uint32_t r, uint32_t g, uint32_t b) {
      return masks[0] == r && masks[1] == g && masks[2] == b;
    };
    if (bits == 32 && is(0xff0000, 0xff00, 0xff, 0)) {
      raw = Raw::BGRX;
    } else if (bits == 32 && is(0xff000000, 0xff0000, 0xff00, 0)) {
      raw = Raw::XBGR;
    } else if (bits == 32 && is(0xff000000, 0xff0000, 0xff00, 0xff)) {
      raw = Raw::ABGR;
    } else if (bits == 32 && is(0xff, 0xff00, 0xff0000, 0xff000000)) {
      raw = Raw::RGBA;
    } else if (bits == 32 && (is(0xff0000, 0xff00, 0xff, 0xff000000) || is(0, 0, 0, 0))) {
      raw = Raw::BGRA;
    } else if (bits == 24 && is3(0xff0000, 0xff00, 0xff)) {
      raw = Raw::BGR;
    } else if (bits == 16 && is3(0xf800, 0x7e0, 0x1f)) {
      raw = Raw::BGR16;
    } else if (bits == 16 && is3(0x7c00, 0x3e0, 0x1f)) {
      raw = Raw::BGR15;
    } else {
      f.bad("unsupported BMP bitfields layout");
    }
  } else if (compression != 0 && !rle) {
    f.bad("unsupported BMP compression (" + std::to_string(compression) + ")");
  }
  if (rle && !palette) f.bad("RLE compression needs a palette of 1, 4 or 8 bits");
  check_size(name, width, height);
  const int w = static_cast<int>(width), ht = static_cast<int>(height);

  // The palette: BGR(X) entries right after the header (or the masks), as Pillow reads it.
  uint8_t pal[256][3];
  for (int i = 0; i < 256; ++i) pal[i][0] = pal[i][1] = pal[i][2] = static_cast<uint8_t>(i);
  if (palette) {
    // Pillow takes up to 65536 but fails past 256 (its grey test cannot name index 256).
    if (colors > 256) f.bad("unsupported BMP palette size (" + std::to_string(colors) + ")");
    const size_t avail = pos < size ? size - pos : 0;
    const size_t n = std::min<size_t>(colors, avail / palette_padding);
    bool grey = true;
    for (uint32_t i = 0; i < colors; ++i) {
      const uint8_t want = colors == 2 ? static_cast<uint8_t>(i == 0 ? 0 : 255) : uint8_t(i);
      if (i >= n) {
        grey = false;
        break;
      }
      const uint8_t* e = data + pos + size_t{i} * palette_padding;
      if (e[0] != want || e[1] != want || e[2] != want) grey = false;
    }
    // Pillow then reads the rows as "1" (colors == 2) or "L" whatever the bit depth: only the
    // depths where that is the same reading are accepted.
    if (grey && ((colors == 2 && bits != 1) || (colors != 2 && bits != 8))) {
      f.bad("a " + std::to_string(bits) + "-bit BMP with a grey palette of " +
            std::to_string(colors) + " colours (Pillow misreads it)");
    }
    if (grey && rle && colors == 2) f.bad("an RLE BMP in black and white (Pillow cannot read it)");
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* e = data + pos + i * palette_padding;
      pal[i][0] = e[2];
      pal[i][1] = e[1];
      pal[i][2] = e[0];
    }
    pos += size_t{colors} * palette_padding;
  }
  if (offset == 0) data_at = pos;  // Pillow: `offset or fp.tell()`

  Image out;
  out.width = w;
  out.height = ht;
  const size_t out_row = size_t(w) * 3;
  if (rle) {
    // Indices for the whole picture first (runs may skip rows), then the palette.
    const size_t total = size_t(w) * size_t(ht);
    std::vector<uint8_t> idx;
    idx.reserve(total);
    const bool rle4 = compression == 2;
    size_t at = data_at, x = 0;
    auto more = [&](size_t n) { return at <= size && size - at >= n; };
    while (idx.size() < total) {
      if (!more(2)) break;
      size_t count = data[at];
      const uint8_t byte = data[at + 1];
      at += 2;
      if (count) {
        if (x + count > size_t(w)) count = x < size_t(w) ? size_t(w) - x : 0;
        for (size_t i = 0; i < count; ++i) {
          idx.push_back(rle4 ? static_cast<uint8_t>(i % 2 == 0 ? byte >> 4 : byte & 15) : byte);
        }
        x += count;
      } else if (byte == 0) {
        while (idx.size() % size_t(w) != 0) idx.push_back(0);
        x = 0;
      } else if (byte == 1) {
        break;
      } else if (byte == 2) {
        // A delta. Pillow 9.4 reads its two bytes, then takes the two after them as the offsets
        // (it reads twice); HF sees what that gives, so we do the same.
        if (!more(2)) break;
        at += 2;
        if (!more(2)) fail(name, "truncated BMP RLE delta");
        const size_t add = data[at] + size_t{data[at + 1]} * size_t(w);
        at += 2;
        idx.insert(idx.end(), std::min(add, total - idx.size()), 0);  // past the end: unread
        x = idx.size() % size_t(w);
      } else {
        const size_t want = rle4 ? byte / 2 : byte;
        const size_t got = more(want) ? want : (at < size ? size - at : 0);
        for (size_t i = 0; i < got; ++i) {
          const uint8_t b = data[at + i];
          if (rle4) {
            idx.push_back(b >> 4);
            idx.push_back(b & 15);
          } else {
            idx.push_back(b);
          }
        }
        at += got;
        if (got < want) break;
        x += byte;
        if (at % 2 != 0) ++at;
      }
      if (idx.size() > total) idx.resize(total);  // the rest is never read
    }
    if (idx.size() < total) fail(name, "not enough BMP image data (truncated or corrupt RLE)");
    out.rgb.resize(out_row * size_t(ht));
    for (int y = 0; y < ht; ++y) {
      const uint8_t* src = idx.data() + size_t(y) * size_t(w);
      uint8_t* dst = out.pixel(0, top_down ? y : ht - 1 - y);
      for (int i = 0; i < w; ++i) std::memcpy(dst + 3 * i, pal[src[i]], 3);
    }
    return out;
  }

  const uint64_t stride = ((uint64_t(w) * bits + 31) >> 3) & ~uint64_t{3};
  if (data_at > size || (size - data_at) / stride < uint64_t(ht)) {
    fail(name, "truncated BMP data (" + std::to_string(ht) + " rows of " + std::to_string(stride) +
                   " bytes need " + std::to_string(data_at + stride * uint64_t(ht)) +
                   " bytes, the file has " + std::to_string(size) + ")");
  }
  out.rgb.resize(out_row * size_t(ht));
  for (int y = 0; y < ht; ++y) {
    const uint8_t* src = data + data_at + stride * uint64_t(y);
    uint8_t* dst = out.pixel(0, top_down ? y : ht - 1 - y);
    for (int x = 0; x < w; ++x) {
      uint8_t* o = dst + 3 * x;
      auto set = [&](uint32_t r, uint32_t g, uint32_t b) {
        o[0] = uint8_t(r);
        o[1] = uint8_t(g);
        o[2] = uint8_t(b);
      };
      switch (raw) {
        case Raw::P1:
          std::memcpy(o, pal[(src[x >> 3] >> (7 - (x & 7))) & 1], 3);
          break;
        case Raw::P4:
          std::memcpy(o, pal[(src[x >> 1] >> (x & 1 ? 0 : 4)) & 15], 3);
          break;
        case Raw::P8:
          std::memcpy(o, pal[src[x]], 3);
          break;
        case Raw::BGR15: {
          const uint32_t p = le16(src + 2 * x);
          set(((p >> 10) & 31) * 255 / 31, ((p >> 5) & 31) * 255 / 31, (p & 31) * 255 / 31);
          break;
        }
        case Raw::BGR16: {
          const uint32_t p = le16(src + 2 * x);
          set(((p >> 11) & 31) * 255 / 31, ((p >> 5) & 63) * 255 / 63, (p & 31) * 255 / 31);
          break;
        }
        case Raw::BGR:
          set(src[3 * x + 2], src[3 * x + 1], src[3 * x]);
          break;
        case Raw::BGRX:
          set(src[4 * x + 2], src[4 * x + 1], src[4 * x]);
          break;
        case Raw::XBGR:
          set(src[4 * x + 3], src[4 * x + 2], src[4 * x + 1]);
          break;
        case Raw::ABGR:
        case Raw::RGBA:
        case Raw::BGRA: {
          const uint8_t* p = src + 4 * x;
          uint8_t rgba[4];
          if (raw == Raw::ABGR) {
            rgba[0] = p[3], rgba[1] = p[2], rgba[2] = p[1], rgba[3] = p[0];
          } else if (raw == Raw::RGBA) {
            std::memcpy(rgba, p, 4);
          } else {
            rgba[0] = p[2], rgba[1] = p[1], rgba[2] = p[0], rgba[3] = p[3];
          }
          over_white(rgba, o);
          break;
        }
      }
    }
  }
  return out;
}

}  // namespace smolvlm::codecs
