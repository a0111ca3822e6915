// smolvlm chat: an interactive dialogue about a picture or a video (or none), remembered in the
// KV cache.
#include <smolvlm/smolvlm.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <string>

#include "cli.h"
#include "formats/mapped_file.h"
#include "progress.h"
#include "util/input_text.h"

namespace smolvlm::cli {

namespace {

const char kChatUsage[] =
    "usage: smolvlm chat -m MODEL_DIR [-i IMAGE | --video FILE] [-n NEW_TOKENS] [-c CONTEXT]\n"
    "                    [options]\n"
    "\n";

const char kChatCommands[] =
    "\n"
    "In the chat:\n"
    "  <image>                 in a line, puts the picture there; without it, a new picture goes\n"
    "                          before the text of the next turn\n"
    "  <video>                 the same for the video\n"
    "  /image PATH             switch to another picture\n"
    "  /video PATH             switch to a video (a dialogue holds one: a second clears it)\n"
    "  /schema FILE            the following answers are JSON valid for this JSON Schema\n"
    "  /grammar FILE           the following answers follow this GBNF-style grammar\n"
    "  /json                   the following answers are any JSON object\n"
    "  /schema off             free answers again (also /grammar off, /json off)\n"
    "  clear, <clear>, /clear  forget the dialogue (the picture and the schema stay)\n"
    "  exit, <exit>, /exit, /quit, Ctrl-D   leave\n"
    "  Ctrl-C                  stop the current answer\n";

std::atomic<bool> g_interrupted{false};

extern "C" void on_sigint(int) { g_interrupted.store(true); }

// Reads lines from standard input with read(2), so that Ctrl-C while waiting is seen (EINTR)
// instead of ending the input.
class LineReader {
 public:
  enum class Status { Line, End, Interrupted };
  Status next(std::string& line) {
    for (;;) {
      // From where the last search stopped: a long line is scanned once, not once a chunk.
      const size_t nl = buf_.find('\n', scanned_);
      scanned_ = nl == std::string::npos ? buf_.size() : 0;
      if (nl != std::string::npos) {
        line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return Status::Line;
      }
      if (eof_) {
        if (buf_.empty()) return Status::End;
        line.swap(buf_);
        buf_.clear();
        scanned_ = 0;
        return Status::Line;
      }
      char chunk[65536];
      const ssize_t n = ::read(0, chunk, sizeof chunk);
      if (n > 0) {
        buf_.append(chunk, static_cast<size_t>(n));
      } else if (n == 0) {
        eof_ = true;
      } else if (errno == EINTR) {
        if (g_interrupted.exchange(false)) return Status::Interrupted;
      } else {
        eof_ = true;
      }
    }
  }

