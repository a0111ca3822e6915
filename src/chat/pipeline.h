// The stages from a conversation to the decoder's input as plain functions, so tests and the
// benchmark can check and time each against the references: preprocess pictures → render and
// tokenise → encode → embed. Built on the one prompt route (chat/conversation_prompt.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "chat/prompt.h"
#include "model/model.h"
#include "vision/image.h"
#include "vision/image_processor.h"

namespace smolvlm {

struct PreparedPrompt {
  std::string text;  // expanded prompt (image tokens written out)
  std::vector<int32_t> ids;
  std::vector<float> pixels;  // all tiles of all images, [n_tiles, C, S, S]
  int n_tiles = 0;
};

// `images` are the pictures for the conversation's image items, in order; `frames` the frames
// of its (single) video item, if any.
PreparedPrompt prepare_prompt(const Model& model, const std::vector<PromptMessage>& messages,
                              const std::vector<Image>& images, const ImageProcessorConfig& proc,
                              const std::vector<Image>& video_frames = {},
                              const VideoSlot& video = {});

// Token embeddings with the image features written over the `<image>` rows, in order (§6).
std::vector<float> embed_prompt(const Model& model, const std::vector<int32_t>& ids,
                                const std::vector<float>& image_features);

}  // namespace smolvlm
