// smolvlm watch: asks the same question about a live source's newest frame at an interval.
#include <smolvlm/smolvlm.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "cli.h"
#include "formats/mapped_file.h"
#include "util/input_text.h"
#include "video/live_source.h"

namespace smolvlm::cli {

namespace {

const char kWatchUsage[] =
    "usage: smolvlm watch -m MODEL_DIR --camera SOURCE -p PROMPT [options]\n"
    "\n"
    "Every interval, takes the newest frame of SOURCE (older ones are dropped), and unless it\n"
    "looks the same as the last one answered, asks PROMPT about it and prints the answer with\n"
    "the time. Reconnects when the source fails, waiting longer after each try that gives no\n"
    "frame (1 s, doubling up to 30 s); a file with no frame that decodes is an error. Ctrl-C "
    "stops.\n"
    "\n";

std::atomic<bool> g_stop{false};
extern "C" void watch_on_sigint(int) { g_stop.store(true); }

std::chrono::milliseconds parse_duration(const std::string& flag, const std::string& text) {
  size_t digits = 0;
  while (digits < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[digits])) || text[digits] == '.'))
    ++digits;
  const std::string unit = text.substr(digits);
  double scale = 1000;  // plain numbers are seconds
  if (unit == "ms") {
    scale = 1;
  } else if (unit == "m") {
    scale = 60000;
  } else if (unit != "s" && !unit.empty()) {
    throw UsageError(flag + " expects a duration such as 5s, 500ms or 1m, got " +
                     quote_input(text));
  }
  const double v = parse_double(flag, text.substr(0, digits), 0.001, 1e7);
  return std::chrono::milliseconds(static_cast<int64_t>(v * scale + 0.5));
}

std::string local_time(std::chrono::system_clock::time_point t, bool iso) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  if (iso) {
    gmtime_r(&secs, &tm);
  } else {
    localtime_r(&secs, &tm);
  }
  char buf[40];
  std::strftime(buf, sizeof buf, iso ? "%Y-%m-%dT%H:%M:%S" : "%Y-%m-%d %H:%M:%S", &tm);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
  char out[64];
  std::snprintf(out, sizeof out, iso ? "%s.%03lldZ" : "%s.%03lld", buf, static_cast<long long>(ms));
  return out;
}

// What watch's command line sets.
struct WatchSettings {
  LoadFlags load;
  GenerationOptions gen;
  std::string camera, prompt;
  bool json = false;
  std::chrono::milliseconds every{5000}, io_timeout{5000}, duration{0};
  int max_answers = 0;
  double change = 3;
  WatchSettings() { gen.max_new_tokens = 64; }
};

// watch's flags: the load flags, its own, then the sampling flags.
FlagTable watch_flags(WatchSettings& s) {
  FlagTable flags;
  add_load_flags(flags, s.load);
  flags.add({"--camera"}, "SOURCE",
            "/dev/video0, rtsp://... (over TCP), http://..., a named pipe,\n"
            "or a video file (played at its frame rate and looped: a fake\n"
            "camera)",
            [&](const std::string&, const std::string& v) { s.camera = v; });
  flags.add({"-p", "--prompt"}, "TEXT", "the question asked about each frame",
            [&](const std::string&, const std::string& v) { s.prompt = v; });
  flags.add({"--every"}, "D", "the interval, e.g. 5s, 500ms, 1m (default 5s)",
            [&](const std::string& a, const std::string& v) { s.every = parse_duration(a, v); });
  flags.add(
      {"--change"}, "T",
      "skip a frame whose 16x16 grey thumbnail differs from the last\n"
      "answered one by less than T on average (0-255; default 3)",
      [&](const std::string& a, const std::string& v) { s.change = parse_double(a, v, 0, 255); });
  flags.add({"--max-answers"}, "N", "stop after N answers",
            [&](const std::string& a, const std::string& v) {
              s.max_answers = parse_int(a, v, 1, 1 << 30);
            });
  flags.add({"--duration"}, "D", "stop after D",
            [&](const std::string& a, const std::string& v) { s.duration = parse_duration(a, v); });
  flags.add(
      {"--io-timeout"}, "D", "a source read that stalls longer fails (default 5s)",
      [&](const std::string& a, const std::string& v) { s.io_timeout = parse_duration(a, v); });
  flags.add({"-n", "--max-new-tokens"}, "N", "answer length cap (default 64)",
            [&](const std::string& a, const std::string& v) {
              s.gen.max_new_tokens = parse_int(a, v, 1, 1 << 20);
            });
  add_generation_flags(flags, s.gen);
  flags.add({"--json"}, "", "one JSON object a line: time, frame, source_time_s, answer, ...",
            [&](const std::string&, const std::string&) { s.json = true; });
  return flags;
}

}  // namespace

