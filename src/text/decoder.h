// The Llama-style SmolLM2 decoder with a KV cache (spec §5).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
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
  // of every page of the layer.
  float* k(int layer) { return k_.get() + static_cast<size_t>(layer) * capacity_ * row_; }
  float* v(int layer) { return v_.get() + static_cast<size_t>(layer) * capacity_ * row_; }
  // Floats from one KV head's keys to the next one's.
  int head_stride() const { return capacity_ * head_dim_; }
  // Position pos's values of every head from row [kv_heads·head_dim] into a layer's keys/values.
  void store(float* layer_base, int pos, const float* row) const;
  int capacity_, length_ = 0, row_, head_dim_;
  std::unique_ptr<float[], FreeDeleter> k_, v_;
};

// A run of consecutive rows of a decoder batch that extend one sequence: `rows` positions after
// those already in `cache`. A prompt is one run of many rows; a server's decode step is one run
// of one row per active sequence.
struct SequenceRows {
  KVCache* cache;
  int rows;
};

// The working buffers of decoder passes, sized by the last pass's row count; whoever runs passes
// keeps one, so that decoding allocates nothing per token once warm.
struct DecoderScratch {
  std::vector<float> x, h, q, k, v, attn, gate, up;
  std::vector<float> rope;         // each row's RoPE cos and sin
  std::vector<float> last_hidden;  // each run's last row, normed, for the lm_head
};

class Decoder {
 public:
  Decoder(const TextConfig& cfg, const TextWeights& w);

  // Token embeddings for ids → out [n, hidden]. Throws smolvlm::Error for ids outside the vocab.
  void embed(const int32_t* ids, int n, float* out) const;

  // The decoder pass (spec §5): the input embeddings x [Σ rows, hidden] of every run in `batch`
  // go through the layers once (the matrix products over all rows, so a step reads the weights
  // once however many sequences it serves; attention per run against its own cache), are appended
  // to their caches, and the logits of each run's last row go to last_logits [batch.size(), vocab]
  // (those of every row to all_logits [Σ rows, vocab] when non-null). Each run's cache must be a
  // different one. Throws, before any cache changes, if a run would overflow its cache.
  void forward(const kernels::Compute& cx, const float* x, std::span<const SequenceRows> batch,
               DecoderScratch& scratch, float* last_logits, float* all_logits = nullptr) const;
  // One sequence: n positions of x after those in `cache`.
  void forward(const kernels::Compute& cx, const float* x, int n, KVCache& cache,
               DecoderScratch& scratch, float* last_logits, float* all_logits = nullptr) const;
  // The same with a scratch of its own for this one pass (tests, one-off prompts).
  void forward(const kernels::Compute& cx, const float* x, int n, KVCache& cache,
               float* last_logits, float* all_logits = nullptr) const;

  const TextConfig& config() const { return cfg_; }
  // The weight bytes one decoding step reads: every matrix of every layer, and the lm_head.
  double weight_bytes_per_step() const;

 private:
  kernels::AttentionShape causal_shape(int n, int pos0, const KVCache& cache) const;
  void layer(const kernels::Compute& cx, const TextLayerWeights& l, int index,
             std::span<const SequenceRows> batch, DecoderScratch& s) const;
  const TextConfig& cfg_;
  const TextWeights& w_;
  std::vector<float> inv_freq_;  // RoPE frequencies, float32 as HF keeps them
};

}  // namespace smolvlm
