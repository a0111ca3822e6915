// smolvlm.cpp — talk with SmolVLM2 about pictures on a CPU.
//
//   auto engine = smolvlm::Engine::load("SmolVLM2-256M-Video-Instruct");
//   smolvlm::Conversation chat = {{"user", {smolvlm::Content::image_file("cat.jpg"),
//                                           smolvlm::Content::text("Describe the image.")}}};
//   smolvlm::Result r = engine->generate(chat, {}, [](std::string_view piece) {
//     std::cout << piece << std::flush;
//     return true;  // false stops the answer
//   });
//
//   smolvlm::Chat chat = engine->chat();   // a dialogue kept in the KV cache
//   chat.set_image_file("cat.jpg");
//   chat.ask("Describe the image.");
//   chat.ask("What colour is it?");        // computes only the new turn
#pragma once

#include <smolvlm/constraint.h>
#include <smolvlm/error.h>
#include <smolvlm/image.h>
#include <smolvlm/vision_precision.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace smolvlm {

struct LoadOptions {
  int threads = 0;  // 0: one per hardware thread
  int context = 0;  // KV-cache capacity in tokens; 0: the model's max_position_embeddings
  // The vision projector GGUF when the model is a llama.cpp text GGUF (empty: the *mmproj*.gguf
  // beside it, if there is exactly one). Must stay empty for a Hugging Face folder.
  std::string mmproj;
  VisionPrecision vision_precision = VisionPrecision::Auto;
  // The instruction-set path of this Engine's kernels ("generic", "avx2", "avx512", "avx512vnni",
  // "neon", "dotprod", ...); empty: $SMOLVLM_KERNELS, else the best the CPU has.
  std::string kernels;
  // A folder for files derived from the model once and reused by later loads (a Q4_0 model's
  // decode panels); empty: none are made (the same answers, decoded more slowly). The library
  // reads no environment for it: the smolvlm programs set it from $SMOLVLM_CACHE_DIR, else
  // $XDG_CACHE_HOME/smolvlm, else ~/.cache/smolvlm ("off": none).
  std::string cache_dir;
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
  // Video sampling (Content::video_file): at most video_max_frames frames, video_fps per second;
  // 0 takes the model's preprocessor_config.json video_sampling (SmolVLM2: 64 frames, 1 fps).
  int video_max_frames = 0;
  double video_fps = 0;
  // Called as the video's sampled frames decode: (frames done, frames to decode).
  std::function<void(int done, int total)> on_video_progress;
  // Set to true (from any thread, or a signal handler: the store is lock-free) to stop the answer
  // after the current token; the result then has `cancelled` set. Owned by the caller.
  const std::atomic<bool>* cancel = nullptr;
  // Structured outputs (smolvlm/constraint.h): the answer follows this grammar or schema; tokens
  // it refuses are masked before sampling, and the end of the answer comes only when it is
  // complete (max_new_tokens may still cut it short: an incomplete prefix then). Null: free text.
  std::shared_ptr<const Constraint> constraint;
};
static_assert(std::atomic<bool>::is_always_lock_free,
              "cancel must be usable from a signal handler");

// One piece of a message: text, a picture (decoded, a file, or encoded bytes) or a video file.
struct Content {
  enum class Kind { Text, Image, ImageFile, ImageBytes, VideoFile };
  Kind kind = Kind::Text;
  // Text: the text. ImageFile, VideoFile: the path. ImageBytes: the encoded picture (JPEG/PNG).
  std::string value;
  std::shared_ptr<const Image> picture;  // Image: the pixels (shared, so copies are cheap)
  // Text only: every character is a word. `<image>`, `<video>` or `<end_of_utterance>` in it are
  // tokenized as ordinary text, never as markers or control tokens (what text from outside, the
  // server's API parts, must be). false: `<image>`/`<video>` place the conversation's pictures.
  bool plain = false;

  static Content text(std::string t) { return {Kind::Text, std::move(t), nullptr}; }
  static Content plain_text(std::string t) { return {Kind::Text, std::move(t), nullptr, true}; }
  static Content image(Image picture) {
    return {Kind::Image, {}, std::make_shared<const Image>(std::move(picture))};
  }
  static Content image_file(std::string path) {
    return {Kind::ImageFile, std::move(path), nullptr};
  }
  static Content image_bytes(std::string bytes) {
    return {Kind::ImageBytes, std::move(bytes), nullptr};
  }
  static Content video_file(std::string path) {
    return {Kind::VideoFile, std::move(path), nullptr};
  }
  bool is_picture() const {
    return kind == Kind::Image || kind == Kind::ImageFile || kind == Kind::ImageBytes;
  }
};

struct Message {
  std::string role;  // "system", "user" or "assistant"
  std::vector<Content> content;
};
using Conversation = std::vector<Message>;

