// Decoding the sampled frames of a video file with libavformat/libavcodec (anchors §E).
//
// Opening reads the metadata as HF's PyAV backend does, then runs one packet pass (demuxing only,
// no decoding): it counts the frames when the stream has no nb_frames and records each packet's
// pts, so that when every frame has its own timestamp (the index → pts map is exact) a sampled
// frame is reached by seeking to the keyframe before it. Otherwise frames are decoded in order and
// counted in output order, as PyAV enumerates them. Only the sampled frames are kept.
#include <smolvlm/error.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <thread>

#include "video/libav.h"
#include "video/video.h"

namespace smolvlm {

namespace {
using namespace std::chrono_literals;
constexpr auto kIoTimeout = 60s;  // a local read that takes this long is a stalled file system

struct PacketEntry {
  int64_t pts, dts;
  bool key;
};

// Bytes in memory read as a file (the fuzz target's input).
struct MemoryInput {
  const uint8_t* data = nullptr;
  int64_t size = 0, pos = 0;
  static int read(void* self, uint8_t* buf, int n) {
    auto* m = static_cast<MemoryInput*>(self);
    const int64_t left = m->size - m->pos;
    if (left <= 0) return AVERROR_EOF;
    const int64_t take = std::min<int64_t>(n, left);
    std::memcpy(buf, m->data + m->pos, static_cast<size_t>(take));
    m->pos += take;
    return static_cast<int>(take);
  }
  static int64_t seek(void* self, int64_t offset, int whence) {
    auto* m = static_cast<MemoryInput*>(self);
    if ((whence & AVSEEK_SIZE) != 0) return m->size;
    whence &= ~AVSEEK_FORCE;
    const int64_t base = whence == SEEK_CUR ? m->pos : whence == SEEK_END ? m->size : 0;
    if (whence != SEEK_SET && whence != SEEK_CUR && whence != SEEK_END) return -1;
    if (offset > m->size - base || offset < -base) return -1;
    m->pos = base + offset;
    return m->pos;
  }
};
struct IoFreer {
  void operator()(AVIOContext* io) const {
    av_freep(&io->buffer);
    avio_context_free(&io);
  }
};

}  // namespace

struct VideoReader::Impl {
  std::string path;
  av::Deadline deadline;
  MemoryInput memory;                        // from memory when memory.data is set
  std::unique_ptr<AVIOContext, IoFreer> io;  // memory's reader; outlives fmt
  std::unique_ptr<AVFormatContext, av::FormatCloser> fmt;
  std::unique_ptr<AVCodecContext, av::CodecFreer> dec;
  std::unique_ptr<AVPacket, av::PacketFreer> packet{av_packet_alloc()};
  std::unique_ptr<AVFrame, av::FrameFreer> frame{av_frame_alloc()};
  SwsContext* sws = nullptr;
  int stream = -1;
  VideoInfo info;
  std::vector<int64_t> frame_pts;      // seekable_index: pts of frame i, ascending
  std::vector<PacketEntry> keyframes;  // seekable_index: ascending pts
  bool input_done = false;             // the demuxer hit the end, the decoder was drained
  int64_t last_pts = AV_NOPTS_VALUE;   // pts of the last frame the decoder gave

  ~Impl() {
    dec.reset();
    fmt.reset();
    sws_freeContext(sws);
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw Error("video '" + path + "': " + what);
  }

