// A build without FFmpeg's libraries (SMOLVLM_VIDEO off): video input says so, once, clearly.
#include <smolvlm/error.h>

#include "util/input_text.h"
#include "video/live_source.h"
#include "video/video.h"

namespace smolvlm {

namespace {
[[noreturn]] void no_video(const std::string& path) {
  throw Error("video " + quote_input(path) +
              ": this build has no video support (rebuild with FFmpeg's " +
              "libavformat/libavcodec/libswscale development packages)");
}
}  // namespace

struct VideoReader::Impl {};

VideoReader::VideoReader(const std::string& path) { no_video(path); }
VideoReader::VideoReader(const std::string& name, const uint8_t*, size_t) { no_video(name); }
VideoReader::~VideoReader() = default;
const VideoInfo& VideoReader::info() const {
  static const VideoInfo none;
  return none;
}
void VideoReader::read_frames(const std::vector<int>&, const std::function<void(int, Image&&)>&) {}

VideoClip read_video(const std::string& path, const VideoSampling&, const VideoProgress&) {
  no_video(path);
}

bool video_supported() { return false; }

struct LiveSource::Impl {};
LiveSource::LiveSource(const std::string& url, const LiveSourceOptions&) { no_video(url); }
LiveSource::~LiveSource() = default;
std::optional<LiveFrame> LiveSource::newest(uint64_t, std::chrono::milliseconds) { return {}; }
int LiveSource::reconnects() const { return 0; }
std::string LiveSource::last_error() const { return {}; }
bool LiveSource::gave_up() const { return false; }

}  // namespace smolvlm
