// A loaded SmolVLM2: config, tokenizer, weights and the two networks, ready to run.
#pragma once

#include <memory>
#include <string>

#include "model/config.h"
#include "model/weights.h"
#include "text/decoder.h"
#include "text/tokenizer.h"
#include "vision/vision_encoder.h"

namespace smolvlm {

class Model {
 public:
  // A Hugging Face model folder. Throws smolvlm::Error.
  static std::unique_ptr<Model> load_hf(const std::string& dir);

  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelConfig config;
  const Tokenizer tokenizer;
  const ModelWeights weights;
  const VisionEncoder vision;
  const Decoder decoder;
  int eos_id() const { return eos_id_; }

 private:
  Model(ModelConfig cfg, Tokenizer tok, ModelWeights w);
  int eos_id_;
};

}  // namespace smolvlm
