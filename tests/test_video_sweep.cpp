// The conversion of decoded frames to RGB swept over frame sizes, pixel formats, codecs and
// containers (libswscale's SIMD wrote past a destination sized width x height x 3).
// The clips are written at test time with libavcodec's own encoders, two frames each, and decoded
// with every destination handed to libswscale followed by a page with no access
// (av::set_guard_pages): a write past what libav was told it may use faults. AddressSanitizer
// alone cannot see it, libav* is not instrumented. Every frame is then compared with PyAV's.
#include <gtest/gtest.h>
#include <smolvlm/error.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli_runner.h"
#include "test_support.h"
#include "video/video.h"

#if SMOLVLM_HAVE_VIDEO
#include "video/libav.h"
extern "C" {
#include <libavutil/pixdesc.h>
}
#endif

namespace smolvlm {
namespace {

#if SMOLVLM_HAVE_VIDEO

constexpr int kFrames = 2;

struct Clip {
  std::string encoder, ext;
  AVPixelFormat pix;
  int width, height;
  std::vector<std::pair<std::string, std::string>> options;  // the encoder's private options
  std::string name() const {
    return encoder + "/" + ext + "/" + av_get_pix_fmt_name(pix) + "/" + std::to_string(width) +
           "x" + std::to_string(height);
  }
};

// Frame k's pixel (x, y): gradients both ways, so every row, column and chroma sample matters.
std::array<uint8_t, 3> pattern(int x, int y, int k) {
  return {static_cast<uint8_t>(x * 7 + k * 60), static_cast<uint8_t>(y * 5 + x),
          static_cast<uint8_t>((x + y) * 3 + k * 90)};
}

struct OutputCloser {
  void operator()(AVFormatContext* f) const {
    if (f->pb != nullptr && (f->oformat->flags & AVFMT_NOFILE) == 0) avio_closep(&f->pb);
    avformat_free_context(f);
  }
};

// Writes kFrames frames of `c` to `path`; empty on success, else why the encoder or muxer
// refused (an encoder that takes no odd sizes, a format it lacks).
std::string write_clip(const std::string& path, const Clip& c) {
  const AVCodec* codec = avcodec_find_encoder_by_name(c.encoder.c_str());
  if (codec == nullptr) return "this FFmpeg has no " + c.encoder + " encoder";
  AVFormatContext* raw_oc = nullptr;
  if (avformat_alloc_output_context2(&raw_oc, nullptr, nullptr, path.c_str()) < 0)
    return "no muxer for ." + c.ext;
  std::unique_ptr<AVFormatContext, OutputCloser> oc(raw_oc);
  std::unique_ptr<AVCodecContext, av::CodecFreer> ctx(avcodec_alloc_context3(codec));
  ctx->width = c.width;
  ctx->height = c.height;
  ctx->pix_fmt = c.pix;
  ctx->time_base = {1, 10};
  ctx->framerate = {10, 1};
  ctx->gop_size = 10;
  ctx->max_b_frames = 0;
  ctx->bit_rate = 1000000;
  if ((oc->oformat->flags & AVFMT_GLOBALHEADER) != 0) ctx->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  AVDictionary* opts = nullptr;
  for (const auto& [k, v] : c.options) av_dict_set(&opts, k.c_str(), v.c_str(), 0);
  const int opened = avcodec_open2(ctx.get(), codec, &opts);
  av_dict_free(&opts);
  if (opened < 0) return "the encoder refuses it (" + av::error_text(opened) + ")";
  AVStream* st = avformat_new_stream(oc.get(), nullptr);
  avcodec_parameters_from_context(st->codecpar, ctx.get());
  st->time_base = ctx->time_base;
  st->avg_frame_rate = ctx->framerate;
  if ((oc->oformat->flags & AVFMT_NOFILE) == 0 &&
      avio_open(&oc->pb, path.c_str(), AVIO_FLAG_WRITE) < 0) {
    return "cannot write " + path;
  }
  if (avformat_write_header(oc.get(), nullptr) < 0) return "the muxer refuses it";
  std::unique_ptr<AVPacket, av::PacketFreer> pkt(av_packet_alloc());
  auto drain = [&]() -> std::string {
    for (;;) {
      const int got = avcodec_receive_packet(ctx.get(), pkt.get());
      if (got == AVERROR(EAGAIN) || got == AVERROR_EOF) return "";
      if (got < 0) return "the encoder failed (" + av::error_text(got) + ")";
      av_packet_rescale_ts(pkt.get(), ctx->time_base, st->time_base);
      pkt->stream_index = st->index;
      if (av_interleaved_write_frame(oc.get(), pkt.get()) < 0) return "the muxer failed";
    }
  };
  // The source pictures in frames libav allocated itself (padded rows: libswscale reads whole
  // vectors too).
  std::unique_ptr<AVFrame, av::FrameFreer> rgb(av_frame_alloc());
  rgb->format = AV_PIX_FMT_RGB24;
  rgb->width = c.width;
  rgb->height = c.height;
  if (av_frame_get_buffer(rgb.get(), 0) < 0) return "out of memory";
  std::unique_ptr<SwsContext, av::SwsFreer> sws;
  if (c.pix != AV_PIX_FMT_PAL8) {
    sws.reset(sws_getContext(c.width, c.height, AV_PIX_FMT_RGB24, c.width, c.height, c.pix,
                             SWS_BICUBIC, nullptr, nullptr, nullptr));
    if (!sws) return "libswscale cannot write it";
  }
  for (int k = 0; k < kFrames; ++k) {
    std::unique_ptr<AVFrame, av::FrameFreer> frame(av_frame_alloc());
    frame->format = c.pix;
    frame->width = c.width;
    frame->height = c.height;
    if (av_frame_get_buffer(frame.get(), 0) < 0) return "out of memory";
    if (c.pix == AV_PIX_FMT_PAL8) {  // libswscale writes no palettes: indices and a palette
      auto* palette = reinterpret_cast<uint32_t*>(frame->data[1]);
      for (uint32_t i = 0; i < 256; ++i)
        palette[i] = 0xFF000000u | ((i * 3) & 255) << 16 | (255 - i) << 8 | ((i * 7) & 255);
      for (int y = 0; y < c.height; ++y)
        for (int x = 0; x < c.width; ++x)
          frame->data[0][y * frame->linesize[0] + x] = static_cast<uint8_t>(x + 2 * y + 37 * k);
    } else {
      for (int y = 0; y < c.height; ++y) {
        for (int x = 0; x < c.width; ++x) {
          const auto p = pattern(x, y, k);
          std::copy(p.begin(), p.end(), rgb->data[0] + y * rgb->linesize[0] + 3 * x);
        }
      }
      sws_scale(sws.get(), rgb->data, rgb->linesize, 0, c.height, frame->data, frame->linesize);
    }
    frame->pts = k;
    const int sent = avcodec_send_frame(ctx.get(), frame.get());
    if (sent < 0) return "the encoder refuses the frame (" + av::error_text(sent) + ")";
    if (std::string e = drain(); !e.empty()) return e;
  }
  avcodec_send_frame(ctx.get(), nullptr);
  if (std::string e = drain(); !e.empty()) return e;
  if (av_write_trailer(oc.get()) < 0) return "the muxer failed at the end";
  return "";
}

// Combinations an encoder cannot make, left out before it is asked (a refused libx264 open leaks
// its options: LeakSanitizer would fail the suite): name, why.
std::vector<std::pair<std::string, std::string>> g_left_out;

std::vector<Clip> sweep() {
  using Size = std::pair<int, int>;
  const std::vector<Size> all = {{1, 1},    {2, 2},    {3, 700},  {7, 5},
                                 {90, 160}, {1000, 8}, {642, 482}};
  const std::vector<Size> some = {{7, 5}, {90, 160}, {642, 482}};
  const std::vector<Size> two = {{7, 5}, {90, 160}};
  std::vector<Clip> v;
  auto add = [&](const std::string& encoder, const std::string& ext,
                 std::vector<AVPixelFormat> pixes, const std::vector<Size>& sizes,
                 std::vector<std::pair<std::string, std::string>> options = {}) {
    for (AVPixelFormat pix : pixes) {
      for (const Size& s : sizes) {
        Clip c{encoder, ext, pix, s.first, s.second, options};
        const AVPixFmtDescriptor* d = av_pix_fmt_desc_get(pix);
        const bool odd = (s.first & ((1 << d->log2_chroma_w) - 1)) != 0 ||
                         (s.second & ((1 << d->log2_chroma_h) - 1)) != 0;
        if ((encoder == "libx264" || encoder == "libx265") && odd) {
          g_left_out.emplace_back(c.name(), encoder + " takes no odd sizes with subsampled chroma");
        } else {
          v.push_back(std::move(c));
        }
      }
    }
  };
  add("ffv1", "mkv",
      {AV_PIX_FMT_YUV420P, AV_PIX_FMT_YUV422P, AV_PIX_FMT_YUV444P, AV_PIX_FMT_YUV420P10LE,
       AV_PIX_FMT_GRAY8, AV_PIX_FMT_BGR0},
      all);
  add("png", "mov",
      {AV_PIX_FMT_RGB24, AV_PIX_FMT_RGBA, AV_PIX_FMT_PAL8, AV_PIX_FMT_RGB48BE, AV_PIX_FMT_GRAY8},
      all);
  add("libx264", "mp4", {AV_PIX_FMT_YUV420P}, all, {{"preset", "ultrafast"}});
  add("libx264", "mkv", {AV_PIX_FMT_YUV422P, AV_PIX_FMT_YUV444P, AV_PIX_FMT_YUV420P10LE}, some,
      {{"preset", "ultrafast"}});
  add("libx265", "mkv", {AV_PIX_FMT_YUV420P}, {{90, 160}, {642, 482}},
      {{"preset", "ultrafast"}, {"x265-params", "log-level=none"}});
  add("mjpeg", "avi", {AV_PIX_FMT_YUVJ420P}, all);
  add("mpeg4", "avi", {AV_PIX_FMT_YUV420P}, some);
  add("libvpx", "webm", {AV_PIX_FMT_YUV420P}, some, {{"deadline", "realtime"}, {"cpu-used", "8"}});
  add("libvpx-vp9", "webm", {AV_PIX_FMT_YUV420P, AV_PIX_FMT_YUV444P}, two,
      {{"deadline", "realtime"}, {"cpu-used", "8"}});
  add("libaom-av1", "mkv", {AV_PIX_FMT_YUV420P}, two, {{"usage", "realtime"}, {"cpu-used", "8"}});
  add("gif", "gif", {AV_PIX_FMT_PAL8}, all);
  add("apng", "apng", {AV_PIX_FMT_RGBA, AV_PIX_FMT_RGB24}, some);
  add("wrapped_avframe", "y4m", {AV_PIX_FMT_YUV420P, AV_PIX_FMT_YUV444P, AV_PIX_FMT_GRAY8}, some);
  add("rawvideo", "avi", {AV_PIX_FMT_BGR24}, some);
  return v;
}

// PyAV's frames of each clip (tools/video_pyav_frames.py), by path; false without python3-av.
bool pyav_frames(const std::vector<std::string>& paths, std::map<std::string, int>& frames) {
  if (access("/usr/bin/python3", X_OK) != 0) return false;
  std::string list;
  for (const std::string& p : paths) list += p + "\n";
  const test::CliResult r =
      test::run_cli({std::string(SMOLVLM_FIXTURES_DIR) + "/../../tools/video_pyav_frames.py"}, list,
                    {}, test::CliProcess::Ms(120000), "/usr/bin/python3");
  if (r.status == 3) return false;
  EXPECT_EQ(r.status, 0) << r.err;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    const nlohmann::json j = nlohmann::json::parse(line);
    frames[j["path"].get<std::string>()] = j["frames"].get<int>();
  }
  return r.status == 0;
}

struct GuardPages {
  GuardPages() { av::set_guard_pages(true); }
  ~GuardPages() { av::set_guard_pages(false); }
};

TEST(VideoSweep, EverySizeAndPixelFormatConvertsCleanlyAndAsPyAvDoes) {
  test::TempDir dir;
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::string> paths;
  std::vector<Image> ours;  // kFrames per written clip
  std::map<std::string, int> encoded_per_encoder;
  int skipped = 0;
  const GuardPages guard;
  g_left_out.clear();
  const std::vector<Clip> clips = sweep();
  for (const auto& [name, why] : g_left_out) {
    std::printf("skipped %s: %s\n", name.c_str(), why.c_str());
    ++skipped;
  }
  for (const Clip& c : clips) {
    std::string name = c.name();
    std::replace(name.begin(), name.end(), '/', '_');
    const std::string path = dir.path() + "/" + name + "." + c.ext;
    const std::string why = write_clip(path, c);
    if (!why.empty()) {
      std::printf("skipped %s: %s\n", c.name().c_str(), why.c_str());
      ++skipped;
      continue;
    }
    ++encoded_per_encoder[c.encoder];
    SCOPED_TRACE(c.name());
    try {
      VideoReader reader(path);
      EXPECT_EQ(reader.info().width, c.width);
      EXPECT_EQ(reader.info().height, c.height);
      ASSERT_EQ(reader.info().total_frames, kFrames);
      std::vector<Image> got;
      reader.read_frames({0, 1}, [&](int, Image&& f) { got.push_back(std::move(f)); });
      ASSERT_EQ(got.size(), static_cast<size_t>(kFrames));
      for (Image& f : got) {
        ASSERT_EQ(f.width, c.width);
        ASSERT_EQ(f.height, c.height);
        ASSERT_EQ(f.rgb.size(), static_cast<size_t>(c.width) * c.height * 3);
        ours.push_back(std::move(f));
      }
      paths.push_back(path);
    } catch (const Error& e) {
      ADD_FAILURE() << e.what();
    }
  }
  const double decode_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%zu clips written and decoded with guard pages in %.2f s, %d combinations skipped\n",
              paths.size(), decode_s, skipped);
  // The lossless encoders that every FFmpeg has take every size and format asked of them.
  EXPECT_EQ(encoded_per_encoder["ffv1"], 42);
  EXPECT_EQ(encoded_per_encoder["png"], 35);
  EXPECT_EQ(encoded_per_encoder["gif"], 7);

