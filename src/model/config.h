// Model hyper-parameters, read from a HF folder's config.json (+ preprocessor/processor configs)
// with transformers' defaults for omitted keys (spec §12). Nothing about sizes is hard-coded
// elsewhere: 256M, 500M and 2.2B all run from these values.
#pragma once

#include <string>

#include "vision/image_processor.h"

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

struct ModelConfig {
  VisionConfig vision;
  TextConfig text;
  int scale_factor = 4;  // pixel-shuffle factor of the connector
  int image_token_id = 49190;
  int image_seq_len = 64;  // embeddings per tile = (patches per side / scale)^2
  ImageProcessorConfig processor;
  int connector_in() const { return vision.hidden * scale_factor * scale_factor; }
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
// Checks internal consistency (divisibility etc.); throws smolvlm::Error.
void validate(const ModelConfig& cfg);

}  // namespace smolvlm
