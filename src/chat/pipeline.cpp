#include "chat/pipeline.h"

#include <smolvlm/error.h>

#include <algorithm>
#include <cstring>

namespace smolvlm {

namespace {
void append_tiles(PreparedPrompt& out, const ProcessedImage& p) {
  out.pixels.insert(out.pixels.end(), p.pixels.begin(), p.pixels.end());
  out.n_tiles += p.n_tiles;
}
}  // namespace

PreparedPrompt prepare_prompt(const Model& model, const std::vector<PromptMessage>& messages,
                              const std::vector<Image>& images, const ImageProcessorConfig& proc,
                              const std::vector<Image>& video_frames, const VideoSlot& video) {
  PreparedPrompt out;
  std::vector<ImageSlot> slots;
  std::vector<VideoSlot> videos;
  // Tiles must follow the order of the placeholders in the text: walk the messages in order.
  size_t next_image = 0;
  for (const auto& m : messages) {
    for (const auto& item : m.content) {
      if (item.kind == PromptItem::Kind::Image) {
        if (next_image >= images.size())
          throw Error("the conversation has more image items than images");
        const ProcessedImage p = preprocess_image(images[next_image++], proc);
        slots.push_back({p.rows, p.cols});
        append_tiles(out, p);
      } else if (item.kind == PromptItem::Kind::Video) {
        if (!videos.empty()) throw Error("only one video per conversation is supported");
        if (video_frames.size() != video.timestamps_s.size() || video_frames.empty()) {
          throw Error("video frames and timestamps differ in number");
        }
        for (const auto& f : video_frames) append_tiles(out, preprocess_video_frame(f, proc));
        videos.push_back(video);
      }
    }
  }
  if (next_image != images.size()) throw Error("more images given than the conversation places");

  out.text = expand_prompt(render_chat(messages, true), slots, videos, model.config.image_seq_len);
  out.ids = model.tokenizer.encode(out.text);
  const auto image_tokens = std::count(out.ids.begin(), out.ids.end(), model.config.image_token_id);
  if (image_tokens != static_cast<long>(out.n_tiles) * model.config.image_seq_len) {
    throw Error("the prompt holds " + std::to_string(image_tokens) +
                " image tokens but the images give " +
                std::to_string(out.n_tiles * model.config.image_seq_len) +
                " (is there a literal <image> in the text?)");
  }
  return out;
}

std::vector<float> embed_prompt(const Model& model, const std::vector<int32_t>& ids,
                                const std::vector<float>& image_features) {
  const size_t H = static_cast<size_t>(model.config.text.hidden);
  std::vector<float> x(ids.size() * H);
  model.decoder.embed(ids.data(), static_cast<int>(ids.size()), x.data());
  size_t next = 0;
  const size_t rows = image_features.size() / H;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] != model.config.image_token_id) continue;
    if (next >= rows) throw Error("more <image> tokens in the prompt than image features");
    std::memcpy(x.data() + i * H, image_features.data() + next * H, sizeof(float) * H);
    ++next;
  }
  if (next != rows) throw Error("fewer <image> tokens in the prompt than image features");
  return x;
}

}  // namespace smolvlm