  void open_demuxer() {
    fmt.reset();
    AVFormatContext* f = avformat_alloc_context();
    if (f == nullptr) fail("out of memory");
    f->interrupt_callback = {&av::Deadline::callback, &deadline};
    f->codec_whitelist = av_strdup(av::allowed_decoders().c_str());
    if (memory.data != nullptr) {
      io.reset();
      memory.pos = 0;
      constexpr int kBuffer = 32768;
      auto* buffer = static_cast<uint8_t*>(av_malloc(kBuffer));
      if (buffer != nullptr) {
        io.reset(avio_alloc_context(buffer, kBuffer, 0, &memory, &MemoryInput::read, nullptr,
                                    &MemoryInput::seek));
        if (!io) av_free(buffer);
      }
      if (!io) {
        avformat_free_context(f);
        fail("out of memory");
      }
      f->pb = io.get();
      f->flags |= AVFMT_FLAG_CUSTOM_IO;
    }
    deadline.arm(kIoTimeout);
    const int err = avformat_open_input(&f, path.c_str(), nullptr, nullptr);
    if (err < 0) fail("cannot open: " + av::error_text(err));  // f is freed on failure
    fmt.reset(f);
    if (!av::container_allowed(f->iformat, false)) {
      fail(std::string("'") + f->iformat->name + "' is not a video container smolvlm opens (" +
           av::kAllowedContainers + ")");
    }
    // Frames past the size limit are refused by the decoders find_stream_info opens too.
    std::vector<AVDictionary*> options(f->nb_streams, nullptr);
    const std::string max_pixels = std::to_string(av::kMaxVideoFramePixels);
    for (AVDictionary*& o : options) av_dict_set(&o, "max_pixels", max_pixels.c_str(), 0);
    deadline.arm(kIoTimeout);
    const int found = avformat_find_stream_info(f, options.empty() ? nullptr : options.data());
    for (AVDictionary*& o : options) av_dict_free(&o);
    stream = av_find_best_stream(f, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
    if (stream < 0 || (f->streams[stream]->disposition & AV_DISPOSITION_ATTACHED_PIC) != 0) {
      fail(found < 0 ? "cannot read the stream parameters" : "no video stream");
    }
    const AVCodecParameters* par = f->streams[stream]->codecpar;
    if (!av::codec_allowed(par->codec_id)) {
      fail(std::string("the codec '") + avcodec_get_name(par->codec_id) +
           "' is not one smolvlm decodes (" + av::kAllowedCodecs + ")");
    }
    const std::string size = av::frame_size_problem(par->width, par->height);
    if (!size.empty()) fail(size);
    if (found < 0) fail("cannot read the stream parameters");
  }

  void open_decoder() {
    const AVCodecParameters* par = fmt->streams[stream]->codecpar;
    const AVCodec* codec = avcodec_find_decoder(par->codec_id);
    if (codec == nullptr) {
      fail(std::string("no decoder for codec ") + avcodec_get_name(par->codec_id) +
           " in this FFmpeg");
    }
    dec.reset(avcodec_alloc_context3(codec));
    if (!dec || avcodec_parameters_to_context(dec.get(), par) < 0)
      fail("cannot set up the decoder");
    dec->max_pixels = av::kMaxVideoFramePixels;  // a stream may change its size midway
    dec->thread_count = static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 8u));
    // Each frame thread holds frames of its own: past 1080p, two threads keep a 4K clip's
    // decoding near 300 MB.
    if (static_cast<int64_t>(par->width) * par->height > 1920 * 1088) dec->thread_count = 2;
    dec->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
    const int err = avcodec_open2(dec.get(), codec, nullptr);
    if (err < 0)
      fail("cannot open the " + std::string(codec->name) + " decoder: " + av::error_text(err));
    input_done = false;
    last_pts = AV_NOPTS_VALUE;
  }

