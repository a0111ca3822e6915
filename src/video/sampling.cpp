// HF's SmolVLMVideoProcessor.sample_frames, ported operation by operation (see
// shared/design/server-video-anchors.md §A.2): Python's round is half-to-even, np.linspace
// computes start + i*step in doubles with the last value forced to `end`, dtype=int floors
// (the values are never negative), np.unique sorts and drops repeats.
#include <smolvlm/error.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "video/video.h"

namespace smolvlm {

std::vector<int> sample_frame_indices(int64_t total_frames, double native_fps,
                                      const VideoSampling& s) {
  if (total_frames <= 0) throw Error("the video has no frames");
  if (total_frames > (int64_t{1} << 31) - 1)
    throw Error("the video has too many frames: " + std::to_string(total_frames));
  if (!(native_fps > 0) || !std::isfinite(native_fps)) {
    throw Error("the video's frame rate " + std::to_string(native_fps) + " is not positive");
  }
  if (!(s.fps >= kMinSamplingFps && s.fps <= kMaxSamplingFps)) {
    throw Error("the sampling fps must be between 0.001 and 1000, got " + std::to_string(s.fps));
  }
  if (s.max_frames < 1 || s.max_frames > kMaxSampledFrames) {
    throw Error("the sampling max_frames must be between 1 and 4096, got " +
                std::to_string(s.max_frames));
  }
  const double duration = static_cast<double>(total_frames) / native_fps;
  // int(round(fps * duration)): nearbyint rounds half to even in the default rounding mode.
  const double estimated = std::nearbyint(s.fps * duration);
  int64_t desired = estimated > static_cast<double>(s.max_frames) ? s.max_frames
                                                                  : static_cast<int64_t>(estimated);
  if (desired < 1) desired = 1;

  int64_t start = 0, end = total_frames - 1;
  if (s.skip_secs > 0 && (duration - 2 * s.skip_secs) > (s.max_frames * s.fps)) {
    start = static_cast<int64_t>(s.skip_secs * native_fps);
    end = static_cast<int64_t>(static_cast<double>(total_frames) - s.skip_secs * native_fps);
  }
  start = std::max<int64_t>(0, start);
  end = std::min<int64_t>(end, total_frames - 1);
  if (start >= end) {
    start = 0;
    end = total_frames - 1;
  }

  // More points than frames floor to every frame in [start, end] either way (the step is then
  // below 1): as many as there are frames give the same indices.
  desired = std::min(desired, end - start + 1);
  std::vector<int> indices;
  indices.reserve(static_cast<size_t>(desired));
  const double step =
      desired > 1 ? static_cast<double>(end - start) / static_cast<double>(desired - 1) : 0.0;
  for (int64_t i = 0; i < desired; ++i) {
    double v = static_cast<double>(i) * step + static_cast<double>(start);
    if (i == desired - 1 && desired > 1) v = static_cast<double>(end);
    indices.push_back(static_cast<int>(std::floor(v)));
  }
  std::sort(indices.begin(), indices.end());
  indices.erase(std::unique(indices.begin(), indices.end()), indices.end());
  return indices;
}

}  // namespace smolvlm
