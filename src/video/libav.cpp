// The one conversion from a decoded frame to our RGB Image (video files and live sources).
#include "video/libav.h"

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

namespace smolvlm::av {

namespace {

std::atomic<bool> g_guard_pages{false};

// libswscale's destination: RGB24 rows of `linesize` bytes, laid out as av_image_alloc lays them
// out with 64-byte alignment: rows padded to a multiple of 64 bytes, 64 more bytes after the last
// one (the SIMD writes of the last row go past its end). From av_malloc, or in guard mode from
// mmap with a PROT_NONE page right after those 64 bytes: the same layout either way, so the tests
// check the one in use.
class RgbBuffer {
 public:
  RgbBuffer(int width, int height, bool guard) {
    constexpr int kAlign = 64;
    if (av_image_fill_linesizes(linesize_, AV_PIX_FMT_RGB24, FFALIGN(width, 8)) < 0) return;
    linesize_[0] = FFALIGN(linesize_[0], kAlign);
    const size_t bytes = static_cast<size_t>(linesize_[0]) * static_cast<size_t>(height) + kAlign;
    if (!guard) {
      data_[0] =
          static_cast<uint8_t*>(av_malloc(bytes));  // av_malloc aligns to 64 where AVX-512 is
      return;
    }
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    map_size_ = (bytes + page - 1) / page * page + page;
    void* m = mmap(nullptr, map_size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return;
    map_ = static_cast<uint8_t*>(m);
    if (mprotect(map_ + map_size_ - page, page, PROT_NONE) != 0) return;
    data_[0] = map_ + (map_size_ - page - bytes);  // a multiple of 64 bytes: still aligned
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

const char kAllowedContainers[] =
    "MP4/MOV, Matroska/WebM, AVI, MPEG-TS/PS, FLV, Ogg, GIF, APNG, Y4M or a raw video stream";
const char kAllowedCodecs[] =
    "H.264, HEVC, AV1, VP8/VP9, MPEG-1/2/4, H.263, Theora, MJPEG, FFV1, ProRes, PNG, GIF or raw";

bool container_allowed(const AVInputFormat* format, bool live) {
  if (format == nullptr || format->name == nullptr) return false;
  // libavformat's demuxer names, whole (one demuxer may carry several comma-separated names).
  static const char* const kFiles[] = {"mov,mp4,m4a,3gp,3g2,mj2",
                                       "matroska,webm",
                                       "avi",
                                       "mpegts",
                                       "mpeg",
                                       "flv",
                                       "ogg",
                                       "gif",
                                       "apng",
                                       "yuv4mpegpipe",
                                       "h264",
                                       "hevc",
                                       "m4v",
                                       "obu",
                                       "ivf",
                                       "mjpeg"};
  static const char* const kLive[] = {"rtsp", "video4linux2,v4l2", "mpjpeg", "hls", "sdp"};
  for (const char* n : kFiles)
    if (std::strcmp(format->name, n) == 0) return true;
  if (live) {
    for (const char* n : kLive)
      if (std::strcmp(format->name, n) == 0) return true;
  }
  return false;
}

bool codec_allowed(AVCodecID codec) {
  switch (codec) {
    case AV_CODEC_ID_H264:
    case AV_CODEC_ID_HEVC:
    case AV_CODEC_ID_AV1:
    case AV_CODEC_ID_VP8:
    case AV_CODEC_ID_VP9:
    case AV_CODEC_ID_MPEG1VIDEO:
    case AV_CODEC_ID_MPEG2VIDEO:
    case AV_CODEC_ID_MPEG4:
    case AV_CODEC_ID_H263:
    case AV_CODEC_ID_THEORA:
    case AV_CODEC_ID_MJPEG:
    case AV_CODEC_ID_FFV1:
    case AV_CODEC_ID_PRORES:
    case AV_CODEC_ID_PNG:
    case AV_CODEC_ID_APNG:
    case AV_CODEC_ID_GIF:
    case AV_CODEC_ID_RAWVIDEO:
      return true;
    default:
      return false;
  }
}

const std::string& allowed_decoders() {
  static const std::string names = [] {
    std::string v;
    void* it = nullptr;
    while (const AVCodec* c = av_codec_iterate(&it)) {
      if (av_codec_is_decoder(c) != 0 && codec_allowed(c->id)) {
        if (!v.empty()) v += ',';
        v += c->name;
      }
    }
    return v;
  }();
  return names;
}

std::string frame_size_problem(int width, int height) {
  const std::string size = std::to_string(width) + "x" + std::to_string(height);
  if (width <= 0 || height <= 0) return "frames of " + size + " pixels";
  if (static_cast<int64_t>(width) * height > kMaxVideoFramePixels) {
    return "frames of " + size + " pixels, more than the " + std::to_string(kMaxVideoFramePixels) +
           " (4096x2160) a video frame may have";
  }
  return {};
}

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
