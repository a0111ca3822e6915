// Chat: a dialogue that lives in one KV cache (spec §9 prompt format).
//
// Each turn renders the whole dialogue as the HF chat template would, tokenises it, and runs only
// the tokens after the longest prefix the cache already holds. Turn k+1's prompt continues turn
// k's prompt + answer, so in practice only the new user turn is computed; where the answer's ids
// as generated differ from the tokenisation of its text (BPE merges across generated tokens), the
// cache is rewound to the first difference so that it always holds exactly the ids transformers
// would compute for the rendered dialogue. Image tokens are compared by which picture encoding and
// which feature row they carry, so a different picture with the same grid is never mistaken for
// a cached one.
#include <smolvlm/smolvlm.h>

#include <chrono>
#include <cstring>
#include <tuple>
#include <utility>

#include "chat/answer_loop.h"
#include "chat/conversation_prompt.h"
#include "chat/engine_impl.h"
#include "chat/markers.h"
#include "chat/prompt.h"
#include "video/video.h"
#include "vision/image.h"
#include "vision/image_processor.h"

namespace smolvlm {

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// A picture or a video of the dialogue with its features for each setting it was used with
// (tiles for a picture, frame sampling for a video).
struct ChatMedia {
  Image pixels;
  std::string video_path;  // set: a video file, its frames decoded when first encoded
  bool is_video() const { return !video_path.empty(); }
  struct Encoded {
    bool split = true;
    int max_tiles = 0;
    int video_max_frames = 0;
    double video_fps = 0;
    MediaPtr media;
  };
  std::vector<Encoded> encoded;
};
using ChatMediaPtr = std::shared_ptr<ChatMedia>;

struct Part {
  std::string text;
  ChatMediaPtr media;  // set: this part is the picture or video
};

struct Exchange {
  std::vector<Part> user;
  std::string answer;
};

bool uses(const std::vector<Part>& parts, const ChatMediaPtr& p) {
  for (const Part& part : parts) {
    if (part.media == p) return true;
  }
  return false;
}

}  // namespace

struct Chat::Impl {
  const Model& model;
  const kernels::Compute& cx;
  int context;
  ChatOptions options;
  std::unique_ptr<Sequence> sequence;  // the dialogue so far; created at the first turn
  std::vector<Exchange> exchanges;
  ChatMediaPtr current;
  bool current_is_new = false;  // goes before the next turn's text (ChatOptions::image_first)

  Impl(const Model& m, const kernels::Compute& c, int ctx, ChatOptions o)
      : model(m), cx(c), context(ctx), options(std::move(o)) {}

  std::vector<Part> user_parts(const std::string& text, bool place_new_picture) const {
    std::vector<Part> parts;
    bool placed = false;
    for (const MarkedPiece& piece : split_markers(text)) {
      if (piece.kind == MarkedPiece::Kind::Text) {
        parts.push_back({std::string(piece.text), nullptr});
        continue;
      }
      const bool video = piece.kind == MarkedPiece::Kind::Video;
      if (!current) {
        throw Error(video ? "the text says <video> but no video is loaded"
                          : "the text says <image> but no picture is loaded");
      }
      if (video != current->is_video()) {
        throw Error(video ? "the text says <video> but the current item is a picture"
                          : "the text says <image> but the current item is a video");
      }
      parts.push_back({{}, current});
      placed = true;
    }
    if (!placed && place_new_picture && current_is_new && options.image_first && current) {
      parts.insert(parts.begin(), Part{{}, current});
    }
    return parts;
  }

  std::vector<PromptMessage> messages(const std::vector<Exchange>& ex,
                                      const std::vector<Part>* next) const {
    std::vector<PromptMessage> out;
    if (!options.system.empty())
      out.push_back({"system", {{PromptItem::Kind::Text, options.system}}});
    auto user = [](const std::vector<Part>& parts) {
      PromptMessage m{"user", {}};
      for (const Part& p : parts) {
        if (p.media) {
          m.content.push_back(
              {p.media->is_video() ? PromptItem::Kind::Video : PromptItem::Kind::Image, {}});
        } else {
          m.content.push_back({PromptItem::Kind::Text, p.text});
        }
      }
      return m;
    };
    for (const Exchange& e : ex) {
      out.push_back(user(e.user));
      out.push_back({"assistant", {{PromptItem::Kind::Text, e.answer}}});
    }
    if (next) out.push_back(user(*next));
    return out;
  }