  void read_metadata() {
    const AVStream* st = fmt->streams[stream];
    AVRational rate = st->avg_frame_rate;
    if (rate.num <= 0 || rate.den <= 0) rate = st->r_frame_rate;  // PyAV would have none
    if (rate.num <= 0 || rate.den <= 0) fail("the video stream has no frame rate");
    info.native_fps = av_q2d(rate);
    info.width = st->codecpar->width;
    info.height = st->codecpar->height;
    info.codec = avcodec_get_name(st->codecpar->codec_id);

    // The packet pass: demuxing reads the file but decodes nothing.
    std::vector<PacketEntry> packets;
    bool exact = (fmt->iformat->flags & AVFMT_NOTIMESTAMPS) == 0 && fmt->pb != nullptr &&
                 (fmt->pb->seekable & AVIO_SEEKABLE_NORMAL) != 0;
    for (;;) {
      deadline.arm(kIoTimeout);
      const int err = av_read_frame(fmt.get(), packet.get());
      if (err == AVERROR_EOF) break;
      if (err < 0) fail("cannot read: " + av::error_text(err));
      if (packet->stream_index == stream) {
        if (packet->pts == AV_NOPTS_VALUE ||
            (packet->flags & (AV_PKT_FLAG_DISCARD | AV_PKT_FLAG_CORRUPT)) != 0) {
          exact = false;
        }
        packets.push_back({packet->pts, packet->dts, (packet->flags & AV_PKT_FLAG_KEY) != 0});
      }
      av_packet_unref(packet.get());
    }
    if (packets.empty()) fail("the video stream holds no frames");

    info.total_frames = st->nb_frames;
    if (info.total_frames <= 0) {
      info.total_frames = static_cast<int64_t>(packets.size());
      info.frames_counted = true;
    }
    info.duration_s = static_cast<double>(info.total_frames) / info.native_fps;

    // Exact map: one packet per counted frame, each with its own pts, the first a keyframe.
    exact = exact && static_cast<int64_t>(packets.size()) == info.total_frames;
    if (exact) {
      frame_pts.reserve(packets.size());
      for (const PacketEntry& p : packets) frame_pts.push_back(p.pts);
      std::sort(frame_pts.begin(), frame_pts.end());
      exact = std::adjacent_find(frame_pts.begin(), frame_pts.end()) == frame_pts.end();
      for (const PacketEntry& p : packets)
        if (p.key) keyframes.push_back(p);
      std::sort(keyframes.begin(), keyframes.end(),
                [](const PacketEntry& a, const PacketEntry& b) { return a.pts < b.pts; });
      exact = exact && !keyframes.empty() && keyframes.front().pts == frame_pts.front();
    }
    info.seekable_index = exact;
    if (!exact) {
      frame_pts.clear();
      keyframes.clear();
    }
  }

  // The next frame out of the decoder, or false at the end of the stream.
  bool decode_next() {
    for (;;) {
      const int got = avcodec_receive_frame(dec.get(), frame.get());
      if (got == 0) {
        last_pts = frame->best_effort_timestamp != AV_NOPTS_VALUE ? frame->best_effort_timestamp
                                                                  : frame->pts;
        return true;
      }
      if (got == AVERROR_EOF) return false;
      if (got != AVERROR(EAGAIN)) fail("cannot decode: " + av::error_text(got));
      if (input_done) return false;
      deadline.arm(kIoTimeout);
      const int err = av_read_frame(fmt.get(), packet.get());
      if (err == AVERROR_EOF) {
        input_done = true;
        avcodec_send_packet(dec.get(), nullptr);  // drain the frames still inside
        continue;
      }
      if (err < 0) fail("cannot read: " + av::error_text(err));
      if (packet->stream_index == stream) {
        // A damaged packet loses its frame, as in PyAV; the frame count then tells.
        const int sent = avcodec_send_packet(dec.get(), packet.get());
        if (sent < 0 && sent != AVERROR_INVALIDDATA) {
          av_packet_unref(packet.get());
          fail("cannot decode: " + av::error_text(sent));
        }
      }
      av_packet_unref(packet.get());
    }
  }

  Image current_rgb() {
    Image img = av::frame_to_rgb(frame.get(), sws);
    if (img.rgb.empty()) fail("cannot convert the frames' pixel format to RGB");
    return img;
  }

