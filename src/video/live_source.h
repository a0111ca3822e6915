// A live video source for `smolvlm watch`: a camera (/dev/video*), a network stream (rtsp://,
// http://...), a pipe, or a file played as a fake camera (paced at its frame rate, looped).
// A thread decodes all the time and keeps only the newest frame, so a slow consumer always gets
// the present, not a backlog; it reconnects after an error (waiting longer each time a try gives
// no frame), and every read has an I/O deadline.
// A declared internal interface for apps/smolvlm/watch.cpp (scripts/check-layers.py).
#pragma once

#include <smolvlm/image.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace smolvlm {

struct LiveSourceOptions {
  std::chrono::milliseconds io_timeout{5000};            // a read or open that stalls longer fails
  std::chrono::milliseconds reconnect_delay{1000};       // the first wait before reopening
  std::chrono::milliseconds max_reconnect_delay{30000};  // the wait doubles up to this
};

struct LiveFrame {
  Image image;
  uint64_t sequence = 0;     // 1, 2, ... in arrival order (gaps: frames dropped as stale)
  double source_time_s = 0;  // the frame's timestamp in the stream (a looped file restarts at 0)
  std::chrono::system_clock::time_point received;
};

class LiveSource {
 public:
  // Opens `url` and starts decoding. A source that cannot be opened the first time throws a
  // one-line smolvlm::Error (a wrong path is not worth retrying); later failures reconnect.
  LiveSource(const std::string& url, const LiveSourceOptions& options = {});
  ~LiveSource();
  LiveSource(const LiveSource&) = delete;
  LiveSource& operator=(const LiveSource&) = delete;

  // The newest frame if it is newer than `after_sequence`, waiting up to `wait` for one.
  std::optional<LiveFrame> newest(uint64_t after_sequence, std::chrono::milliseconds wait);
  int reconnects() const;          // times the source was opened again after an error or its end
  std::string last_error() const;  // the latest failure, empty when none
  // True when the source will never give a frame (a file that held none in a whole pass);
  // last_error() says why.
  bool gave_up() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Whether /dev/video* cameras can be opened: FFmpeg's libavdevice, opened at run time on first
// use (it is not linked, see live_source.cpp). The first call opens it.
bool cameras_supported();

// How different two pictures look, 0 (same) to 255: the mean absolute difference of their 16×16
// grey thumbnails. Small values (a few units) are sensor noise and compression.
double picture_change(const Image& a, const Image& b);

}  // namespace smolvlm
