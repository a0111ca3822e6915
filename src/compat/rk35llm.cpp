// RK35llm on the smolvlm Engine and Chat (see include/smolvlm/RK35llm.h for the semantics).
#define SMOLVLM_RK35LLM_NO_OPENCV
#include <smolvlm/RK35llm.h>
#include <smolvlm/smolvlm.h>

#include <atomic>

#include "compat/model_source.h"

struct RK35llm::Impl {
  bool info = false, silence = false, history = true;
  std::unique_ptr<smolvlm::Engine> engine;
  std::unique_ptr<smolvlm::Chat> chat;
  smolvlm::GenerationOptions gen;
  std::atomic<bool> cancel{false};
};

namespace {

void report(const char* what, const std::string& message) {
  std::fprintf(stderr, "RK35llm %s: %s\n", what, message.c_str());
}

bool is_one_of(const std::string& s, std::initializer_list<const char*> words) {
  for (const char* w : words) {
    if (s == w) return true;
  }
  return false;
}

}  // namespace

RK35llm::RK35llm() : impl_(std::make_unique<Impl>()) {}
RK35llm::~RK35llm() = default;

void RK35llm::SetInfo(bool on) { impl_->info = on; }
void RK35llm::SetSilence(bool on) { impl_->silence = on; }
void RK35llm::SetHistory(bool on) { impl_->history = on; }
void RK35llm::Cancel() { impl_->cancel.store(true); }

bool RK35llm::LoadModel(const std::string& VisionModel, const std::string& LLMModel, int NewTokens,
                        int ContextLength) {
  try {
    if (NewTokens < 1) throw smolvlm::Error("NewTokens must be at least 1");
    if (ContextLength < 16) throw smolvlm::Error("ContextLength must be at least 16");
    const smolvlm::compat::ModelSource src = smolvlm::compat::model_source(VisionModel, LLMModel);
    smolvlm::LoadOptions load;
    load.context = ContextLength;
    load.mmproj = src.mmproj;
    impl_->engine = smolvlm::Engine::load(src.model, load);
    smolvlm::ChatOptions chat;
    chat.image_first = false;  // as the original: the picture goes where a question says <image>
    impl_->chat = std::make_unique<smolvlm::Chat>(impl_->engine->chat(chat));
    impl_->gen.max_new_tokens = NewTokens;
    impl_->gen.cancel = &impl_->cancel;
    if (impl_->info) std::printf("%s\n", impl_->engine->info().summary().c_str());
    return true;
  } catch (const std::exception& e) {
    report("LoadModel", e.what());
    impl_->chat.reset();
    impl_->engine.reset();
    return false;
  }
}

bool RK35llm::LoadImage(const std::string& path) {
  if (!impl_->chat) {
    report("LoadImage", "load the model first");
    return false;
  }
  try {
    impl_->chat->set_image_file(path);
    return true;
  } catch (const std::exception& e) {
    report("LoadImage", e.what());
    return false;
  }
}

bool RK35llm::LoadImagePixels(int width, int height, int channels, const unsigned char* bgr,
                              size_t stride) {
  if (!impl_->chat) {
    report("LoadImage", "load the model first");
    return false;
  }
  try {
    if (bgr == nullptr || width <= 0 || height <= 0)
      throw smolvlm::Error("the picture is empty (unreadable file?)");
    if (channels == 3) {
      impl_->chat->set_image(smolvlm::Image::from_bgr(width, height, bgr, stride));
      return true;
    }
    if (channels != 1 && channels != 4) {
      throw smolvlm::Error("pictures need 1, 3 or 4 channels of 8 bits, not " +
                           std::to_string(channels));
    }
    // Grey → BGR; BGRA → BGR (alpha over white, as the file decoder does).
    std::vector<uint8_t> packed(static_cast<size_t>(width) * static_cast<size_t>(height) * 3);
    for (int y = 0; y < height; ++y) {
      const unsigned char* row = bgr + stride * static_cast<size_t>(y);
      uint8_t* out = packed.data() + static_cast<size_t>(y) * static_cast<size_t>(width) * 3;
      for (int x = 0; x < width; ++x) {
        for (int c = 0; c < 3; ++c) {
          if (channels == 1) {
            out[3 * x + c] = row[x];
          } else {
            const int a = row[4 * x + 3];
            out[3 * x + c] =
                static_cast<uint8_t>((row[4 * x + c] * a + 255 * (255 - a) + 127) / 255);
          }
        }
      }
    }
    impl_->chat->set_image(smolvlm::Image::from_bgr(width, height, packed.data()));
    return true;
  } catch (const std::exception& e) {
    report("LoadImage", e.what());
    return false;
  }
}

std::string RK35llm::Ask(const std::string& question) {
  if (question.empty() && std::cin.eof()) std::exit(0);
  if (is_one_of(question, {"<exit>", "/exit", "/quit"})) {
    std::fflush(stdout);
    std::exit(0);
  }
  if (!impl_->chat) {
    report("Ask", "load the model first");
    return "";
  }
  if (is_one_of(question, {"<clear>", "clear", "/clear"})) {
    impl_->chat->clear();
    return "";
  }
  if (!impl_->history) impl_->chat->clear();
  impl_->cancel.store(false);
  try {
    smolvlm::TextCallback stream;
    if (!impl_->silence) {
      stream = [](std::string_view piece) {
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
        return true;
      };
    }
    const smolvlm::Result r = impl_->chat->ask(question, impl_->gen, stream);
    if (r.dropped_turns > 0) {
      std::fprintf(stderr, "\n[the dialogue outgrew the context: dropped the oldest %d turn%s]\n",
                   r.dropped_turns, r.dropped_turns == 1 ? "" : "s");
    }
    if (impl_->info) std::printf("\n[%s]\n", r.metrics.summary().c_str());
    return r.text;
  } catch (const std::exception& e) {
    report("Ask", e.what());
    return "";
  }
}