  // The features of `p` for the call's settings, encoding them on first use.
  MediaPtr encoded(ChatMedia& p, const GenerationOptions& o, Metrics& metrics) const {
    for (const auto& e : p.encoded) {
      if (p.is_video() ? e.video_max_frames == o.video_max_frames && e.video_fps == o.video_fps
                       : e.split == o.split_images && e.max_tiles == o.max_tiles) {
        return e.media;
      }
    }
    MediaPtr m =
        p.is_video()
            ? encode_video_file(model, cx, p.video_path, o, processor_for(model, o), metrics)
            : encode_picture(model, cx, p.pixels, processor_for(model, o), &metrics.vision_ms);
    p.encoded.push_back({o.split_images, o.max_tiles, o.video_max_frames, o.video_fps, m});
    return m;
  }

  RenderedPrompt render(const std::vector<Exchange>& ex, const std::vector<Part>& next,
                        const GenerationOptions& o, Metrics& metrics) const {
    std::vector<MediaPtr> media;  // in placement order
    const ChatMedia* video = nullptr;
    auto collect = [&](const std::vector<Part>& parts) {
      for (const Part& p : parts) {
        if (!p.media) continue;
        if (p.media->is_video()) {
          if (video && video != p.media.get()) {
            throw Error("a dialogue holds one video: clear it to talk about another");
          }
          video = p.media.get();
        }
        media.push_back(encoded(*p.media, o, metrics));
      }
    };
    for (const Exchange& e : ex) collect(e.user);
    collect(next);
    return render_prompt(model, messages(ex, &next), media);
  }

  // Refuses at once a turn whose pictures alone cannot fit (a line of 100,000 <image> markers),
  // before the prompt is written out, tokenised or anything encoded. The text is left to the
  // full count (its tokens are at most its bytes, and a line is short next to that prompt).
  void check_turn_fits(const std::vector<Part>& next, const GenerationOptions& o,
                       size_t reserve) const {
    const ImageProcessorConfig proc = processor_for(model, o);
    int64_t tokens = 0;
    for (const Part& part : next) {
      if (!part.media) continue;
      tokens += part.media->is_video() ? model.config.image_seq_len  // at least one frame
                                       : picture_tokens_at_least(model, part.media->pixels.width,
                                                                 part.media->pixels.height, proc);
      if (tokens + static_cast<int64_t>(reserve) > context) {
        throw Error("this turn needs at least " + std::to_string(tokens) +
                    " prompt tokens for its pictures + up to " + std::to_string(reserve) +
                    " answer tokens, more than the context of " + std::to_string(context) +
                    " holds (place the picture fewer times, lower the answer cap or raise the "
                    "context)");
      }
    }
  }

  void reset_cache() {
    if (sequence) sequence->clear();
  }

  Result ask(const std::string& text, const GenerationOptions& o, const TextCallback& on_text) {
    if (o.max_new_tokens < 0) throw Error("max new tokens must not be negative");
    Result result;
    std::vector<Part> next = user_parts(text, true);
    const size_t reserve = static_cast<size_t>(std::max(o.max_new_tokens, 1));
    check_turn_fits(next, o, reserve);

    // Fit the dialogue: drop the oldest exchanges until prompt + answer cap fit the context.
    std::vector<Exchange> kept = exchanges;
    RenderedPrompt target;
    for (;;) {
      target = render(kept, next, o, result.metrics);
      if (target.ids.size() + reserve <= static_cast<size_t>(context)) break;
      if (kept.empty()) {
        throw Error("this turn needs " + std::to_string(target.ids.size()) +
                    " prompt tokens + up to " + std::to_string(reserve) +
                    " answer tokens, more than the context of " + std::to_string(context) +
                    " holds (shorten it, lower the answer cap or raise the context)");
      }
      const bool had_current = current && uses(kept.front().user, current);
      kept.erase(kept.begin());
      ++result.dropped_turns;
      // The picture being talked about stays: it moves to the oldest turn that remains.
      bool still_used = uses(next, current);
      for (const Exchange& e : kept) still_used = still_used || uses(e.user, current);
      if (had_current && !still_used) {
        std::vector<Part>& first = kept.empty() ? next : kept.front().user;
        first.insert(first.begin(), Part{{}, current});
      }
    }
    result.metrics.prompt_tokens = static_cast<int>(target.ids.size());
    result.metrics.image_tiles = target.n_tiles;

    if (!sequence) sequence = std::make_unique<Sequence>(model, context);
    // The longest cached prefix is kept; at least the last prompt position runs for its logits.
    try {
      const auto t = Clock::now();
      result.metrics.cached_tokens = static_cast<int>(sequence->prefill(cx, target));
      result.metrics.prefill_ms = ms_since(t);
      generate_answer(model, cx, *sequence, target.ids, o, on_text, result);
    } catch (...) {
      reset_cache();  // the cache may hold part of a step: start it afresh next time
      throw;
    }
    if (uses(next, current)) current_is_new = false;
    kept.push_back({std::move(next), without_markers(result.text)});
    exchanges = std::move(kept);
    return result;
  }
};

