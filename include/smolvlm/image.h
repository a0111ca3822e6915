// A decoded picture: the one pixel type of the library, from the public API down to the resizer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace smolvlm {

// 8-bit RGB, 3 bytes a pixel, rows without padding.
struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;

  uint8_t* pixel(int x, int y) { return rgb.data() + (static_cast<size_t>(y) * width + x) * 3; }
  const uint8_t* pixel(int x, int y) const {
    return rgb.data() + (static_cast<size_t>(y) * width + x) * 3;
  }

  // JPEG, PNG, WebP, GIF, BMP, TIFF, AVIF or HEIC/HEIF (chosen by the bytes, not the name),
  // decoded as PIL does (AVIF and HEIF as libavif and libheif do). Throws smolvlm::Error
  // with a one-line message for a missing, corrupt, unsupported or oversized picture.
  static Image from_file(const std::string& path);
  // The same from encoded bytes in memory (an upload, a data: URI); `name` is for messages.
  static Image from_bytes(const uint8_t* data, size_t size, const std::string& name = "picture");
  // Copies pixels in memory; `stride` is the bytes from one row to the next (0: packed). BGR is
  // the order OpenCV's cv::Mat uses. Throws smolvlm::Error for empty or oversized pictures.
  static Image from_rgb(int width, int height, const uint8_t* pixels, size_t stride = 0);
  static Image from_bgr(int width, int height, const uint8_t* pixels, size_t stride = 0);
};

// Pillow's decompression-bomb rule (Image.MAX_IMAGE_PIXELS * 2, as HF's loader refuses): a
// picture file of more pixels is refused from its header, before decoding. The limit is
// process-wide (the CLI's --max-picture-pixels sets it); it applies to decoded files only, not
// to Image::from_rgb. At most kMaxPicturePixelsCeiling (2^28, the hard limit of any picture).
inline constexpr int64_t kDefaultMaxPicturePixels = 178956970;
inline constexpr int64_t kMaxPicturePixelsCeiling = int64_t{1} << 28;
// Throws smolvlm::Error for a limit outside 1..kMaxPicturePixelsCeiling.
void set_max_picture_pixels(int64_t pixels);
int64_t max_picture_pixels();

}  // namespace smolvlm
