// libFuzzer target: a video from bytes in memory (VideoReader through a custom AVIOContext: the
// allow-listed demuxers and decoders, the packet pass, seeking, and the conversion to RGB with a
// guard page after each of libswscale's destinations, so a write past it crashes here as
// AddressSanitizer alone would not see it). Any input must give frames of the size they claim or
// throw smolvlm::Error.
#include <smolvlm/error.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "video/libav.h"
#include "video/video.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool guarded = [] {
    smolvlm::av::set_guard_pages(true);
    return true;
  }();
  (void)guarded;
  try {
    smolvlm::VideoReader reader("fuzz", data, size);
    smolvlm::VideoSampling sampling;  // a few frames: enough to reach seeking and conversion
    sampling.fps = 2;
    sampling.max_frames = 3;
    const smolvlm::VideoInfo& info = reader.info();
    const std::vector<int> indices =
        smolvlm::sample_frame_indices(info.total_frames, info.native_fps, sampling);
    reader.read_frames(indices, [](int, smolvlm::Image&& frame) {
      if (frame.width <= 0 || frame.height <= 0 ||
          frame.rgb.size() != static_cast<size_t>(frame.width) * frame.height * 3 ||
          static_cast<int64_t>(frame.width) * frame.height > smolvlm::av::kMaxVideoFramePixels) {
        std::abort();
      }
    });
  } catch (const smolvlm::Error&) {
  }
  return 0;
}
