// The one route from a conversation to the decoder's input, shared by Engine::generate, Chat and
// the Scheduler: pictures and videos are encoded into EncodedMedia (features + where they sit in
// the prompt), the conversation is rendered and tokenised with each media item's tokens written
// out, every image token is tied to its feature row, and prefill() runs the positions that are
// not cached yet.
#pragma once

#include <smolvlm/smolvlm.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "chat/prompt.h"
#include "kernels/compute.h"
#include "loader/model.h"
#include "text/decoder.h"
#include "vision/image_processor.h"

namespace smolvlm {

// A picture or a video with its features, encoded once and shared by every prompt that shows it.
struct EncodedMedia {
  uint64_t uid = 0;  // names these features in caches' bookkeeping; unique per encoding
  bool is_video = false;
  ImageSlot slot;               // a picture's tile grid
  VideoSlot video;              // a video's frame times
  int n_tiles = 0;              // tiles (a video: frames), each image_seq_len feature rows
  std::vector<float> features;  // [n_tiles · image_seq_len, text hidden]
  size_t bytes() const { return features.size() * sizeof(float); }
};
using MediaPtr = std::shared_ptr<const EncodedMedia>;

// The public conversation as template messages. Each picture or video item becomes an Image/Video
// item, and `media_for` gives its encoding (appended to `media`, in item order). Throws
// smolvlm::Error for an unknown role or an empty conversation.
std::vector<PromptMessage> prompt_messages(const Conversation& conversation,
                                           const std::function<MediaPtr(const Content&)>& media_for,
                                           std::vector<MediaPtr>& media);

// The pixels of a picture item (Image, ImageFile or ImageBytes), decoded with the usual limits.
Image content_picture(const Content& content);

// Refuses at once a conversation that cannot fit `context` tokens, before any picture is decoded
// or encoded: each picture costs at least its tiles (from the size in its header, tiled as the
// image processor tiles it) × image_seq_len tokens, a video at least one frame's; the text is
// counted only where it could decide (a token covers at least one byte). A picture named many
// times is read once. Throws smolvlm::Error ("... more than the context of N allows"), and for a
// second video; pictures whose header says nothing usable count nothing here (decoding them
// reports what is wrong).
void check_prompt_fits(const Model& model, const Conversation& conversation,
                       const ImageProcessorConfig& proc, int context);

// The least number of tokens one picture (width × height) takes in a prompt.
int64_t picture_tokens_at_least(const Model& model, int width, int height,
                                const ImageProcessorConfig& proc);

// The tile settings of a request applied to the model's processor config.
ImageProcessorConfig processor_for(const Model& model, const GenerationOptions& options);

// Preprocesses one picture into 8-bit tiles and encodes them one at a time with the vision
// weights resident (Model::with_vision_resident); adds the time, preprocessing included, to
// *vision_ms when given.
MediaPtr encode_picture(const Model& model, const kernels::Compute& cx, const Image& picture,
                        const ImageProcessorConfig& proc, double* vision_ms = nullptr);
// Opens a video file, samples its frames as HF does (options.video_fps / video_max_frames, else
// the model's video_sampling) and encodes them, one unsplit tile a frame. Pipelined: the decoder
// runs one frame ahead on its own thread while the encoder works. Adds to m.video_decode_ms
// (decoding alone) and m.vision_ms.
MediaPtr encode_video_file(const Model& model, const kernels::Compute& cx, const std::string& path,
                           const GenerationOptions& options, const ImageProcessorConfig& proc,
                           Metrics& m);

// What a prompt position carries: text, or row `row` of media `uid`'s features. Two prompts'
// positions are interchangeable in a KV cache when their ids and their sources are equal.
constexpr int64_t kTextSource = -1;
inline int64_t media_source(uint64_t uid, size_t row) {
  return static_cast<int64_t>(uid << 32 | row);
}

struct RenderedPrompt {
  std::string text;  // the expanded prompt (image tokens written out)
  std::vector<int32_t> ids;
  std::vector<int64_t> source;     // per position (see kTextSource)
  std::vector<const float*> rows;  // per position: its feature row, or null for text
  int n_tiles = 0;
  size_t size() const { return ids.size(); }
};

// Renders `messages` as the chat template does (with the generation prompt), writes out each
// Image/Video item's tokens and ties them to `media` (one per item, in order). Throws
// smolvlm::Error when items and media differ in number or the text holds literal image tokens.
RenderedPrompt render_prompt(const Model& model, const std::vector<PromptMessage>& messages,
                             const std::vector<MediaPtr>& media, bool add_generation_prompt = true);

// Token embeddings of positions [from, from + n) of `prompt` with the feature rows spliced in.
std::vector<float> embed_positions(const Model& model, const RenderedPrompt& prompt, size_t from,
                                   size_t n);

}  // namespace smolvlm
