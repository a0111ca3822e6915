// A loaded SmolVLM2: config, tokenizer, weights and the two networks, ready to run.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "model/config.h"
#include "model/weights.h"
#include "text/decoder.h"
#include "text/tokenizer.h"
#include "vision/image_processor.h"
#include "vision/vision_encoder.h"

namespace smolvlm {

class Model {
 public:
  // A Hugging Face model folder. Throws smolvlm::Error.
  // vision_precision: see smolvlm.h.
  static std::unique_ptr<Model> load_hf(const std::string& dir,
                                        VisionPrecision vision_precision = VisionPrecision::Auto);
  // llama.cpp's pair: a text GGUF (tokenizer in its metadata) and its vision projector (mmproj).
  // cache_dir: LoadOptions::cache_dir (where Q4_0 decode panels are kept; empty: none).
  static std::unique_ptr<Model> load_gguf(const std::string& text_path,
                                          const std::string& mmproj_path,
                                          VisionPrecision vision_precision = VisionPrecision::Auto,
                                          const std::string& cache_dir = "");
  // Either kind: a HF folder (mmproj_path must be empty), a text GGUF with its mmproj (when
  // mmproj_path is empty: the one .gguf beside it with "mmproj" in its name), or a folder holding
  // one text GGUF and one *mmproj*.gguf (what `smolvlm convert` writes).
  static std::unique_ptr<Model> load(const std::string& model_path,
                                     const std::string& mmproj_path = "",
                                     VisionPrecision vision_precision = VisionPrecision::Auto,
                                     const std::string& cache_dir = "");

  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelConfig config;
  const Tokenizer tokenizer;
  const ModelWeights weights;
  const VisionEncoder vision;
  const Decoder decoder;
  int eos_id() const { return eos_id_; }
  // Runs `encode` (the vision encoder's work on a picture, or a video frame by frame as it
  // decodes) with one network resident at a time: the text weights' file pages are dropped from
  // the resident set before, and the vision weights' after, so a picture never costs both (256M:
  // ~140 MB Q8_0 text + ~190 MB F16 vision). Dropped pages stay in the page cache and fault back
  // in when next read (~tens of ms; a tile takes ~1 s). Weights not read from a mapped file
  // (converted at load time) stay as they are.
  void with_vision_resident(const std::function<void()>& encode) const;

 private:
  Model(ModelConfig cfg, Tokenizer tok, ModelWeights w, VisionPrecision vision_precision);
  int eos_id_;
};

}  // namespace smolvlm
