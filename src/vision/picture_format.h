// Which picture format encoded bytes are, by their magic (header-only: the server's request
// checks use it without the decoders).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace smolvlm {

// The formats decode_image reads, for messages.
inline constexpr const char* kPictureFormats = "JPEG, PNG, WebP, GIF, BMP, TIFF, AVIF, HEIC/HEIF";

// "JPEG", "PNG", "GIF", "WebP", "BMP", "TIFF", "AVIF", "HEIF", or nullptr. A build may still lack
// the library of one of them (decode_image then says so).
inline const char* picture_format(const uint8_t* d, size_t n) {
  auto starts = [&](const char* magic, size_t len) {
    return n >= len && std::memcmp(d, magic, len) == 0;
  };
  if (n >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff) return "JPEG";
  if (starts("\x89PNG\r\n\x1a\n", 8)) return "PNG";
  if (starts("GIF87a", 6) || starts("GIF89a", 6)) return "GIF";
  if (n >= 12 && starts("RIFF", 4) && std::memcmp(d + 8, "WEBP", 4) == 0) return "WebP";
  if (starts("BM", 2)) return "BMP";
  // TIFF and BigTIFF (libtiff reads both; so does Pillow 9.4).
  if (starts("II*\0", 4) || starts("MM\0*", 4) || starts("II+\0", 4) || starts("MM\0+", 4)) {
    return "TIFF";
  }
  // ISO base media files (HEIF, AVIF, MP4) open with an 'ftyp' box: its major brand, a version,
  // then compatible brands, four bytes each. A brand decides which reader takes the file.
  if (n >= 16 && std::memcmp(d + 4, "ftyp", 4) == 0) {
    const uint64_t box = uint64_t{d[0]} << 24 | uint64_t{d[1]} << 16 | uint64_t{d[2]} << 8 | d[3];
    const size_t end = static_cast<size_t>(std::min<uint64_t>(std::max<uint64_t>(box, 16), n));
    bool heif = false;
    for (size_t at = 8; at + 4 <= end; at += 4) {
      if (at == 12) continue;  // the minor version, not a brand
      const char* b = reinterpret_cast<const char*>(d + at);
      if (std::memcmp(b, "avif", 4) == 0 || std::memcmp(b, "avis", 4) == 0) return "AVIF";
      for (const char* h : {"heic", "heix", "heim", "heis", "hevc", "hevx", "mif1", "msf1"}) {
        heif = heif || std::memcmp(b, h, 4) == 0;
      }
    }
    if (heif) return "HEIF";
  }
  return nullptr;
}

}  // namespace smolvlm
