// smolvlm ask: one answer about zero or more pictures.
#include <smolvlm/smolvlm.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "chat/markers.h"
#include "cli.h"
#include "formats/mapped_file.h"
#include "messages.h"
#include "progress.h"
#include "util/input_text.h"

namespace smolvlm::cli {

namespace {

const char kAskUsage[] =
    "usage: smolvlm ask -m MODEL_DIR [-i IMAGE]... -p PROMPT [options]\n"
    "       smolvlm ask -m MODEL_DIR --messages CHAT.json [options]\n"
    "\n";

// Splits a -p prompt at its <image> and <video> markers into content items, placing the pictures
// and the video; those without a marker go before the text, as the HF chat template puts media
// items first (the video before the pictures).
std::vector<Content> build_user_content(const std::string& prompt,
                                        const std::vector<std::string>& images,
                                        const std::string& video) {
  const std::vector<MarkedPiece> pieces = split_markers(prompt);
  const auto count = [&](MarkedPiece::Kind kind) {
    return static_cast<size_t>(std::count_if(pieces.begin(), pieces.end(),
                                             [&](const MarkedPiece& p) { return p.kind == kind; }));
  };
  const size_t image_markers = count(MarkedPiece::Kind::Image),
               video_markers = count(MarkedPiece::Kind::Video);
  if (image_markers > images.size()) {
    throw Error("the prompt has " + std::to_string(image_markers) + " <image> markers but " +
                std::to_string(images.size()) + " images were given");
  }
  if (video_markers > (video.empty() ? 0u : 1u)) {
    throw UsageError("the prompt has " + std::to_string(video_markers) +
                     " <video> markers; give one with one --video FILE");
  }
  std::vector<Content> content;
  if (!video.empty() && video_markers == 0) content.push_back(Content::video_file(video));
  size_t next = 0;
  for (; next < images.size() - image_markers; ++next)
    content.push_back(Content::image_file(images[next]));
  for (const MarkedPiece& p : pieces) {
    if (p.kind == MarkedPiece::Kind::Text) {
      content.push_back(Content::text(std::string(p.text)));
    } else if (p.kind == MarkedPiece::Kind::Image) {
      content.push_back(Content::image_file(images[next++]));
    } else {
      content.push_back(Content::video_file(video));
    }
  }
  return content;
}

// What ask's command line sets.
struct AskSettings {
  LoadFlags load;
  GenerationOptions gen;
  std::string prompt, messages_path, video;
  bool have_prompt = false, json = false;
  std::vector<std::string> images;
};

// ask's flags: the load flags, the question's, then the sampling flags and the output's.
FlagTable ask_flags(AskSettings& s) {
  FlagTable flags;
  add_load_flags(flags, s.load);
  flags.add({"-i", "--image"}, "FILE", "a JPEG or PNG picture; repeat for several",
            [&](const std::string&, const std::string& v) { s.images.push_back(v); });
  flags.add({"-p", "--prompt"}, "TEXT",
            "the question; each <image> marks where the next picture goes,\n"
            "pictures without a marker go before the text",
            [&](const std::string&, const std::string& v) {
              s.prompt = v;
              s.have_prompt = true;
            });
  flags.add({"--video"}, "FILE",
            "a video (MP4, MKV, WebM, AVI, ...: what FFmpeg decodes); frames\n"
            "are sampled as HF does (<video> in -p places it, else it goes first)",
            [&](const std::string&, const std::string& v) {
              if (!s.video.empty()) throw UsageError("one --video per question");
              s.video = v;
            });
  flags.add({"--max-frames"}, "N", "sample at most N frames (default: the model's, 64)",
            [&](const std::string& a, const std::string& v) {
              s.gen.video_max_frames = parse_int(a, v, 1, 4096);
            });
  flags.add({"--fps"}, "F", "sample F frames per second (default: the model's, 1)",
            [&](const std::string& a, const std::string& v) {
              s.gen.video_fps = parse_double(a, v, 0.001, 1000);
            });
  flags.add({"--messages"}, "FILE",
            "a whole conversation in the HF chat format (JSON list of\n"
            "{role, content:[{type:text,text}|{type:image,path}|\n"
            "{type:video,path}]})",
            [&](const std::string&, const std::string& v) { s.messages_path = v; });
  flags.add({"-n", "--max-new-tokens"}, "N", "answer length cap (default 256)",
            [&](const std::string& a, const std::string& v) {
              s.gen.max_new_tokens = parse_int(a, v, 0, 1 << 20);
            });
  add_generation_flags(flags, s.gen);
  flags.add({"--json"}, "", "print one JSON object (text, tokens, timings) instead of streaming",
            [&](const std::string&, const std::string&) { s.json = true; });
  // Structured outputs (README "Structured outputs"); the last one given counts.
  auto constraint_file = [&](const std::string& a, const std::string& v) {
    const std::string text = read_file(v, a.substr(2), 1 << 20);
    s.gen.constraint = a == "--grammar" ? Constraint::grammar(text) : Constraint::json_schema(text);
  };
  flags.add({"--json-schema"}, "FILE",
            "answer with JSON valid for this JSON Schema (structured output)", constraint_file);
  flags.add({"--json-object"}, "", "answer with any JSON object",
            [&](const std::string&, const std::string&) {
              s.gen.constraint = Constraint::json_object();
            });
  flags.add({"--grammar"}, "FILE", "answer in this GBNF-style grammar (start rule: root)",
            constraint_file);
  return flags;
}

}  // namespace

int run_ask(int argc, char** argv) {
  AskSettings settings;
  const FlagTable flags = ask_flags(settings);
  if (!flags.parse(argc, argv)) {
    std::fputs((kAskUsage + flags.help()).c_str(), stdout);
    return 0;
  }
  LoadFlags& load = settings.load;
  GenerationOptions& gen = settings.gen;
  const std::string &prompt = settings.prompt, &messages_path = settings.messages_path,
                    &video = settings.video;
  const std::vector<std::string>& images = settings.images;
  const bool have_prompt = settings.have_prompt, json = settings.json;
  if (load.model.empty()) throw UsageError("-m MODEL_DIR is required");
  if (have_prompt == !messages_path.empty())
    throw UsageError("give either -p PROMPT or --messages FILE");
  if (!messages_path.empty() && (!images.empty() || !video.empty()))
    throw UsageError("--messages names its own images and videos; drop -i and --video");

  // Built step by step: GCC 12 mis-destroys temporaries of a braced list whose element throws.
  Conversation conv;
  if (messages_path.empty()) {
    std::vector<Content> content = build_user_content(prompt, images, video);
    conv.push_back(Message{"user", std::move(content)});
  } else {
    conv = read_messages(messages_path);
  }
  auto engine = Engine::load(load.model, load.options);
  FrameProgress frame_progress;
  gen.on_video_progress = [&](int done, int total) { frame_progress.update(done, total); };
  TextCallback stream;
  if (!json) {
    stream = [](std::string_view piece) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
      return true;
    };
  }
  const Result r = engine->generate(conv, gen, stream);
  if (json) {
    const Metrics& m = r.metrics;
    nlohmann::json out = {{"text", r.text},
                          {"tokens", r.tokens},
                          {"prompt_tokens", m.prompt_tokens},
                          {"tiles", m.image_tiles},
                          {"stopped_by_eos", r.stopped_by_eos},
                          {"timings",
                           {{"load_ms", m.load_ms},
                            {"video_decode_ms", m.video_decode_ms},
                            {"vision_ms", m.vision_ms},
                            {"prefill_ms", m.prefill_ms},
                            {"decode_ms", m.decode_ms},
                            {"prefill_tokens_per_s", m.prefill_tokens_per_s()},
                            {"decode_tokens_per_s", m.decode_tokens_per_s()}}}};
    std::puts(out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::fputc('\n', stdout);
  }
  return 0;
}

}  // namespace smolvlm::cli