  // Decodes the frame with pts `target` by seeking to the keyframe before it unless the decoder
  // already stands between that keyframe and the target. False when the map proved wrong.
  bool seek_to(int64_t target) {
    auto kf = std::upper_bound(keyframes.begin(), keyframes.end(), target,
                               [](int64_t t, const PacketEntry& k) { return t < k.pts; });
    if (kf == keyframes.begin()) return false;
    --kf;
    const bool forward = last_pts != AV_NOPTS_VALUE && last_pts < target && kf->pts <= last_pts;
    if (!forward) {
      const int64_t at = kf->dts != AV_NOPTS_VALUE ? std::min(kf->dts, kf->pts) : kf->pts;
      deadline.arm(kIoTimeout);
      if (av_seek_frame(fmt.get(), stream, at, AVSEEK_FLAG_BACKWARD) < 0) return false;
      avcodec_flush_buffers(dec.get());
      input_done = false;
      last_pts = AV_NOPTS_VALUE;
    }
    while (decode_next()) {
      if (last_pts == target) return true;
      if (last_pts > target && last_pts != AV_NOPTS_VALUE) return false;
    }
    return false;
  }
};

VideoReader::VideoReader(const std::string& path) : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  struct stat sb {};
  if (::stat(path.c_str(), &sb) != 0) impl_->fail("no such file");
  if (!S_ISREG(sb.st_mode)) impl_->fail("not a regular file");
  if (sb.st_size == 0) impl_->fail("the file is empty");
  open();
}

VideoReader::VideoReader(const std::string& name, const uint8_t* data, size_t size)
    : impl_(std::make_unique<Impl>()) {
  impl_->path = name;
  if (size == 0) impl_->fail("the file is empty");
  impl_->memory.data = data;
  impl_->memory.size = static_cast<int64_t>(size);
  open();
}

void VideoReader::open() {
  if (!impl_->packet || !impl_->frame) impl_->fail("out of memory");
  // Our one-line errors say what went wrong; libav's own log would add lines to stderr.
  av_log_set_level(AV_LOG_FATAL);
  impl_->open_demuxer();
  impl_->read_metadata();
  impl_->open_demuxer();  // back to the start, whatever the container's seeking can do
  impl_->open_decoder();
}

VideoReader::~VideoReader() = default;

const VideoInfo& VideoReader::info() const { return impl_->info; }

void VideoReader::read_frames(const std::vector<int>& indices,
                              const std::function<void(int, Image&&)>& on_frame) {
  Impl& m = *impl_;
  for (size_t i = 0; i < indices.size(); ++i) {
    if (indices[i] < 0 || indices[i] >= m.info.total_frames ||
        (i > 0 && indices[i] <= indices[i - 1])) {
      throw Error("video '" + m.path + "': frame indices must ascend within the video");
    }
  }
  size_t next = 0;
  if (m.info.seekable_index) {
    for (; next < indices.size(); ++next) {
      if (!m.seek_to(m.frame_pts[static_cast<size_t>(indices[next])])) break;
      on_frame(indices[next], m.current_rgb());
    }
    if (next == indices.size()) return;
    // The decoder disagreed with the packet map: count frames from the start instead.
    m.open_demuxer();
    m.open_decoder();
  }
  int64_t ordinal = 0;
  while (next < indices.size() && m.decode_next()) {
    if (ordinal == indices[next]) {
      on_frame(indices[next], m.current_rgb());
      ++next;
    }
    ++ordinal;
  }
  if (ordinal == 0 && next == 0) m.fail("no frame could be decoded");
  // Frames the container counted but the decoder never gave are left out, as PyAV leaves them.
}

VideoClip read_video(const std::string& path, const VideoSampling& sampling,
                     const VideoProgress& progress) {
  VideoReader reader(path);
  VideoClip clip;
  clip.info = reader.info();
  const std::vector<int> wanted =
      sample_frame_indices(clip.info.total_frames, clip.info.native_fps, sampling);
  const int total = static_cast<int>(wanted.size());
  if (progress) progress(0, total);
  reader.read_frames(wanted, [&](int index, Image&& frame) {
    clip.indices.push_back(index);
    clip.timestamps_s.push_back(index / clip.info.native_fps);
    clip.frames.push_back(std::move(frame));
    if (progress) progress(static_cast<int>(clip.frames.size()), total);
  });
  if (clip.frames.empty()) throw Error("video '" + path + "': no frame could be decoded");
  return clip;
}

bool video_supported() { return true; }

}  // namespace smolvlm
