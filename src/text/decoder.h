// The Llama-style SmolLM2 decoder with a KV cache (spec §5).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/compute.h"
#include "kernels/kernels.h"
#include "model/config.h"
#include "model/weights.h"

namespace smolvlm {

// Per-layer keys (after RoPE) and values, [capacity, kv_heads · head_dim] each. The memory is
// calloc'ed: pages not yet reached by the sequence cost no RAM.
class KVCache {
 public:
  KVCache(const TextConfig& cfg, int capacity);
  int length() const { return length_; }
  int capacity() const { return capacity_; }
  void clear() { length_ = 0; }
  void truncate(int length) { length_ = length < length_ ? length : length_; }

 private:
  friend class Decoder;
  struct FreeDeleter {
    void operator()(float* p) const;
  };
  // Per layer, each KV head's keys (values) together: [kv_heads][capacity][head_dim]. A decode
  // step's attention task reads one head's keys, so it walks one contiguous run of pages instead
  // of every page of the layer (with the heads side by side in a row, each of the three heads'
  // tasks touched all of them: after a picture prompt, page walks made attention ~2× slower).
  float* k(int layer) { return k_.get() + static_cast<size_t>(layer) * capacity_ * row_; }
  float* v(int layer) { return v_.get() + static_cast<size_t>(layer) * capacity_ * row_; }
  // Floats from one KV head's keys to the next one's.
  int head_stride() const { return capacity_ * head_dim_; }
  // Position pos's values of every head from row [kv_heads·head_dim] into a layer's keys/values.
  void store(float* layer_base, int pos, const float* row) const;
  int capacity_, length_ = 0, row_, head_dim_;
  std::unique_ptr<float[], FreeDeleter> k_, v_;
};

class Decoder {
 public:
  Decoder(const TextConfig& cfg, const TextWeights& w);

  // Token embeddings for ids → out [n, hidden]. Throws smolvlm::Error for ids outside the vocab.
  void embed(const int32_t* ids, int n, float* out) const;
  // Runs n positions (input embeddings x [n, hidden]) after those already in `cache`, appends
  // them to it, and writes the logits of the last position [vocab] (and of every position into
  // all_logits [n, vocab] when non-null). Throws if the cache would overflow.
  void forward(const kernels::Compute& cx, const float* x, int n, KVCache& cache,
               float* last_logits, float* all_logits = nullptr) const;

  // One decoding step of n different sequences at once (continuous batching): row i of x
  // [n, hidden] is the next position of caches[i] (each at its own length); appends each row to
  // its cache and writes the logits [n, vocab]. The matrix products run once over all n rows,
  // so the weights are read once a step however many sequences there are.
  void forward_batch(const kernels::Compute& cx, const float* x, int n, KVCache* const* caches,
                     float* logits) const;

  const TextConfig& config() const { return cfg_; }
  // The weight bytes one decoding step reads: every matrix of every layer, and the lm_head.
  double weight_bytes_per_step() const;

 private:
  kernels::AttentionShape causal_shape(int n, int pos0, const KVCache& cache) const;
  const TextConfig& cfg_;
  const TextWeights& w_;
  std::vector<float> inv_freq_;  // RoPE frequencies, float32 as HF keeps them
};

}  // namespace smolvlm
