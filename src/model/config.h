// Model hyper-parameters, read from a HF folder's config.json (+ preprocessor/processor configs)
// with transformers' defaults for omitted keys (spec §12). Nothing about sizes is hard-coded
// elsewhere: 256M, 500M and 2.2B all run from these values.
#pragma once

#include <array>
#include <string>

namespace smolvlm {

struct VisionConfig {
  int hidden = 768;
  int layers = 12;
  int heads = 12;
  int intermediate = 3072;
  int patch = 16;
  int image_size = 512;
  int channels = 3;
  float layer_norm_eps = 1e-6f;
  // The valid convolution's grid: a remainder of image_size / patch is dropped (the 2.2B's
  // 384-pixel tiles make 27 patches of 14 and lose 6 pixels).
  int patches_per_side() const { return image_size / patch; }
  int num_patches() const { return patches_per_side() * patches_per_side(); }
  int head_dim() const { return hidden / heads; }
};

struct TextConfig {
  int hidden = 576;
  int layers = 30;
  int heads = 9;
  int kv_heads = 3;
  int head_dim = 64;
  int intermediate = 1536;
  int vocab = 49280;
  float rms_norm_eps = 1e-5f;
  float rope_theta = 100000.0f;
  int max_positions = 8192;
  bool tie_word_embeddings = false;
};

// The image processor's settings (preprocessor_config.json; used by vision/image_processor.h),
// here so that ModelConfig carries them without the config reaching up into vision/.
// The sampling values accepted from the command line and from preprocessor_config.json: beyond
// them a 600-byte config file would have the sampler allocate gigabytes.
constexpr double kMinSamplingFps = 0.001, kMaxSamplingFps = 1000;
constexpr int kMaxSampledFrames = 4096;

struct ImageProcessorConfig {
  int longest_edge = 2048;  // preprocessor_config size.longest_edge
  int tile_size = 512;      // max_image_size.longest_edge (== vision image_size)
  bool do_split = true;     // do_image_splitting
  int max_tiles = 0;        // 0 = no cap; else cap rows*cols of the split grid (speed option)
  std::array<float, 3> mean{0.5f, 0.5f, 0.5f};
  std::array<float, 3> std{0.5f, 0.5f, 0.5f};
  double rescale = 1.0 / 255.0;
  int video_longest_edge = 2048;  // first resize of video frames (see spec §10)
  double video_fps = 1;           // video_sampling.fps: frames sampled per second
  int video_max_frames = 64;      // video_sampling.max_frames
};

struct ModelConfig {
  VisionConfig vision;
  TextConfig text;
  int scale_factor = 4;  // pixel-shuffle factor of the connector
  int image_token_id = 49190;
  int image_seq_len = 64;  // embeddings per tile = (patches per side / scale)^2
  ImageProcessorConfig processor;
  // The tensor-shaping keys config.json left out, with the transformers defaults used for them
  // ("vision_config.num_hidden_layers = 12, ..."); "" when none. Weight errors repeat it.
  std::string defaulted;
  int connector_in() const { return vision.hidden * scale_factor * scale_factor; }
};

// Sane maxima for the sizes a config gives, far above any SmolVLM (or other released model) and
// low enough that a hostile file cannot make the loader allocate or loop past reason before the
// tensors that should back the sizes are checked.
struct ConfigLimits {
  static constexpr int kLayers = 1024;
  static constexpr int kHidden = 1 << 16;
  static constexpr int kIntermediate = 1 << 18;
  static constexpr int kHeads = 1024;
  static constexpr int kHeadDim = 4096;
  static constexpr int kVocab = 1 << 22;
  static constexpr int kImageSize = 4096;  // vision image_size (the tile)
  static constexpr int kScaleFactor = 64;
  static constexpr int kPositions = 1 << 20;
  static constexpr int kLongestEdge = 16384;  // size.longest_edge (transformers caps at 4096)
  static constexpr int kVideoFrames = 1 << 16;
};

// Reads config.json (required) and preprocessor_config.json / processor_config.json (optional,
// spec defaults otherwise). Throws smolvlm::Error with a one-line message on bad values.
ModelConfig load_hf_config(const std::string& dir);

// A file's text and the name messages call it by.
struct NamedText {
  std::string name, text;
};
// load_hf_config on text already read: config.json, and preprocessor_config.json and
// processor_config.json where given (nullptr: absent); `dir` names those two in messages.
ModelConfig parse_hf_config(const NamedText& config, const std::string* preprocessor_json,
                            const std::string* processor_json, const std::string& dir);
// Checks internal consistency (divisibility etc.) and the ConfigLimits; throws smolvlm::Error
// "SOURCE: invalid model config: ..." (SOURCE names the file(s) the config came from).
void validate(const ModelConfig& cfg, const std::string& source = "");

}  // namespace smolvlm