Chat::Chat(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Chat::~Chat() = default;
Chat::Chat(Chat&&) noexcept = default;
Chat& Chat::operator=(Chat&&) noexcept = default;

void Chat::set_image(Image image) {
  const std::string bad = check_image_dims(image.width, image.height);
  if (!bad.empty()) throw Error("the picture's " + bad);
  if (image.rgb.size() !=
      static_cast<size_t>(image.width) * static_cast<size_t>(image.height) * 3) {
    throw Error("the picture's pixel buffer does not match its size");
  }
  auto p = std::make_shared<ChatMedia>();
  p->pixels = {image.width, image.height, std::move(image.rgb)};
  impl_->current = std::move(p);
  impl_->current_is_new = true;
}

void Chat::set_image_file(const std::string& path) { set_image(Image::from_file(path)); }

void Chat::set_video_file(const std::string& path) {
  VideoReader check(path);  // opens it and reads its metadata now: a bad file throws here
  auto p = std::make_shared<ChatMedia>();
  p->video_path = path;
  impl_->current = std::move(p);
  impl_->current_is_new = true;
}

void Chat::clear_media() {
  impl_->current.reset();
  impl_->current_is_new = false;
}

bool Chat::has_image() const { return impl_->current != nullptr && !impl_->current->is_video(); }
bool Chat::has_video() const { return impl_->current != nullptr && impl_->current->is_video(); }

Result Chat::ask(const std::string& text, const GenerationOptions& options,
                 const TextCallback& on_text) {
  return impl_->ask(text, options, on_text);
}

void Chat::add_exchange(const std::string& user_text, const std::string& assistant_text) {
  std::vector<Part> parts = impl_->user_parts(user_text, true);
  if (uses(parts, impl_->current)) impl_->current_is_new = false;
  impl_->exchanges.push_back({std::move(parts), without_markers(assistant_text)});
}

void Chat::clear() {
  impl_->exchanges.clear();
  impl_->current_is_new = impl_->current != nullptr;
  // The cache is kept: the next turn reuses whatever prefix still matches (at least the
  // template's opening), and nothing else.
}

int Chat::turns() const { return static_cast<int>(impl_->exchanges.size()); }
int Chat::context_tokens() const { return impl_->sequence ? impl_->sequence->length() : 0; }
std::vector<int32_t> Chat::context_ids() const {
  return impl_->sequence ? impl_->sequence->ids() : std::vector<int32_t>{};
}
int Chat::context_length() const { return impl_->context; }

std::string Chat::transcript() const {
  return render_chat(impl_->messages(impl_->exchanges, nullptr), false);
}

Chat Engine::chat(const ChatOptions& options) {
  if (options.context < 0) throw Error("context length must be positive");
  const int context =
      options.context > 0 ? std::min(options.context, impl_->context) : impl_->context;
  if (options.system.find(kImageMarker) != std::string::npos ||
      options.system.find(kVideoMarker) != std::string::npos)
    throw Error("the system message cannot hold <image> or <video>");
  return Chat(std::make_unique<Chat::Impl>(*impl_->model, *impl_->compute, context, options));
}

}  // namespace smolvlm
