// The golden suites' way onto the product's prompt route (chat/conversation_prompt.h): a case's
// pictures preprocessed into 8-bit tiles as encode_picture does, its conversation rendered by
// render_prompt, and feature rows tied to a prompt's image tokens as render_prompt ties them.
#pragma once

#include <smolvlm/error.h>

#include <memory>
#include <string>
#include <vector>

#include "chat/conversation_prompt.h"
#include "vision/image_processor.h"

namespace smolvlm::test {

struct CasePrompt {
  std::vector<MediaPtr> media;  // slots and tile counts, no features
  RenderedPrompt prompt;        // text and ids (its image rows are null: nothing encoded)
  std::vector<float> pixels;    // every tile's pixel values in prompt order, [n_tiles, 3, S, S]
  int n_tiles = 0;
};

// `images` are the pictures of the conversation's image items, in order; `frames` the frames of
// its one video item, if any, at `video`'s times (one unsplit tile a frame, as a video file's).
inline CasePrompt case_prompt(const Model& model, const std::vector<PromptMessage>& messages,
                              const std::vector<Image>& images, const ImageProcessorConfig& proc,
                              const std::vector<Image>& frames = {}, const VideoSlot& video = {}) {
  CasePrompt out;
  size_t next_image = 0;
  bool video_used = false;
  uint64_t uid = 0;
  for (const PromptMessage& m : messages) {
    for (const PromptItem& item : m.content) {
      if (item.kind == PromptItem::Kind::Text) continue;
      auto e = std::make_shared<EncodedMedia>();
      e->uid = ++uid;
      if (item.kind == PromptItem::Kind::Image) {
        if (next_image >= images.size())
          throw Error("the conversation has more image items than images");
        const PictureTiles tiles = preprocess_image_tiles(images[next_image++], proc);
        const size_t tile = size_t{3} * tiles.tile_size * tiles.tile_size;
        for (int t = 0; t < tiles.n_tiles; ++t) {
          out.pixels.resize(out.pixels.size() + tile);
          tiles.pixel_values(t, out.pixels.data() + out.pixels.size() - tile);
        }
        e->slot = {tiles.rows, tiles.cols};
        e->n_tiles = tiles.n_tiles;
      } else {
        if (video_used) throw Error("only one video per conversation is supported");
        if (frames.empty() || frames.size() != video.timestamps_s.size())
          throw Error("video frames and timestamps differ in number");
        for (const Image& f : frames) {
          const ProcessedImage p = preprocess_video_frame(f, proc);
          out.pixels.insert(out.pixels.end(), p.pixels.begin(), p.pixels.end());
        }
        e->is_video = true;
        e->video = video;
        e->n_tiles = static_cast<int>(frames.size());
        video_used = true;
      }
      out.n_tiles += e->n_tiles;
      out.media.push_back(std::move(e));
    }
  }
  if (next_image != images.size()) throw Error("more images given than the conversation places");
  out.prompt = render_prompt(model, messages, out.media);
  return out;
}

// A prompt of stored ids (a reference's input_ids) with `features` — every picture's rows, in
// order — tied to its image tokens one by one, as one medium holding them all.
inline RenderedPrompt prompt_with_features(const Model& model, const std::vector<int32_t>& ids,
                                           const std::vector<float>& features) {
  const size_t hidden = static_cast<size_t>(model.config.text.hidden);
  RenderedPrompt p;
  p.ids = ids;
  p.source.assign(ids.size(), kTextSource);
  p.rows.assign(ids.size(), nullptr);
  const size_t rows = features.size() / hidden;
  size_t next = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] != model.config.image_token_id) continue;
    if (next >= rows) throw Error("more image tokens in the prompt than feature rows");
    p.source[i] = media_source(1, next);
    p.rows[i] = features.data() + next * hidden;
    ++next;
  }
  if (next != rows) throw Error("fewer image tokens in the prompt than feature rows");
  return p;
}

// Its token embeddings with the feature rows spliced in (the decoder's input for a whole prompt).
inline std::vector<float> embed_with_features(const Model& model, const std::vector<int32_t>& ids,
                                              const std::vector<float>& features) {
  return embed_positions(model, prompt_with_features(model, ids, features), 0, ids.size());
}

}  // namespace smolvlm::test
