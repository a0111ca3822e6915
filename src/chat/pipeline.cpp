#include "chat/pipeline.h"

#include <smolvlm/error.h>

#include <memory>

#include "chat/conversation_prompt.h"

namespace smolvlm {

PreparedPrompt prepare_prompt(const Model& model, const std::vector<PromptMessage>& messages,
                              const std::vector<Image>& images, const ImageProcessorConfig& proc,
                              const std::vector<Image>& video_frames, const VideoSlot& video) {
  PreparedPrompt out;
  std::vector<MediaPtr> media;  // slots only: the ids do not depend on the features
  size_t next_image = 0;
  bool video_used = false;
  auto append = [&](const ProcessedImage& p) {
    out.pixels.insert(out.pixels.end(), p.pixels.begin(), p.pixels.end());
    out.n_tiles += p.n_tiles;
  };
  for (const auto& m : messages) {
    for (const auto& item : m.content) {
      auto e = std::make_shared<EncodedMedia>();
      if (item.kind == PromptItem::Kind::Image) {
        if (next_image >= images.size())
          throw Error("the conversation has more image items than images");
        const ProcessedImage p = preprocess_image(images[next_image++], proc);
        e->slot = {p.rows, p.cols};
        e->n_tiles = p.n_tiles;
        append(p);
      } else if (item.kind == PromptItem::Kind::Video) {
        if (video_used) throw Error("only one video per conversation is supported");
        if (video_frames.size() != video.timestamps_s.size() || video_frames.empty())
          throw Error("video frames and timestamps differ in number");
        for (const auto& f : video_frames) append(preprocess_video_frame(f, proc));
        e->is_video = true;
        e->video = video;
        e->n_tiles = static_cast<int>(video_frames.size());
        video_used = true;
      } else {
        continue;
      }
      e->uid = media.size() + 1;
      media.push_back(std::move(e));
    }
  }
  if (next_image != images.size()) throw Error("more images given than the conversation places");
  RenderedPrompt r = render_prompt(model, messages, media);
  out.text = std::move(r.text);
  out.ids = std::move(r.ids);
  return out;
}

std::vector<float> embed_prompt(const Model& model, const std::vector<int32_t>& ids,
                                const std::vector<float>& image_features) {
  // The rows in order: one image whose features are all of them, spliced by the route.
  const size_t H = static_cast<size_t>(model.config.text.hidden);
  RenderedPrompt p;
  p.ids = ids;
  p.source.assign(ids.size(), kTextSource);
  p.rows.assign(ids.size(), nullptr);
  size_t next = 0;
  const size_t rows = image_features.size() / H;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] != model.config.image_token_id) continue;
    if (next >= rows) throw Error("more <image> tokens in the prompt than image features");
    p.source[i] = media_source(1, next);
    p.rows[i] = image_features.data() + next * H;
    ++next;
  }
  if (next != rows) throw Error("fewer <image> tokens in the prompt than image features");
  return embed_positions(model, p, 0, ids.size());
}

}  // namespace smolvlm
