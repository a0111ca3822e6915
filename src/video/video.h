// Video input: HF's frame sampling (SmolVLMVideoProcessor.sample_frames) and decoding of the
// sampled frames with FFmpeg's libraries (linked, not a subprocess).
//
// Parity with HF's PyAV backend: a frame index is the ordinal of a frame in decode output order,
// the metadata is the stream's nb_frames and avg_frame_rate, and duration = nb_frames / fps.
#pragma once

#include <smolvlm/image.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "model/config.h"  // kMaxSamplingFps, kMaxSampledFrames

namespace smolvlm {

// preprocessor_config.json "video_sampling" (fps, max_frames) and sample_frames' skip_secs.
struct VideoSampling {
  double fps = 1;
  int max_frames = 64;
  double skip_secs = 1;
};

// The frame indices HF samples from a video of `total_frames` frames at `native_fps` (whose
// duration is total_frames / native_fps): sorted, unique, fewer than max_frames when they collide.
// Throws smolvlm::Error for a non-positive frame count, fps or max_frames, or one past the limits.
std::vector<int> sample_frame_indices(int64_t total_frames, double native_fps,
                                      const VideoSampling& sampling);

// What the decoder knows before decoding a frame.
struct VideoInfo {
  int64_t total_frames = 0;     // stream nb_frames, or counted by a packet pass when it is 0
  double native_fps = 0;        // stream avg_frame_rate (PyAV's average_rate)
  double duration_s = 0;        // total_frames / native_fps, as HF computes it
  int width = 0, height = 0;    // coded picture size
  std::string codec;            // decoder name, e.g. "h264"
  bool frames_counted = false;  // true when nb_frames was 0 and the packets were counted
  bool seekable_index = false;  // each frame index maps to one exact timestamp: frames are sought
};

struct VideoClip {
  VideoInfo info;
  std::vector<int> indices;          // the sampled frame indices (decode output order)
  std::vector<Image> frames;         // RGB, native size, one per index
  std::vector<double> timestamps_s;  // index / native_fps, as HF's VideoMetadata.timestamps
};

// Called after each sampled frame: (frames decoded so far, frames to decode).
using VideoProgress = std::function<void(int done, int total)>;

// Opens a local video file and decodes only the frames it is asked for. Not thread-safe; one
// reader per thread. Errors are one-line smolvlm::Error messages naming the file.
class VideoReader {
 public:
  explicit VideoReader(const std::string& path);
  // The same from `size` bytes in memory, which must outlive the reader; `name` is for messages.
  VideoReader(const std::string& name, const uint8_t* data, size_t size);
  ~VideoReader();
  VideoReader(const VideoReader&) = delete;
  VideoReader& operator=(const VideoReader&) = delete;

  const VideoInfo& info() const;
  // Decodes the frames at `indices` (ascending, each < total_frames) and hands each to
  // `on_frame` in order, so a caller can work on frame k while k+1 decodes. Seeks per frame when
  // the index map is exact (info().seekable_index), decodes sequentially otherwise.
  void read_frames(const std::vector<int>& indices,
                   const std::function<void(int index, Image&& frame)>& on_frame);

 private:
  void open();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Opens `path`, samples as HF does and decodes the sampled frames.
VideoClip read_video(const std::string& path, const VideoSampling& sampling,
                     const VideoProgress& progress = {});

// Whether this build links FFmpeg's libraries (SMOLVLM_VIDEO); without them read_video and
// VideoReader throw "this build has no video support".
bool video_supported();

}  // namespace smolvlm
