#include "text/decoder.h"

#include <smolvlm/error.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "kernels/kernels.h"

namespace smolvlm {

namespace k = kernels;

KVCache::KVCache(const TextConfig& cfg, int capacity)
    : capacity_(capacity), row_(cfg.kv_heads * cfg.head_dim) {
  const size_t n = static_cast<size_t>(cfg.layers) * static_cast<size_t>(capacity) * row_;
  k_.reset(static_cast<float*>(std::calloc(n ? n : 1, sizeof(float))));
  v_.reset(static_cast<float*>(std::calloc(n ? n : 1, sizeof(float))));
  if (!k_ || !v_)
    throw Error("out of memory for a KV cache of " + std::to_string(capacity) + " tokens");
}

void KVCache::FreeDeleter::operator()(float* p) const { std::free(p); }

Decoder::Decoder(const TextConfig& cfg, const TextWeights& w) : cfg_(cfg), w_(w) {
  // inv_freq[i] = 1 / theta^(2i/d), computed as transformers does (float32 result of a float
  // power), kept in float32.
  const int half = cfg.head_dim / 2;
  inv_freq_.resize(static_cast<size_t>(half));
  for (int i = 0; i < half; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(cfg.head_dim);
    inv_freq_[static_cast<size_t>(i)] = 1.0f / std::pow(cfg.rope_theta, exponent);
  }
}

void Decoder::embed(const int32_t* ids, int n, float* out) const {
  const size_t H = static_cast<size_t>(cfg_.hidden);
  for (int i = 0; i < n; ++i) {
    if (ids[i] < 0 || ids[i] >= cfg_.vocab) {
      throw Error("token id " + std::to_string(ids[i]) + " is outside the vocabulary");
    }
    k::dequantize_row(w_.embed, ids[i], out + i * H);
  }
}

void Decoder::forward(const float* input, int n, KVCache& cache, float* last_logits,
                      float* all_logits) const {
  const int H = cfg_.hidden, hd = cfg_.head_dim, qd = cfg_.heads * hd, kvd = cfg_.kv_heads * hd,
            F = cfg_.intermediate;
  const int pos0 = cache.length_;
  if (pos0 + n > cache.capacity_) {
    throw Error("context overflow: " + std::to_string(pos0 + n) + " tokens exceed the context of " +
                std::to_string(cache.capacity_));
  }
  const size_t N = static_cast<size_t>(n);
  std::vector<float>&x = cache.x_, &h = cache.h_, &q = cache.q_, &attn = cache.attn_,
  &gate = cache.gate_, &up = cache.up_;
  x.assign(input, input + N * H);  // assign/resize keep capacity: no allocation once warm
  h.resize(N * H);
  q.resize(N * qd);
  attn.resize(N * qd);
  gate.resize(N * F);
  up.resize(N * F);
  const k::AttentionShape shape{n,
                                pos0 + n,
                                cfg_.heads,
                                cfg_.kv_heads,
                                hd,
                                qd,
                                kvd,
                                qd,
                                1.0f / std::sqrt(static_cast<float>(hd)),
                                true,
                                pos0};

  for (size_t li = 0; li < w_.layers.size(); ++li) {
    const TextLayerWeights& l = w_.layers[li];
    float* kc = cache.k(static_cast<int>(li));
    float* vc = cache.v(static_cast<int>(li));
    float* k_new = kc + static_cast<size_t>(pos0) * kvd;
    float* v_new = vc + static_cast<size_t>(pos0) * kvd;

    k::rms_norm(x.data(), n, H, l.input_norm.w.data(), cfg_.rms_norm_eps, h.data());
    // k and v go straight into the cache
    const k::MatmulTarget qkv[] = {{&l.q.w, q.data()}, {&l.k.w, k_new}, {&l.v.w, v_new}};
    k::matmul_same_input(h.data(), n, qkv, 3);
    for (int i = 0; i < n; ++i) {
      k::rope(q.data() + static_cast<size_t>(i) * qd, cfg_.heads, hd, pos0 + i, inv_freq_.data());
      k::rope(k_new + static_cast<size_t>(i) * kvd, cfg_.kv_heads, hd, pos0 + i, inv_freq_.data());
    }
    k::attention(shape, q.data(), kc, vc, nullptr, attn.data());
    k::matmul(attn.data(), n, l.o.w, nullptr, h.data());
    k::add_inplace(x.data(), h.data(), x.size());

    k::rms_norm(x.data(), n, H, l.post_norm.w.data(), cfg_.rms_norm_eps, h.data());
    k::matmul_gate_up_silu(h.data(), n, l.gate.w, l.up.w, gate.data(), up.data());
    k::matmul(gate.data(), n, l.down.w, nullptr, h.data());
    k::add_inplace(x.data(), h.data(), x.size());
  }
  cache.length_ = pos0 + n;

  k::rms_norm(x.data(), n, H, w_.norm.w.data(), cfg_.rms_norm_eps, h.data());
  if (all_logits) {
    k::matmul(h.data(), n, w_.lm_head.w, nullptr, all_logits);
    if (last_logits) {
      std::memcpy(last_logits, all_logits + (N - 1) * cfg_.vocab, sizeof(float) * cfg_.vocab);
    }
  } else if (last_logits) {
    k::matmul(h.data() + (N - 1) * H, 1, w_.lm_head.w, nullptr, last_logits);
  }
}

}  // namespace smolvlm
