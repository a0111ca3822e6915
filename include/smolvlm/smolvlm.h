// smolvlm.cpp — talk with SmolVLM2 about pictures on a CPU.
//
//   auto engine = smolvlm::Engine::load("SmolVLM2-256M-Video-Instruct");
//   smolvlm::Conversation chat = {{"user", {smolvlm::Content::image_file("cat.jpg"),
//                                           smolvlm::Content::from_text("Describe the image.")}}};
//   smolvlm::Result r = engine->generate(chat, {}, [](std::string_view piece) {
//     std::cout << piece << std::flush;
//     return true;  // false stops the answer
//   });
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <smolvlm/error.h>
#include <string>
#include <string_view>
#include <vector>

namespace smolvlm {

struct LoadOptions {
  int threads = 0;  // 0: one per hardware thread
  int context = 0;  // KV-cache capacity in tokens; 0: the model's max_position_embeddings
};

struct GenerationOptions {
  int max_new_tokens = 256;
  float temperature = 0.0f;  // 0: greedy (the default, as transformers' generate)
  int top_k = 0;
  float top_p = 1.0f;
  float repeat_penalty = 1.0f;
  uint64_t seed = 0;
  bool split_images = true;  // false: each picture is one tile (faster, less detail)
  int max_tiles = 0;         // >0: cap the tile grid of each picture (speed over detail)
};

struct Content {
  enum class Kind { Text, ImageFile };
  Kind kind = Kind::Text;
  std::string text;  // the text, or the image path
  static Content from_text(std::string t) { return {Kind::Text, std::move(t)}; }
  static Content image_file(std::string path) { return {Kind::ImageFile, std::move(path)}; }
};

struct Message {
  std::string role;  // "system", "user" or "assistant"
  std::vector<Content> content;
};
using Conversation = std::vector<Message>;

struct Metrics {
  double load_ms = 0;
  double vision_ms = 0;
  double prefill_ms = 0;
  double decode_ms = 0;
  int prompt_tokens = 0;
  int generated_tokens = 0;
  int image_tiles = 0;
  double prefill_tokens_per_s() const { return prefill_ms > 0 ? prompt_tokens * 1000.0 / prefill_ms : 0; }
  double decode_tokens_per_s() const {
    return decode_ms > 0 ? generated_tokens * 1000.0 / decode_ms : 0;
  }
};

struct Result {
  std::string text;             // the answer, special tokens removed
  std::vector<int32_t> tokens;  // generated ids (the stop token excluded)
  bool stopped_by_eos = false;
  Metrics metrics;
};

// Receives each new piece of the answer (whole UTF-8 characters); return false to stop.
using TextCallback = std::function<bool(std::string_view piece)>;

class Engine {
 public:
  // Loads a Hugging Face SmolVLM2 folder (config.json, tokenizer.json, *.safetensors).
  // Throws smolvlm::Error with a one-line message when anything is missing or malformed.
  static std::unique_ptr<Engine> load(const std::string& model_dir, const LoadOptions& options = {});
  ~Engine();

  // Answers the conversation's last user turn. The context is fresh for each call.
  Result generate(const Conversation& conversation, const GenerationOptions& options = {},
                  const TextCallback& on_text = nullptr);

  int context_length() const;
  double load_ms() const;

 private:
  Engine();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace smolvlm
