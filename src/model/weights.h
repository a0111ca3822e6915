// The model's parameters as named, shape-checked matrices in their stored type (float32 norms).
// Loading checks every tensor the config implies against the file (name and shape) and fails with a
// one-line error naming it.
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "formats/tensor.h"
#include "kernels/kernels.h"
#include "model/config.h"

namespace smolvlm {

// Matrices are views in their stored type (into the mapped file, or into `storage` below);
// small vectors (norms, biases, position embeddings) are widened to float32.
struct Linear {
  kernels::Matrix w;     // [out, in]
  std::vector<float> b;  // [out] or empty
};

struct Norm {
  std::vector<float> w, b;  // b empty for RMSNorm
};

struct VisionLayerWeights {
  Norm ln1, ln2;
  Linear q, k, v, o, fc1, fc2;
};

struct VisionWeights {
  Linear patch;                 // conv as a matrix: [hidden, channels·patch·patch], (c, ky, kx)
  std::vector<float> position;  // [num_patches, hidden]
  std::vector<VisionLayerWeights> layers;
  Norm post_ln;
  Linear connector;  // [text hidden, vision hidden·scale²], no bias
};

struct TextLayerWeights {
  Norm input_norm, post_attention_norm;  // HF: input_layernorm, post_attention_layernorm
  Linear q, k, v, o, gate, up, down;
  // The layer's seven matrices, in that order (for what is done to each alike).
  std::array<Linear*, 7> linears() { return {&q, &k, &v, &o, &gate, &up, &down}; }
  std::array<const Linear*, 7> linears() const { return {&q, &k, &v, &o, &gate, &up, &down}; }
};

struct TextWeights {
  kernels::Matrix embed;  // [vocab, hidden]
  std::vector<TextLayerWeights> layers;
  Norm norm;
  Linear lm_head;  // the embedding matrix again when the head is tied or absent
};

struct ModelWeights {
  VisionWeights vision;
  TextWeights text;
  // Whatever the views point into: mapped files, converted buffers.
  std::vector<std::shared_ptr<const void>> storage;
};

// Looks a tensor up by its HF name; returns nullptr when absent.
using TensorLookup = std::function<const TensorView*(const std::string& name)>;

// Supported types for the big matrices (others are refused with an error naming the tensor).
bool is_matrix_type(DType t);

// Every tensor a HF SmolVLM checkpoint of this config holds (names as transformers saves them:
// model.text_model.*, an untied lm_head unless tie_word_embeddings).
struct NamedShape {
  std::string name;
  std::vector<int64_t> shape;
};
std::vector<NamedShape> hf_tensor_shapes(const ModelConfig& cfg);

// Re-stores the big matrices in another type at load time (e.g. an F32 checkpoint run as
// Q8_0 w8a8 without converting files first). DType::F32 leaves a part as it is. The new
// buffers are kept in w.storage.
void requantize(ModelWeights& w, DType text_type, DType vision_type);

// HF SmolVLM naming (model.vision_model.*, model.connector.*, model.text_model.* or
// model.language_model.*, lm_head.weight). Throws smolvlm::Error naming the first bad tensor.
ModelWeights load_hf_weights(const ModelConfig& cfg, const TensorLookup& find);

}  // namespace smolvlm
