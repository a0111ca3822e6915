// The one conversion from a decoded frame to our RGB Image (video files and live sources).
#include "video/libav.h"

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

namespace smolvlm::av {

namespace {

std::atomic<bool> g_guard_pages{false};

// libswscale's destination: RGB24 rows of `linesize` bytes (a multiple of 64, the widest SIMD
// alignment libav uses), from av_image_alloc, or in guard mode from mmap with a PROT_NONE page
// right after the last row.
class RgbBuffer {
 public:
  RgbBuffer(int width, int height, bool guard) {
    if (!guard) {
      if (av_image_alloc(data_, linesize_, width, height, AV_PIX_FMT_RGB24, 64) < 0) data_[0] = nullptr;
      return;
    }
    linesize_[0] = FFALIGN(width * 3, 64);
    const size_t bytes = static_cast<size_t>(linesize_[0]) * static_cast<size_t>(height);
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    map_size_ = (bytes + page - 1) / page * page + page;
    void* m = mmap(nullptr, map_size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return;
    map_ = static_cast<uint8_t*>(m);
    if (mprotect(map_ + map_size_ - page, page, PROT_NONE) != 0) return;
    data_[0] = map_ + (map_size_ - page - bytes);  // bytes is a multiple of 64: still aligned
  }
  ~RgbBuffer() {
    if (map_ != nullptr) {
      munmap(map_, map_size_);
    } else {
      av_freep(&data_[0]);
    }
  }
  RgbBuffer(const RgbBuffer&) = delete;
  RgbBuffer& operator=(const RgbBuffer&) = delete;

  uint8_t* const* data() { return data_; }
  const int* linesize() const { return linesize_; }
  bool ok() const { return data_[0] != nullptr; }

 private:
  uint8_t* data_[4] = {};
  int linesize_[4] = {};
  uint8_t* map_ = nullptr;
  size_t map_size_ = 0;
};

}  // namespace

void set_guard_pages(bool on) { g_guard_pages = on; }

Image frame_to_rgb(const AVFrame* frame, SwsContext*& sws) {
  if (frame->width <= 0 || frame->height <= 0 ||
      av_image_check_size(static_cast<unsigned>(frame->width), static_cast<unsigned>(frame->height),
                          0, nullptr) < 0) {
    return {};
  }
  sws = sws_getCachedContext(sws, frame->width, frame->height,
                             static_cast<AVPixelFormat>(frame->format), frame->width, frame->height,
                             AV_PIX_FMT_RGB24, SWS_BILINEAR, nullptr, nullptr, nullptr);
  if (sws == nullptr) return {};
  RgbBuffer dst(frame->width, frame->height, g_guard_pages);
  if (!dst.ok()) return {};
  if (sws_scale(sws, frame->data, frame->linesize, 0, frame->height, dst.data(), dst.linesize()) !=
      frame->height) {
    return {};
  }
  Image img;
  img.width = frame->width;
  img.height = frame->height;
  const size_t row = static_cast<size_t>(img.width) * 3;
  img.rgb.resize(row * static_cast<size_t>(img.height));
  for (int y = 0; y < img.height; ++y) {
    std::memcpy(img.rgb.data() + row * static_cast<size_t>(y),
                dst.data()[0] + static_cast<ptrdiff_t>(y) * dst.linesize()[0], row);
  }
  return img;
}

}  // namespace smolvlm::av