struct Metrics {
  double load_ms = 0;
  double video_decode_ms = 0;  // opening the video and decoding its sampled frames
  double vision_ms = 0;
  double prefill_ms = 0;
  double decode_ms = 0;
  int prompt_tokens = 0;  // the whole prompt (for a Chat: the dialogue so far + the new turn)
  int cached_tokens = 0;  // of those, served from the KV cache of earlier turns (not recomputed)
  int generated_tokens = 0;
  int image_tiles = 0;  // tiles in the prompt
  union {               // pictures and videos whose features were reused, not encoded again
    int media_cache_hits = 0;
    [[deprecated("use media_cache_hits")]] int image_cache_hits;  // the old name
  };
  int64_t peak_rss_bytes = 0;  // the process's peak resident memory so far
  int prefill_tokens() const { return prompt_tokens - cached_tokens; }
  double prefill_tokens_per_s() const {
    return prefill_ms > 0 ? prefill_tokens() * 1000.0 / prefill_ms : 0;
  }
  double decode_tokens_per_s() const {
    return decode_ms > 0 ? generated_tokens * 1000.0 / decode_ms : 0;
  }
  // One line: tokens in (new, cached) and out, image tiles and encode time, speeds, peak RAM.
  std::string summary() const;
};

struct Result {
  std::string text;             // the answer, special tokens removed
  std::vector<int32_t> tokens;  // generated ids (the stop token excluded)
  bool stopped_by_eos = false;
  bool cancelled = false;  // GenerationOptions::cancel was set, or the callback returned false
  int dropped_turns = 0;   // Chat: the oldest turns dropped so the dialogue fits the context
  Metrics metrics;
};

// Receives each new piece of the answer (whole UTF-8 characters); return false to stop.
using TextCallback = std::function<bool(std::string_view piece)>;

struct ChatOptions {
  int context = 0;     // tokens the dialogue may fill; 0: the engine's context length
  std::string system;  // an optional system message, kept when old turns are dropped
  // true: a new picture (set_image, or after clear) goes before the text of the next turn unless
  // that text places it with <image>. false: the picture enters only where a text says <image>.
  bool image_first = true;
};

class Engine;

// One dialogue with its own KV cache: each turn computes only the tokens that are new, earlier
// turns stay in the cache. Pictures are encoded once and reused. Create with Engine::chat(); the
// Engine must outlive it. One call at a time per Chat; Chats of one Engine may run on different
// threads (they share the Engine's threads, taking turns per kernel).
class Chat {
 public:
  ~Chat();
  Chat(Chat&&) noexcept;
  Chat& operator=(Chat&&) noexcept;

  // The current picture: `<image>` in a turn's text puts it there (see ChatOptions::image_first).
  void set_image(Image image);
  void set_image_file(const std::string& path);  // decodes now: a bad file throws here
  // Or the current video, in place of a picture: `<video>` puts it there. Its metadata is read
  // now (a bad file throws here), its frames at the first turn that shows it (sampled by that
  // turn's GenerationOptions). A dialogue holds one video: another needs clear() first.
  void set_video_file(const std::string& path);
  void clear_media();  // forgets the current picture or video
  [[deprecated("use clear_media")]] void clear_image() { clear_media(); }  // the old name
  bool has_image() const;  // the current item is a picture
  bool has_video() const;  // the current item is a video

  // Answers one user turn and remembers it. When the dialogue would overflow the context (prompt +
  // max_new_tokens), the oldest turns are dropped (Result::dropped_turns); a turn that can never
  // fit throws smolvlm::Error and leaves the dialogue as it was.
  Result ask(const std::string& text, const GenerationOptions& options = {},
             const TextCallback& on_text = nullptr);
  // Adds an exchange to the dialogue without generating (computed with the next ask).
  void add_exchange(const std::string& user_text, const std::string& assistant_text);
  // Forgets the dialogue; the current picture is kept and counts as new again.
  void clear();

  int turns() const;                         // exchanges in the dialogue
  int context_tokens() const;                // tokens held in the KV cache
  std::vector<int32_t> context_ids() const;  // those tokens' ids
  int context_length() const;                // the most it may hold
  // The dialogue as the prompt of the next turn would render it (without the generation prompt).
  std::string transcript() const;

 private:
  friend class Engine;
  struct Impl;
  explicit Chat(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Facts about the loaded model, for --verbose and RK35llm::SetInfo.
struct ModelInfo {
  std::string path;
  int64_t parameters = 0;
  int text_layers = 0, text_hidden = 0, vocab = 0;
  int vision_layers = 0, vision_hidden = 0, tile_size = 0, tokens_per_tile = 0;
  int context = 0;  // the engine's context length
  int threads = 0;
  std::string kernels;          // the kernel path
  std::string summary() const;  // one line
};

class Engine {
 public:
  // Loads a Hugging Face SmolVLM2 folder (config.json, tokenizer.json, *.safetensors), or a
  // llama.cpp text GGUF with its mmproj GGUF (options.mmproj), or a folder holding such a pair.
  // Throws smolvlm::Error with a one-line message when anything is missing or malformed.
  static std::unique_ptr<Engine> load(const std::string& model_dir,
                                      const LoadOptions& options = {});
  ~Engine();

  // Answers the conversation's last user turn. The context is fresh for each call.
  Result generate(const Conversation& conversation, const GenerationOptions& options = {},
                  const TextCallback& on_text = nullptr);

  // A new dialogue that keeps its context between turns (see Chat).
  Chat chat(const ChatOptions& options = {});

  ModelInfo info() const;
  int context_length() const;
  double load_ms() const;

 private:
  Engine();
  friend class Scheduler;  // serving.h: runs many conversations on this Engine's model
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace smolvlm