int run_watch(int argc, char** argv) {
  WatchSettings settings;
  const FlagTable flags = watch_flags(settings);
  if (!flags.parse(argc, argv)) {
    std::fputs((kWatchUsage + flags.help()).c_str(), stdout);
    return 0;
  }
  const std::string& model_dir = settings.load.model;
  const std::string &camera = settings.camera, &prompt = settings.prompt;
  const auto every = settings.every, io_timeout = settings.io_timeout, duration = settings.duration;
  const int max_answers = settings.max_answers;
  const double change = settings.change;
  const bool json = settings.json;
  GenerationOptions& gen = settings.gen;
  if (model_dir.empty()) throw UsageError("-m MODEL_DIR is required");
  if (camera.empty()) throw UsageError("--camera SOURCE is required");
  if (prompt.empty()) throw UsageError("-p PROMPT is required");

  auto engine = Engine::load(model_dir, settings.load.options);
  LiveSourceOptions source_options;
  source_options.io_timeout = io_timeout;
  LiveSource source(camera, source_options);
  std::signal(SIGINT, watch_on_sigint);
  gen.cancel = &g_stop;

  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  auto out_of_time = [&] { return duration.count() > 0 && Clock::now() - start >= duration; };
  Clock::time_point next = start;
  uint64_t last_sequence = 0;
  Image last_answered;
  int answers = 0, skipped = 0;
  std::string reported_error;
  while (!g_stop && !out_of_time() && (max_answers == 0 || answers < max_answers)) {
    while (!g_stop && Clock::now() < next && !out_of_time())
      std::this_thread::sleep_for(
          std::min<Clock::duration>(next - Clock::now(), std::chrono::milliseconds(50)));
    if (g_stop || out_of_time()) break;
    next += every;
    if (next < Clock::now()) next = Clock::now() + every;  // an answer took longer: no backlog
    std::optional<LiveFrame> frame = source.newest(last_sequence, std::min(every, io_timeout));
    if (!frame) {
      if (source.gave_up())
        throw Error("camera " + quote_input(camera) + ": " + one_line(source.last_error()));
      const std::string e = source.last_error();  // says when the next try comes
      if (!e.empty() && e != reported_error) {
        std::fprintf(stderr, "smolvlm watch: %s: %s\n", quote_input(camera).c_str(),
                     one_line(e).c_str());
        reported_error = e;
      }
      continue;
    }
    last_sequence = frame->sequence;
    if (!last_answered.rgb.empty() && picture_change(last_answered, frame->image) < change) {
      ++skipped;
      continue;
    }
    last_answered = frame->image;
    const Conversation conv = {
        {"user", {Content::image(std::move(frame->image)), Content::text(prompt)}}};
    const Result r = engine->generate(conv, gen);
    if (r.cancelled && g_stop) break;
    ++answers;
    if (json) {
      const nlohmann::json line = {
          {"time", local_time(frame->received, true)},
          {"frame", frame->sequence},
          {"source_time_s", frame->source_time_s},
          {"skipped_since_last", skipped},
          {"reconnects", source.reconnects()},
          {"answer", r.text},
          {"tokens", r.tokens},
          {"ms", r.metrics.vision_ms + r.metrics.prefill_ms + r.metrics.decode_ms}};
      std::puts(line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    } else {
      std::printf("[%s] %s\n", local_time(frame->received, false).c_str(), r.text.c_str());
    }
    std::fflush(stdout);
    skipped = 0;
  }
  return 0;
}

}  // namespace smolvlm::cli
