// SigLIP vision encoder and the SmolVLM connector (pixel shuffle + projection), spec §3–§4.
#pragma once

#include <vector>

#include "model/config.h"
#include "model/weights.h"

namespace smolvlm {

class VisionEncoder {
 public:
  VisionEncoder(const ModelConfig& cfg, const VisionWeights& w) : cfg_(cfg), w_(w) {}

  // One tile [channels, S, S] → last hidden state after post_layernorm [num_patches, hidden].
  std::vector<float> encode_tile(const float* pixels) const;
  // Pixel shuffle + modality projection: [num_patches, hidden] → [image_seq_len, text hidden].
  std::vector<float> connect(const std::vector<float>& hidden) const;
  // Both, for n tiles laid out [n, C, S, S] → [n · image_seq_len, text hidden].
  std::vector<float> image_features(const float* pixels, int n_tiles) const;

 private:
  const ModelConfig& cfg_;
  const VisionWeights& w_;
};

// The pixel-shuffle permutation alone (exposed for tests): x [G·G, D] → [(G/s)², D·s²].
std::vector<float> pixel_shuffle(const std::vector<float>& x, int grid, int dim, int scale);

}  // namespace smolvlm
