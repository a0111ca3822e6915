// Small RAII and error helpers over FFmpeg's C libraries, shared by the file reader and the live
// source. Only included where SMOLVLM_VIDEO is on.
#pragma once

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>
}

#include <smolvlm/image.h>

#include <atomic>
#include <chrono>
#include <string>

namespace smolvlm::av {

inline std::string error_text(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(err, buf, sizeof buf);
  return buf;
}

struct FormatCloser {
  void operator()(AVFormatContext* f) const { avformat_close_input(&f); }
};
struct CodecFreer {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct PacketFreer {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct FrameFreer {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct SwsFreer {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};

// A deadline the demuxer polls through AVFormatContext.interrupt_callback, so no read can block
// longer than the caller allows (network sources, stalled devices).
struct Deadline {
  using Clock = std::chrono::steady_clock;
  Clock::time_point at = Clock::time_point::max();
  const std::atomic<bool>* stop = nullptr;  // optional: a caller's request to give up now
  void arm(std::chrono::milliseconds ms) { at = Clock::now() + ms; }
  bool passed() const { return (stop != nullptr && *stop) || Clock::now() > at; }
  static int callback(void* self) { return static_cast<const Deadline*>(self)->passed() ? 1 : 0; }
};

// Converts a decoded frame to packed RGB24 at its own size (the image processor resizes later),
// with the flags PyAV's to_ndarray("rgb24") uses (SWS_BILINEAR; the size does not change, so only
// the chroma upsampling and the colour matrix act). libswscale writes whole SIMD vectors, past the
// end of a row: it converts into a buffer laid out as libav requires (aligned, each row a padded
// linesize), and the rows are then copied into the Image. An empty Image when libswscale cannot
// convert the frame's pixel format or size.
Image frame_to_rgb(const AVFrame* frame, SwsContext*& sws);

// The containers and codecs a video may come in (README "Video input"): libavformat would also
// take a text file as ANSI art, a picture as a one-frame video, and dozens of rarely used formats
// whose demuxers and decoders are attack surface for whoever sends a server a file.
// `live` adds the sources only `smolvlm watch` opens (RTSP, cameras, HTTP multipart JPEG, HLS).
bool container_allowed(const AVInputFormat* format, bool live);
bool codec_allowed(AVCodecID codec);
extern const char kAllowedContainers[];  // for messages: "MP4/MOV, Matroska/WebM, ..."
extern const char kAllowedCodecs[];      // for messages: "H.264, HEVC, ..."

// A frame's largest pixel count: 4096x2160 (DCI 4K, more than a phone's 3840x2160 video). Decoding
// holds several frames per thread; a 1 MB 8192x8192 H.264 file would otherwise take over 1 GB.
constexpr int64_t kMaxVideoFramePixels = int64_t{4096} * 2160;
// Every decoder of an allowed codec, comma-separated, for AVFormatContext::codec_whitelist: then
// avformat_find_stream_info, which opens decoders to learn the streams' parameters, opens no other.
const std::string& allowed_decoders();

// Empty when width x height is a size we decode, else why not ("8192x8192 pixels: ...").
std::string frame_size_problem(int width, int height);

// For tests and fuzzing: when on, each buffer handed to libswscale as its destination ends right
// before a page with no access (mprotect), so a write past what libav was told it may use faults
// at once. AddressSanitizer cannot see such writes: libav* is not instrumented.
void set_guard_pages(bool on);

}  // namespace smolvlm::av
