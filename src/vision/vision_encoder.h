// SigLIP vision encoder and the SmolVLM connector (pixel shuffle + projection), spec §3–§4.
#pragma once

#include <smolvlm/vision_precision.h>

#include <vector>

#include "kernels/compute.h"
#include "model/config.h"
#include "model/weights.h"
#include "vision/image_processor.h"

namespace smolvlm {

class VisionEncoder {
 public:
  // Auto resolves here, from the stored type of the vision matrices (see VisionPrecision).
  VisionEncoder(const ModelConfig& cfg, const VisionWeights& w,
                VisionPrecision precision = VisionPrecision::Auto);

  // Whether the matmuls run in bf16 on `cx`: requested (or chosen by Auto), and its kernel path
  // has bf16 arithmetic.
  bool uses_bf16(const kernels::Compute& cx) const;
  // F32 or Bf16: what was asked for, or what Auto chose for these weights.
  VisionPrecision precision() const { return precision_; }
  // What the encoder layers' matmuls run in on `cx`, as `bench` reports it: "bf16", "int8"
  // (quantised weights, whatever was asked: w8a8 integer products) or "f32".
  const char* arithmetic(const kernels::Compute& cx) const;
  // The floating-point operations of one tile: the matmuls' 2·rows·cols a patch (the connector's
  // on the shuffled rows), and attention's two products, 4·patches²·hidden a layer.
  double flops_per_tile() const;

  // The working buffers of a tile (~30 MB for SigLIP-B/16): kept from one tile to the next, so
  // the tiles of a picture fault their pages in once, not once each.
  struct TileScratch {
    std::vector<float> patches, x, h, q, k, v, ctx, mlp, shuffled;
  };

  // One tile [channels, S, S] → last hidden state after post_layernorm [num_patches, hidden].
  std::vector<float> encode_tile(const kernels::Compute& cx, const float* pixels) const;
  // Pixel shuffle + modality projection: [num_patches, hidden] → [image_seq_len, text hidden].
  std::vector<float> connect(const kernels::Compute& cx, const std::vector<float>& hidden) const;
  // Both, for n tiles laid out [n, C, S, S] → [n · image_seq_len, text hidden]; `scratch`, when
  // given, carries the buffers over to the next call (tiles encoded one call each).
  std::vector<float> image_features(const kernels::Compute& cx, const float* pixels, int n_tiles,
                                    TileScratch* scratch = nullptr) const;
  // The same for a preprocessed picture's 8-bit tiles (what the engine keeps: a quarter of the
  // floats' memory), each turned into pixel values only when the encoder reaches it, with one
  // float tile and one set of scratch buffers for all the tiles.
  std::vector<float> image_features(const kernels::Compute& cx, const PictureTiles& tiles) const;

 private:
  const ModelConfig& cfg_;
  const VisionWeights& w_;
  VisionPrecision precision_;
  void linear(const kernels::Compute& cx, const float* x, int n, const Linear& l, float* y,
              bool bf16) const;
  // encode_tile into s.h, and connect from it into out [image_seq_len, text hidden].
  void encode_tile(const kernels::Compute& cx, const float* pixels, TileScratch& s) const;
  void connect(const kernels::Compute& cx, const float* hidden, TileScratch& s, float* out) const;
  // The layer's q, k and v of one input: in bf16, the input rounded once for all three.
  void linear_qkv(const kernels::Compute& cx, const float* x, int n, const VisionLayerWeights& l,
                  float* q, float* k, float* v, bool bf16) const;
};

}  // namespace smolvlm
