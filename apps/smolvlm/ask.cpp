// smolvlm ask: one answer about zero or more pictures.
#include <smolvlm/smolvlm.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli.h"
#include "messages.h"

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
    "      --vision-precision P  f32 (default, the reference's float32) or bf16 (about 2x\n"
    "                          faster vision where the CPU has AVX512_BF16)\n"
    "  -i, --image FILE        a JPEG or PNG picture; repeat for several\n"
    "  -p, --prompt TEXT       the question; each <image> marks where the next picture goes,\n"
    "                          pictures without a marker go before the text\n"
    "      --messages FILE     a whole conversation in the HF chat format (JSON list of\n"
    "                          {role, content:[{type:text,text}|{type:image,path}]})\n"
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
    "      --json              print one JSON object (text, tokens, timings) instead of "
    "streaming\n";

// Splits a -p prompt at its <image> markers into content items, placing the pictures.
std::vector<Content> build_user_content(const std::string& prompt,
                                        const std::vector<std::string>& images) {
  const std::string marker = "<image>";
  size_t markers = 0;
  for (size_t p = prompt.find(marker); p != std::string::npos; p = prompt.find(marker, p + 1))
    ++markers;
  if (markers > images.size()) {
    throw Error("the prompt has " + std::to_string(markers) + " <image> markers but " +
                std::to_string(images.size()) + " images were given");
  }
  std::vector<Content> content;
  size_t next = 0;
  // Pictures without a marker come first, as the HF chat template puts image items first.
  for (; next < images.size() - markers; ++next)
    content.push_back(Content::image_file(images[next]));
  size_t pos = 0;
  for (size_t p = prompt.find(marker); p != std::string::npos; p = prompt.find(marker, pos)) {
    if (p > pos) content.push_back(Content::text(prompt.substr(pos, p - pos)));
    content.push_back(Content::image_file(images[next++]));
    pos = p + marker.size();
  }
  if (pos < prompt.size()) content.push_back(Content::text(prompt.substr(pos)));
  return content;
}

}  // namespace

int parse_int(const std::string& flag, const std::string& text, int lo, int hi) {
  errno = 0;
  char* end = nullptr;
  const long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || v < lo || v > hi) {
    throw UsageError(flag + " expects a whole number from " + std::to_string(lo) + " to " +
                     std::to_string(hi) + ", got '" + text + "'");
  }
  return static_cast<int>(v);
}

double parse_double(const std::string& flag, const std::string& text, double lo, double hi) {
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || errno != 0 || !(v >= lo && v <= hi)) {
    throw UsageError(flag + " expects a number from " + std::to_string(lo) + " to " +
                     std::to_string(hi) + ", got '" + text + "'");
  }
  return v;
}

int run_ask(int argc, char** argv) {
  std::string model_dir, prompt, messages_path;
  bool have_prompt = false, json = false;
  std::vector<std::string> images;
  GenerationOptions gen;
  LoadOptions load;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kAskHelp, stdout);
      return 0;
    } else if (a == "-m" || a == "--model") {
      model_dir = flag_value(argc, argv, i);
    } else if (a == "--mmproj") {
      load.mmproj = flag_value(argc, argv, i);
    } else if (a == "--vision-precision") {
      load.vision_precision = parse_vision_precision(flag_value(argc, argv, i));
    } else if (a == "-i" || a == "--image") {
      images.push_back(flag_value(argc, argv, i));
    } else if (a == "-p" || a == "--prompt") {
      prompt = flag_value(argc, argv, i);
      have_prompt = true;
    } else if (a == "--messages") {
      messages_path = flag_value(argc, argv, i);
    } else if (a == "-n" || a == "--max-new-tokens") {
      gen.max_new_tokens = parse_int(a, flag_value(argc, argv, i), 0, 1 << 20);
    } else if (parse_generation_flag(argc, argv, i, gen)) {
      // --temp, --top-k, --top-p, --repeat-penalty, --seed, --no-split, --max-tiles
    } else if (a == "-c" || a == "--context") {
      load.context = parse_int(a, flag_value(argc, argv, i), 16, 1 << 20);
    } else if (a == "-t" || a == "--threads") {
      load.threads = parse_int(a, flag_value(argc, argv, i), 1, 256);
    } else if (a == "--json") {
      json = true;
    } else {
      throw UsageError("unknown option '" + a + "'");
    }
  }
  if (model_dir.empty()) throw UsageError("-m MODEL_DIR is required");
  if (have_prompt == !messages_path.empty())
    throw UsageError("give either -p PROMPT or --messages FILE");
  if (!messages_path.empty() && !images.empty())
    throw UsageError("--messages names its own images; drop -i");

  // Built step by step: GCC 12 mis-destroys temporaries of a braced list whose element throws.
  Conversation conv;
  if (messages_path.empty()) {
    std::vector<Content> content = build_user_content(prompt, images);
    conv.push_back(Message{"user", std::move(content)});
  } else {
    conv = read_messages(messages_path);
  }
  auto engine = Engine::load(model_dir, load);
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
