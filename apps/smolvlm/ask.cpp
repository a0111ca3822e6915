// smolvlm ask: one answer about zero or more pictures.
#include <smolvlm/smolvlm.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cli.h"

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
    "      --kernels PATH      kernel path (generic, avx2, avx512, neon, ...; default: the best)\n"
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

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open '" + path + "': " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error("cannot read '" + path + "'");
  return ss.str();
}

Conversation read_messages(const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_text_file(path));
  } catch (const nlohmann::json::exception&) {
    throw Error("'" + path + "' is not valid JSON");
  }
  if (!j.is_array()) throw Error("'" + path + "' must hold a JSON list of messages");
  Conversation conv;
  for (const auto& m : j) {
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content")) {
      throw Error("'" + path + "': each message needs a role and a content");
    }
    Message msg{m["role"].get<std::string>(), {}};
    const auto& content = m["content"];
    if (content.is_string()) {
      msg.content.push_back(Content::text(content.get<std::string>()));
    } else if (content.is_array()) {
      for (const auto& item : content) {
        const std::string type = item.value("type", "");
        if (type == "text" && item.contains("text") && item["text"].is_string()) {
          msg.content.push_back(Content::text(item["text"].get<std::string>()));
        } else if (type == "image") {
          std::string p;
          for (const char* key : {"path", "image", "url"}) {
            if (item.contains(key) && item[key].is_string()) p = item[key].get<std::string>();
          }
          if (p.empty()) throw Error("'" + path + "': an image item needs a \"path\"");
          msg.content.push_back(Content::image_file(p));
        } else {
          throw Error("'" + path + "': unsupported content item " + item.dump());
        }
      }
    } else {
      throw Error("'" + path + "': content must be a string or a list");
    }
    conv.push_back(std::move(msg));
  }
  if (conv.empty() || conv.back().role != "user") {
    throw Error("'" + path + "': the conversation must end with a user turn");
  }
  return conv;
}

}  // namespace

int run_ask(int argc, char** argv) {
  std::string prompt, messages_path;
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
    } else {
      throw UsageError("unknown option '" + a + "'");
    }
  }
  if (load.model.empty()) throw UsageError("-m MODEL_DIR is required");
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
  auto engine = Engine::load(load.model, load.options);
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
