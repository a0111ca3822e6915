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

const char kAskHelp[] =
    "usage: smolvlm ask -m MODEL_DIR [-i IMAGE]... -p PROMPT [options]\n"
    "       smolvlm ask -m MODEL_DIR --messages CHAT.json [options]\n"
    "\n"
    "  -m, --model DIR         Hugging Face SmolVLM2 folder (config.json, tokenizer.json, "
    "*.safetensors),\n"
    "                          or a llama.cpp text GGUF (then --mmproj), or a folder with both "
    "GGUFs\n"
    "      --mmproj FILE       the vision projector GGUF that goes with a text GGUF\n"
    "      --vision-precision P  auto (default: bf16 where the CPU has AVX512_BF16 and the\n"
    "                          mmproj is F16/BF16, else f32), f32 (the reference's float32)\n"
    "                          or bf16 (about 2x faster vision than f32)\n"
    "  -i, --image FILE        a JPEG or PNG picture; repeat for several\n"
    "  -p, --prompt TEXT       the question; each <image> marks where the next picture goes,\n"
    "                          pictures without a marker go before the text\n"
    "      --video FILE        a video (MP4, MKV, WebM, AVI, ...: what FFmpeg decodes); frames\n"
    "                          are sampled as HF does (<video> in -p places it, else it goes "
    "first)\n"
    "      --max-frames N      sample at most N frames (default: the model's, 64)\n"
    "      --fps F             sample F frames per second (default: the model's, 1)\n"
    "      --messages FILE     a whole conversation in the HF chat format (JSON list of\n"
    "                          {role, content:[{type:text,text}|{type:image,path}|\n"
    "                          {type:video,path}]})\n"
    "  -n, --max-new-tokens N  answer length cap (default 256)\n"
    "      --temp T            sampling temperature (default 0 = greedy)\n"
    "      --top-k K           keep the K most likely tokens (default 0 = off)\n"
    "      --top-p P           nucleus sampling mass (default 1 = off)\n"
    "      --repeat-penalty R  HF repetition penalty (default 1 = off)\n"
    "      --seed S            random seed for sampling (default 0)\n"
    "      --no-split          one tile per picture (faster, less detail)\n"
    "      --max-tiles N       cap the tile grid per picture (speed over detail)\n"
    "  -c, --context N         context length in tokens (default: the model's)\n"
    "  -t, --threads N         worker threads (default: all cores)\n"
    "      --kernels PATH      kernel path (generic, avx2, avx512, neon, ...; default: the best)\n"
    "      --max-picture-pixels N  refuse pictures of more pixels, from their header\n"
    "                          (default 178956970, Pillow's decompression-bomb limit)\n"
    "      --json              print one JSON object (text, tokens, timings) instead of "
    "streaming\n"
    "      --json-schema FILE  answer with JSON valid for this JSON Schema (structured output)\n"
    "      --json-object       answer with any JSON object\n"
    "      --grammar FILE      answer in this GBNF-style grammar (start rule: root)\n";

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

}  // namespace

int run_ask(int argc, char** argv) {
  std::string prompt, messages_path, video;
  bool have_prompt = false, json = false;
  std::vector<std::string> images;
  GenerationOptions gen;
  LoadFlags load;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kAskHelp, stdout);
      return 0;
    } else if (parse_load_flag(argc, argv, i, load)) {
      // -m, --mmproj, -t, -c, --vision-precision, --kernels
    } else if (a == "-i" || a == "--image") {
      images.push_back(flag_value(argc, argv, i));
    } else if (a == "--video") {
      if (!video.empty()) throw UsageError("one --video per question");
      video = flag_value(argc, argv, i);
    } else if (a == "--max-frames") {
      gen.video_max_frames = parse_int(a, flag_value(argc, argv, i), 1, 4096);
    } else if (a == "--fps") {
      gen.video_fps = parse_double(a, flag_value(argc, argv, i), 0.001, 1000);
    } else if (a == "-p" || a == "--prompt") {
      prompt = flag_value(argc, argv, i);
      have_prompt = true;
    } else if (a == "--messages") {
      messages_path = flag_value(argc, argv, i);
    } else if (a == "-n" || a == "--max-new-tokens") {
      gen.max_new_tokens = parse_int(a, flag_value(argc, argv, i), 0, 1 << 20);
    } else if (parse_generation_flag(argc, argv, i, gen)) {
      // --temp, --top-k, --top-p, --repeat-penalty, --seed, --no-split, --max-tiles
    } else if (a == "--json") {
      json = true;
    } else if (a == "--json-schema" || a == "--grammar" || a == "--json-object") {
      // Structured outputs (README "Structured outputs"); the last one given counts.
      if (a == "--json-object") {
        gen.constraint = Constraint::json_object();
      } else {
        const std::string text = read_file(flag_value(argc, argv, i), a.substr(2), 1 << 20);
        gen.constraint =
            a == "--grammar" ? Constraint::grammar(text) : Constraint::json_schema(text);
      }
    } else {
      throw UsageError("unknown option " + quote_input(a));
    }
  }
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
