// LiveSource: a decoding thread that keeps the newest frame (anchors §E, RTSP/live).
#include "video/live_source.h"

#include <fcntl.h>
#include <smolvlm/error.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "util/input_text.h"
#include "video/libav.h"

#if SMOLVLM_HAVE_AVDEVICE
#include <dlfcn.h>
#endif

#ifdef SMOLVLM_AVDEVICE_SONAME
#define SMOLVLM_AVDEVICE_NAME SMOLVLM_AVDEVICE_SONAME
#else
#define SMOLVLM_AVDEVICE_NAME "not in this build"
#endif

namespace smolvlm {

namespace {

// The cameras (video4linux2) come with libavdevice, opened here on first use rather than linked:
// its dependencies (libavfilter, SDL, X11, PulseAudio, ...) would add ~17 MB to the resident
// set of every process, video or not.
bool register_cameras() {
#if SMOLVLM_HAVE_AVDEVICE
  static const bool ok = [] {
    void* lib = dlopen(SMOLVLM_AVDEVICE_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) return false;
    auto* register_all = reinterpret_cast<void (*)()>(dlsym(lib, "avdevice_register_all"));
    if (register_all == nullptr) return false;
    register_all();  // makes its input formats visible to libavformat's lookups
    return true;
  }();
  return ok;
#else
  return false;
#endif
}
using Clock = std::chrono::steady_clock;

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }
}  // namespace

struct LiveSource::Impl {
  std::string url;
  LiveSourceOptions options;
  bool paced_file = false;  // a regular file: played at its frame rate and looped
  std::atomic<bool> stop{false};
  int fifo_fd = -1;  // a named pipe, opened non-blocking so no read can hang
  av::Deadline deadline;

  std::unique_ptr<AVFormatContext, av::FormatCloser> fmt;
  std::unique_ptr<AVCodecContext, av::CodecFreer> dec;
  int stream = -1;

  mutable std::mutex mu;
  std::condition_variable cv;
  std::unique_ptr<AVFrame, av::FrameFreer> newest{av_frame_alloc()};  // guarded by mu
  uint64_t sequence = 0;                                              // guarded by mu
  double newest_time_s = 0;                                           // guarded by mu
  std::chrono::system_clock::time_point newest_received;              // guarded by mu
  std::string error;                                                  // guarded by mu
  bool gave_up = false;                                               // guarded by mu
  std::atomic<int> reconnects{0};
  SwsContext* sws = nullptr;  // used by the consumer only
  std::thread worker;

  ~Impl() {
    dec.reset();
    fmt.reset();
    if (fifo_fd >= 0) ::close(fifo_fd);
    sws_freeContext(sws);
  }

  // libav's words for a failed open or read, except where our own deadline cut it short: libav
  // then says "Immediate exit requested", which reads as if someone had asked to quit.
  std::string io_error(const char* what, int err) const {
    if ((err == AVERROR_EXIT && !stop) || err == AVERROR(ETIMEDOUT)) {
      return std::string(what) + ": no data for " + std::to_string(options.io_timeout.count()) +
             " ms (the I/O time-out, --io-timeout)";
    }
    return std::string(what) + ": " + av::error_text(err);
  }

  void set_error(const std::string& e) {
    std::lock_guard<std::mutex> lock(mu);
    error = e;
  }