 private:
  std::string buf_;
  size_t scanned_ = 0;  // buf_[0, scanned_) holds no newline
  bool eof_ = false;
};

bool is_one_of(const std::string& s, std::initializer_list<const char*> words) {
  for (const char* w : words) {
    if (s == w) return true;
  }
  return false;
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// `word` alone or followed by a space (its argument).
bool is_command(const std::string& cmd, const std::string& word) {
  return cmd == word || cmd.rfind(word + " ", 0) == 0;
}

// A constraint from --json-schema / --grammar FILE (kind "json-schema" or "grammar").
std::shared_ptr<const Constraint> constraint_from_file(const std::string& kind,
                                                       const std::string& path) {
  const std::string text = read_file(path, kind, 1 << 20);
  return kind == "grammar" ? Constraint::grammar(text) : Constraint::json_schema(text);
}

// /schema FILE, /grammar FILE, /json, and "off" after any of them: sets what the following answers
// follow. A file that fails leaves the constraint as it was (the error line says why).
void structured_command(const std::string& cmd, std::shared_ptr<const Constraint>& constraint) {
  const size_t space = cmd.find(' ');
  const std::string word = cmd.substr(0, space);
  const std::string arg = space == std::string::npos ? "" : trim(cmd.substr(space));
  if (arg == "off") {
    constraint.reset();
    std::fputs("[free answers again]\n", stderr);
  } else if (word == "/json") {
    if (!arg.empty()) throw Error("/json takes no file (or 'off')");
    constraint = Constraint::json_object();
    std::fputs("[the following answers: any JSON object]\n", stderr);
  } else {
    if (arg.empty()) throw Error(word + " needs a file (or 'off')");
    const bool schema = word == "/schema";
    constraint = constraint_from_file(schema ? "json-schema" : "grammar", arg);
    std::fprintf(stderr, "[the following answers: %s %s]\n",
                 schema ? "JSON valid for the schema in" : "the grammar in",
                 quote_input(arg, 200).c_str());
  }
}

// What chat's command line sets.
struct ChatSettings {
  LoadFlags load;
  GenerationOptions gen;
  ChatOptions chat_options;
  std::string image_path, video_path;
  bool verbose = false;
  ChatSettings() {
    gen.max_new_tokens = 2048;
    load.options.context = 4096;
  }
};

// chat's flags: the load flags, the dialogue's, then the sampling flags.
FlagTable chat_flags(ChatSettings& s) {
  FlagTable flags;
  add_load_flags(flags, s.load);
  flags["-c"].help =
      "cap of the whole dialogue in tokens (default 4096); the oldest\n"
      "turns are dropped when the next one would not fit";
  flags.add({"-i", "--image"}, "FILE",
            "the picture to talk about (JPEG or PNG); encoded once, reused",
            [&](const std::string&, const std::string& v) { s.image_path = v; });
  flags.add({"--video"}, "FILE",
            "or a video (what FFmpeg decodes); its frames are sampled as HF\n"
            "does, encoded once at the first turn, reused",
            [&](const std::string&, const std::string& v) { s.video_path = v; });
  flags.add({"--max-frames"}, "N",
            "sample at most N frames of the video (default: the model's, 64)",
            [&](const std::string& a, const std::string& v) {
              s.gen.video_max_frames = parse_int(a, v, 1, 4096);
            });
  flags.add({"--fps"}, "F", "sample F frames per second (default: the model's, 1)",
            [&](const std::string& a, const std::string& v) {
              s.gen.video_fps = parse_double(a, v, 0.001, 1000);
            });
  flags.add({"-n", "--max-new-tokens"}, "N", "cap of each answer (default 2048)",
            [&](const std::string& a, const std::string& v) {
              s.gen.max_new_tokens = parse_int(a, v, 1, 1 << 20);
            });
  flags.add({"--system"}, "TEXT", "a system message",
            [&](const std::string&, const std::string& v) { s.chat_options.system = v; });
  add_generation_flags(flags, s.gen);
  // Structured outputs for every answer (/schema changes it later); the last one given counts.
  auto constraint_file = [&](const std::string& a, const std::string& v) {
    s.gen.constraint = constraint_from_file(a.substr(2), v);
  };
  flags.add({"--json-schema"}, "FILE",
            "every answer JSON valid for this JSON Schema, as for 'smolvlm ask'\n(see /schema)",
            constraint_file);
  flags.add({"--json-object"}, "", "every answer any JSON object",
            [&](const std::string&, const std::string&) {
              s.gen.constraint = Constraint::json_object();
            });
  flags.add({"--grammar"}, "FILE",
            "every answer follows this GBNF-style grammar (start rule: root)", constraint_file);
  flags.add({"--verbose"}, "",
            "the model's facts once, and after each answer: tokens in and out,\n"
            "image encode time, prefill and decode speed, peak RAM",
            [&](const std::string&, const std::string&) { s.verbose = true; });
  return flags;
}

}  // namespace

int run_chat(int argc, char** argv) {
  ChatSettings settings;
  const FlagTable flags = chat_flags(settings);
  if (!flags.parse(argc, argv)) {
    std::fputs((kChatUsage + flags.help() + kChatCommands).c_str(), stdout);
    return 0;
  }
  const LoadFlags& load = settings.load;
  GenerationOptions& gen = settings.gen;
  const std::string &image_path = settings.image_path, &video_path = settings.video_path;
  const bool verbose = settings.verbose;
  const ChatOptions& chat_options = settings.chat_options;
  if (load.model.empty()) throw UsageError("-m MODEL_DIR is required");
  if (!image_path.empty() && !video_path.empty())
    throw UsageError("talk about a picture or a video: give -i or --video, not both");

  // The picture first: a bad one fails before the (slower) model load.
  Image picture;
  if (!image_path.empty()) picture = Image::from_file(image_path);
  auto engine = Engine::load(load.model, load.options);
  Chat chat = engine->chat(chat_options);
  if (!image_path.empty()) chat.set_image(std::move(picture));
  if (!video_path.empty()) chat.set_video_file(video_path);
  FrameProgress frame_progress;
  gen.on_video_progress = [&](int done, int total) { frame_progress.update(done, total); };
  bool video_in_dialogue = false;  // a dialogue holds one video: /video clears it
  if (verbose) std::fprintf(stderr, "[%s]\n", engine->info().summary().c_str());

  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a Ctrl-C while waiting for a line interrupts the read
  struct sigaction old_sa {};
  sigaction(SIGINT, &sa, &old_sa);
  gen.cancel = &g_interrupted;

  LineReader reader;
  std::string line;
  for (;;) {
    std::fputs("User: ", stdout);
    std::fflush(stdout);
    const LineReader::Status status = reader.next(line);
    if (status == LineReader::Status::End) {
      std::fputc('\n', stdout);
      break;
    }
    if (status == LineReader::Status::Interrupted) {
      std::fputs("\n", stdout);
      std::fputs("[Ctrl-C stops an answer; type /exit or press Ctrl-D to leave]\n", stderr);
      continue;
    }
    const std::string cmd = trim(line);
    if (cmd.empty()) continue;
    if (is_one_of(cmd, {"exit", "<exit>", "/exit", "/quit"})) break;
    if (is_one_of(cmd, {"clear", "<clear>", "/clear"})) {
      chat.clear();
      video_in_dialogue = false;
      std::fputs("[dialogue cleared]\n", stderr);
      continue;
    }
    try {
      if (is_command(cmd, "/schema") || is_command(cmd, "/grammar") || is_command(cmd, "/json")) {
        structured_command(cmd, gen.constraint);
        continue;
      }
      if (cmd == "/image" || cmd.rfind("/image ", 0) == 0) {
        const std::string path = trim(cmd.substr(6));
        if (path.empty()) throw Error("/image needs a path");
        chat.set_image_file(path);
        std::fprintf(stderr, "[picture: %s]\n", quote_input(path, 200).c_str());
        continue;
      }
      if (cmd == "/video" || cmd.rfind("/video ", 0) == 0) {
        const std::string path = trim(cmd.substr(6));
        if (path.empty()) throw Error("/video needs a path");
        chat.set_video_file(path);
        std::fprintf(stderr, "[video: %s]\n", quote_input(path, 200).c_str());
        if (video_in_dialogue) {
          chat.clear();
          video_in_dialogue = false;
          std::fputs("[a dialogue holds one video: dialogue cleared]\n", stderr);
        }
        continue;
      }
      g_interrupted.store(false);
      bool started = false;  // "Assistant:" comes with the first piece, so errors stand alone
      auto start = [&] {
        if (!started) std::fputs("Assistant:", stdout);
        started = true;
      };
      const Result r = chat.ask(line, gen, [&](std::string_view piece) {
        start();
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
        return true;
      });
      start();
      if (chat.has_video()) video_in_dialogue = true;
      std::fputc('\n', stdout);
      std::fflush(stdout);
      if (r.cancelled) std::fputs("[answer stopped]\n", stderr);
      if (r.dropped_turns > 0) {
        std::fprintf(
            stderr,
            "[the dialogue outgrew the context of %d tokens: dropped the oldest %d turn%s]\n",
            chat.context_length(), r.dropped_turns, r.dropped_turns == 1 ? "" : "s");
      }
      if (verbose) std::fprintf(stderr, "[%s]\n", r.metrics.summary().c_str());
    } catch (const Error& e) {
      std::fflush(stdout);
      std::fprintf(stderr, "error: %s\n", e.what());
    }
  }
  sigaction(SIGINT, &old_sa, nullptr);
  return 0;
}

}  // namespace smolvlm::cli
