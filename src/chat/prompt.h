// The SmolVLM2 prompt format: the chat template (spec §9.1) and the processor's expansion of
// `<image>` / `<video>` placeholders into image tokens (spec §8, §10).
#pragma once

#include <span>
#include <string>
#include <vector>

#include "chat/markers.h"
#include "text/tokenizer.h"

namespace smolvlm {

struct PromptItem {
  enum class Kind { Text, Image, Video };
  Kind kind = Kind::Text;
  std::string text;    // Text only
  bool plain = false;  // Text only: no markers, no control tokens in it (Content::plain)
};

struct PromptMessage {
  std::string role;  // "system" | "user" | "assistant"
  std::vector<PromptItem> content;
};

// Renders messages exactly like the SmolVLM2 chat template (with its video branch). `plain`, when
// given, receives where the plain Text items landed in the result.
std::string render_chat(const std::vector<PromptMessage>& messages, bool add_generation_prompt,
                        std::vector<TextSpan>* plain = nullptr);

struct ImageSlot {
  int rows = 0, cols = 0;  // 0×0: a single, unsplit tile
};

struct VideoSlot {
  std::vector<double> timestamps_s;  // one per frame
  double duration_s = 0.0;
};

// Token text for one image: rows×cols tiles with row/col tags, then the global tile.
std::string image_block(const ImageSlot& img, int image_seq_len);
std::string video_block(const VideoSlot& video, int image_seq_len);
// Replaces each `<image>` (left to right) with the next image's block and each `<video>` with
// the next video's block. Throws smolvlm::Error when the counts differ. Markers inside the
// `plain` ranges (sorted, disjoint) are text and stay; `plain_out` receives those ranges' places
// in the result.
std::string expand_prompt(const std::string& prompt, const std::vector<ImageSlot>& images,
                          const std::vector<VideoSlot>& videos, int image_seq_len,
                          std::span<const TextSpan> plain = {},
                          std::vector<TextSpan>* plain_out = nullptr);

// English number words as num2words writes them ("twenty-one", "one hundred").
std::string number_words(int n);

}  // namespace smolvlm