  // Opens the source and its decoder; returns the error text, empty on success.
  std::string open() {
    dec.reset();
    fmt.reset();
    std::string target = url;
    struct stat sb {};
    if (url.find("://") == std::string::npos && ::stat(url.c_str(), &sb) == 0 &&
        S_ISFIFO(sb.st_mode)) {
      // A FIFO through the pipe protocol on a non-blocking descriptor: libav then waits for data
      // in its retry loop, which polls the interrupt callback, instead of inside read(2).
      if (fifo_fd >= 0) ::close(fifo_fd);
      fifo_fd = ::open(url.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
      if (fifo_fd < 0) return "cannot open the pipe";
      target = "pipe:" + std::to_string(fifo_fd);
    }
    AVFormatContext* f = avformat_alloc_context();
    if (f == nullptr) return "out of memory";
    f->interrupt_callback = {&av::Deadline::callback, &deadline};
    AVDictionary* opts = nullptr;
    const AVInputFormat* input = nullptr;
    const std::string timeout_us = std::to_string(options.io_timeout.count() * 1000);
    if (starts_with(url, "rtsp://") || starts_with(url, "rtsps://")) {
      av_dict_set(&opts, "rtsp_transport", "tcp", 0);        // no lost UDP packets, one socket
      av_dict_set(&opts, "timeout", timeout_us.c_str(), 0);  // socket I/O timeout (µs)
    } else if (url.find("://") != std::string::npos || starts_with(target, "pipe:")) {
      av_dict_set(&opts, "rw_timeout", timeout_us.c_str(), 0);
      av_dict_set(&opts, "reconnect", "1", 0);
    } else if (starts_with(url, "/dev/video")) {
      if (register_cameras()) input = av_find_input_format("video4linux2");
      if (input == nullptr) {
        avformat_free_context(f);
        return "no camera support: FFmpeg's libavdevice (" SMOLVLM_AVDEVICE_NAME
               ") could not be opened";
      }
    }
    // Only a camera's frames go straight through: `nobuffer` drops the packets that stream
    // probing reads, and with them the only keyframe of an H.264 file or of a stream's first GOP.
    if (input != nullptr) av_dict_set(&opts, "fflags", "nobuffer", 0);
    f->codec_whitelist = av_strdup(av::allowed_decoders().c_str());
    deadline.arm(options.io_timeout);
    const int err = avformat_open_input(&f, target.c_str(), input, &opts);
    av_dict_free(&opts);
    if (err < 0) return io_error("cannot open", err);
    fmt.reset(f);
    if (!av::container_allowed(f->iformat, true)) {
      return std::string("'") + f->iformat->name + "' is not a video container smolvlm opens (" +
             av::kAllowedContainers + ", RTSP, a camera)";
    }
    std::vector<AVDictionary*> stream_opts(f->nb_streams, nullptr);
    const std::string max_pixels = std::to_string(av::kMaxVideoFramePixels);
    for (AVDictionary*& o : stream_opts) av_dict_set(&o, "max_pixels", max_pixels.c_str(), 0);
    deadline.arm(options.io_timeout);
    const int found =
        avformat_find_stream_info(f, stream_opts.empty() ? nullptr : stream_opts.data());
    for (AVDictionary*& o : stream_opts) av_dict_free(&o);
    stream = av_find_best_stream(f, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
    if (stream < 0) return found < 0 ? "cannot read the stream parameters" : "no video stream";
    const AVCodecParameters* par = f->streams[stream]->codecpar;
    if (!av::codec_allowed(par->codec_id)) {
      return std::string("the codec '") + avcodec_get_name(par->codec_id) +
             "' is not one smolvlm decodes (" + av::kAllowedCodecs + ")";
    }
    const std::string size = av::frame_size_problem(par->width, par->height);
    if (!size.empty()) return size;
    if (found < 0) return "cannot read the stream parameters";
    const AVCodec* codec = avcodec_find_decoder(par->codec_id);
    if (codec == nullptr) return std::string("no decoder for ") + avcodec_get_name(par->codec_id);
    dec.reset(avcodec_alloc_context3(codec));
    if (!dec || avcodec_parameters_to_context(dec.get(), par) < 0)
      return "cannot set up the decoder";
    dec->thread_count = 2;
    dec->max_pixels = av::kMaxVideoFramePixels;
    // No AV_CODEC_FLAG_LOW_DELAY: it makes H.264 give a B-frame stream's frames in decode order,
    // and a stream without B-frames comes out at once anyway.
    if (avcodec_open2(dec.get(), codec, nullptr) < 0) return "cannot open the decoder";
    return {};
  }

  // Sleeps `d` unless stopped first.
  void pause(std::chrono::milliseconds d) {
    const Clock::time_point until = Clock::now() + d;
    while (!stop && Clock::now() < until)
      std::this_thread::sleep_for(
          std::min<Clock::duration>(until - Clock::now(), std::chrono::milliseconds(20)));
  }

  // Decodes until the end, an error or stop; returns why it ended. `frames` counts the frames
  // this run gave.
  std::string run_once(int64_t& frames) {
    std::unique_ptr<AVPacket, av::PacketFreer> packet{av_packet_alloc()};
    std::unique_ptr<AVFrame, av::FrameFreer> frame{av_frame_alloc()};
    if (!packet || !frame) return "out of memory";
    const AVStream* st = fmt->streams[stream];
    const double tb = av_q2d(st->time_base);
    const int64_t start = st->start_time != AV_NOPTS_VALUE ? st->start_time : 0;
    const Clock::time_point wall0 = Clock::now();
    double last_t = 0;
    auto take_frames = [&] {
      while (!stop && avcodec_receive_frame(dec.get(), frame.get()) == 0) {
        const int64_t pts = frame->best_effort_timestamp;
        const double t = pts != AV_NOPTS_VALUE ? static_cast<double>(pts - start) * tb : 0.0;
        if (paced_file) {  // a fake camera: a frame appears when its time has come
          const auto due =
              wall0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(t));
          while (!stop && Clock::now() < due)
            std::this_thread::sleep_for(
                std::min<Clock::duration>(due - Clock::now(), std::chrono::milliseconds(20)));
        }
        ++frames;
        last_t = t;
        std::lock_guard<std::mutex> lock(mu);
        av_frame_unref(newest.get());
        av_frame_move_ref(newest.get(), frame.get());  // the one before is dropped: stale
        ++sequence;
        newest_time_s = t;
        newest_received = std::chrono::system_clock::now();
        cv.notify_all();
      }
    };
    while (!stop) {
      deadline.arm(options.io_timeout);
      const int err = av_read_frame(fmt.get(), packet.get());
      if (err == AVERROR_EOF) {
        avcodec_send_packet(dec.get(), nullptr);  // the frames still inside (a short clip's all)
        take_frames();
        if (paced_file && frames > 0) {
          // The last frame stays for its duration before the file starts again: a one-frame
          // clip would otherwise be reopened as fast as the core allows.
          const AVRational rate = st->avg_frame_rate;
          const double frame_s =
              rate.num > 0 && rate.den > 0 ? std::min(1.0, 1 / av_q2d(rate)) : 0.1;
          pause(std::chrono::duration_cast<std::chrono::milliseconds>(
              wall0 - Clock::now() + std::chrono::duration<double>(last_t + frame_s)));
        }
        return "end of stream";
      }
      if (err < 0) return stop ? "" : io_error("cannot read", err);
      if (packet->stream_index == stream && avcodec_send_packet(dec.get(), packet.get()) >= 0)
        take_frames();
      av_packet_unref(packet.get());
    }
    return "";
  }

  // Runs the source, reopening it when it ends or fails: a file at once while it gives frames
  // (the loop of a fake camera); otherwise after a delay that doubles at each try that gives no
  // frame, up to max_reconnect_delay. A file that gives no frame in a whole pass never will:
  // the source gives up and says why.
  void loop() {
    std::chrono::milliseconds delay = options.reconnect_delay;
    for (;;) {
      int64_t frames = 0;
      std::string why = run_once(frames);
      if (stop) return;
      if (frames == 0) {
        why = why.empty() || why == "end of stream" ? "the source gave no frame"
                                                    : why + " before any frame";
        if (paced_file) {
          std::lock_guard<std::mutex> lock(mu);
          error = "the file holds no frame that decodes";
          gave_up = true;
          cv.notify_all();
          return;
        }
      } else {
        delay = options.reconnect_delay;
      }
      for (;;) {
        if (frames == 0 || !paced_file) {
          if (!why.empty() && why != "end of stream") {
            set_error(why + " (reconnecting in " +
                      (delay.count() < 1000 ? std::to_string(delay.count()) + " ms)"
                                            : std::to_string(delay.count() / 1000) + " s)"));
          }
          pause(delay);
          delay = std::min(delay * 2, options.max_reconnect_delay);
        }
        if (stop) return;
        ++reconnects;
        why = open();
        if (why.empty()) break;
        frames = 0;  // a failed reopen waits, whatever the last run gave
      }
    }
  }
};

bool cameras_supported() { return register_cameras() && av_find_input_format("video4linux2"); }

LiveSource::LiveSource(const std::string& url, const LiveSourceOptions& options)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.url = url;
  m.options = options;
  m.deadline.stop = &m.stop;
  struct stat sb {};
  m.paced_file = ::stat(url.c_str(), &sb) == 0 && S_ISREG(sb.st_mode);
  if (url.find("://") == std::string::npos && ::stat(url.c_str(), &sb) != 0) {
    throw Error("camera " + quote_input(url) + ": no such file or device");
  }
  av_log_set_level(AV_LOG_FATAL);
  if (!m.newest) throw Error("camera " + quote_input(url) + ": out of memory");
  const std::string e = m.open();
  if (!e.empty()) throw Error("camera " + quote_input(url) + ": " + e);
  m.worker = std::thread([&m] { m.loop(); });
}

LiveSource::~LiveSource() {
  impl_->stop = true;
  if (impl_->worker.joinable()) impl_->worker.join();
}

std::optional<LiveFrame> LiveSource::newest(uint64_t after_sequence,
                                            std::chrono::milliseconds wait) {
  Impl& m = *impl_;
  std::unique_ptr<AVFrame, av::FrameFreer> copy{av_frame_alloc()};
  LiveFrame out;
  {
    std::unique_lock<std::mutex> lock(m.mu);
    if (!m.cv.wait_for(lock, wait, [&] { return m.sequence > after_sequence || m.gave_up; }) ||
        m.sequence <= after_sequence) {
      return {};
    }
    if (av_frame_ref(copy.get(), m.newest.get()) < 0) return {};
    out.sequence = m.sequence;
    out.source_time_s = m.newest_time_s;
    out.received = m.newest_received;
  }
  out.image = av::frame_to_rgb(copy.get(), m.sws);  // outside the lock: decoding goes on
  if (out.image.rgb.empty()) return {};
  return out;
}

int LiveSource::reconnects() const { return impl_->reconnects.load(); }

bool LiveSource::gave_up() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->gave_up;
}

std::string LiveSource::last_error() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->error;
}

}  // namespace smolvlm