  std::map<std::string, int> py;
  if (!pyav_frames(paths, py)) GTEST_SKIP() << "python3-av is needed to compare with PyAV";
  for (size_t i = 0; i < paths.size(); ++i) {
    SCOPED_TRACE(paths[i]);
    ASSERT_EQ(py[paths[i]], kFrames);
    std::ifstream in(paths[i] + ".rgb", std::ios::binary);
    for (int k = 0; k < kFrames; ++k) {
      const Image& f = ours[i * kFrames + static_cast<size_t>(k)];
      std::vector<uint8_t> want(f.rgb.size());
      in.read(reinterpret_cast<char*>(want.data()), static_cast<std::streamsize>(want.size()));
      ASSERT_TRUE(in) << "PyAV's frame " << k << " is shorter";
      // The video suite's tolerance: PyAV's pixels exactly.
      size_t differ = 0;
      for (size_t b = 0; b < want.size(); ++b) differ += want[b] != f.rgb[b];
      EXPECT_EQ(differ, 0u) << "frame " << k << ": " << differ << " of " << want.size()
                            << " bytes differ from PyAV's";
    }
  }
  std::printf("sweep and PyAV comparison in %.2f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

// The checker sees this class of bug: the layout the conversion used before (rows of exactly
// width x 3 bytes, nothing after the last) faults at the guard page for sizes libswscale's SIMD
// overruns.
TEST(VideoSweepDeathTest, GuardPageCatchesAnExactlySizedDestination) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto convert_exactly_sized = [] {
    for (const auto& [w, h] : std::vector<std::pair<int, int>>{{90, 160}, {7, 5}, {642, 482}}) {
      std::unique_ptr<AVFrame, av::FrameFreer> yuv(av_frame_alloc());
      yuv->format = AV_PIX_FMT_YUV420P;
      yuv->width = w;
      yuv->height = h;
      if (av_frame_get_buffer(yuv.get(), 0) < 0) return;
      for (int p = 0; p < 3; ++p)
        std::memset(yuv->data[p], 100,
                    static_cast<size_t>(yuv->linesize[p]) * ((h + 1) / (p ? 2 : 1)));
      const size_t bytes = static_cast<size_t>(w) * h * 3;
      const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
      const size_t span = (bytes + page - 1) / page * page;
      auto* m = static_cast<uint8_t*>(
          mmap(nullptr, span + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
      mprotect(m + span, page, PROT_NONE);
      uint8_t* dst[4] = {m + span - bytes, nullptr, nullptr, nullptr};
      const int stride[4] = {w * 3, 0, 0, 0};
      SwsContext* sws = sws_getContext(w, h, AV_PIX_FMT_YUV420P, w, h, AV_PIX_FMT_RGB24,
                                       SWS_BILINEAR, nullptr, nullptr, nullptr);
      sws_scale(sws, yuv->data, yuv->linesize, 0, h, dst, stride);
      sws_freeContext(sws);
      munmap(m, span + page);
    }
    std::fprintf(stderr, "no write past the end\n");
    std::exit(0);
  };
  EXPECT_DEATH(convert_exactly_sized(), "");
}

#endif

}  // namespace
}  // namespace smolvlm
