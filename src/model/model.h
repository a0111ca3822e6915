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
  // vision_precision: see smolvlm.h.
  static std::unique_ptr<Model> load_hf(const std::string& dir,
                                        VisionPrecision vision_precision = VisionPrecision::F32);
  // llama.cpp's pair: a text GGUF (tokenizer in its metadata) and its vision projector (mmproj).
  static std::unique_ptr<Model> load_gguf(const std::string& text_path,
                                          const std::string& mmproj_path,
                                          VisionPrecision vision_precision = VisionPrecision::F32);
  // Either kind: a HF folder (mmproj_path must be empty), a text GGUF with its mmproj (when
  // mmproj_path is empty: the one .gguf beside it with "mmproj" in its name), or a folder holding
  // one text GGUF and one *mmproj*.gguf (what `smolvlm convert` writes).
  static std::unique_ptr<Model> load(const std::string& model_path,
                                     const std::string& mmproj_path = "",
                                     VisionPrecision vision_precision = VisionPrecision::F32);

  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelConfig config;
  const Tokenizer tokenizer;
  const ModelWeights weights;
  const VisionEncoder vision;
  const Decoder decoder;
  int eos_id() const { return eos_id_; }
  // Drops the vision weights' file pages from the resident set once a picture is encoded: the
  // vision encoder's ~190 MB (256M, F16) are then not held while the text model answers. They
  // stay in the page cache and fault back in for the next picture. Weights that are not a
  // mapped file (converted at load time) are left alone.
  void release_vision_pages() const;

 private:
  Model(ModelConfig cfg, Tokenizer tok, ModelWeights w, VisionPrecision vision_precision);
  int eos_id_;
};

}  // namespace smolvlm
