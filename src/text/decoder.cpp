#include "text/decoder.h"

#include <smolvlm/error.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "kernels/kernels.h"
#include "kernels/op_profile.h"

namespace smolvlm {

namespace k = kernels;

namespace {
size_t matrix_bytes(const k::Matrix& m) { return static_cast<size_t>(m.rows) * m.row_stride(); }
}  // namespace

KVCache::KVCache(const TextConfig& cfg, int capacity)
    : capacity_(capacity), row_(cfg.kv_heads * cfg.head_dim), head_dim_(cfg.head_dim) {
  const size_t n = static_cast<size_t>(cfg.layers) * static_cast<size_t>(capacity) * row_;
  k_.reset(static_cast<float*>(std::calloc(n ? n : 1, sizeof(float))));
  v_.reset(static_cast<float*>(std::calloc(n ? n : 1, sizeof(float))));
  if (!k_ || !v_)
    throw Error("out of memory for a KV cache of " + std::to_string(capacity) + " tokens");
}

void KVCache::FreeDeleter::operator()(float* p) const { std::free(p); }

void KVCache::store(float* layer_base, int pos, const float* row) const {
  const int heads = row_ / head_dim_;
  for (int h = 0; h < heads; ++h) {
    std::memcpy(
        layer_base + static_cast<size_t>(h) * head_stride() + static_cast<size_t>(pos) * head_dim_,
        row + static_cast<size_t>(h) * head_dim_, sizeof(float) * head_dim_);
  }
}

double Decoder::weight_bytes_per_step() const {
  double b = static_cast<double>(matrix_bytes(w_.lm_head.w));
  for (const TextLayerWeights& l : w_.layers) {
    for (const Linear* p : l.linears()) b += static_cast<double>(matrix_bytes(p->w));
  }
  return b;
}

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

// n query rows at positions pos0.. (query heads side by side) against the cache's keys
// 0..pos0 + n − 1 (each KV head's together).
k::AttentionShape Decoder::causal_shape(int n, int pos0, const KVCache& cache) const {
  const int hd = cfg_.head_dim, qd = cfg_.heads * hd;
  return {.nq = n,
          .nk = pos0 + n,
          .heads = cfg_.heads,
          .kv_heads = cfg_.kv_heads,
          .head_dim = hd,
          .q_stride = qd,
          .kv_stride = hd,
          .out_stride = qd,
          .scale = 1.0f / std::sqrt(static_cast<float>(hd)),
          .causal = true,
          .q_pos0 = pos0,
          .kv_head_stride = cache.head_stride()};
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

void Decoder::forward(const k::Compute& cx, const float* input, int n, KVCache& cache,
                      float* last_logits, float* all_logits) const {
  const int H = cfg_.hidden, hd = cfg_.head_dim, qd = cfg_.heads * hd, kvd = cfg_.kv_heads * hd,
            F = cfg_.intermediate;
  const int pos0 = cache.length_;
  if (pos0 + n > cache.capacity_) {
    throw Error("context overflow: " + std::to_string(pos0 + n) + " tokens exceed the context of " +
                std::to_string(cache.capacity_));
  }
  const size_t N = static_cast<size_t>(n);
  // The pass's scratch belongs to the thread running it (not to a cache, not to the shared
  // Decoder); assign/resize keep capacity, so decoding allocates nothing per token once warm.
  thread_local std::vector<float> x, h, q, kn, vn, attn, gate, up;
  x.assign(input, input + N * H);
  h.resize(N * H);
  q.resize(N * qd);
  kn.resize(N * kvd);
  vn.resize(N * kvd);
  attn.resize(N * qd);
  gate.resize(N * F);
  up.resize(N * F);
  const k::AttentionShape shape = causal_shape(n, pos0, cache);
  // Each position's RoPE cos and sin, once for all 30 layers.
  thread_local std::vector<float> rope_cs;
  rope_cs.resize(N * hd);
  for (int i = 0; i < n; ++i) {
    float* cs = rope_cs.data() + static_cast<size_t>(i) * hd;
    k::rope_angles(pos0 + i, inv_freq_.data(), hd, cs, cs + hd / 2);
  }

  for (size_t li = 0; li < w_.layers.size(); ++li) {
    const TextLayerWeights& l = w_.layers[li];
    float* kc = cache.k(static_cast<int>(li));
    float* vc = cache.v(static_cast<int>(li));

    {
      const k::OpTimer t(cx, "norms + residuals");
      k::rms_norm(cx, x.data(), n, H, l.input_norm.w.data(), cfg_.rms_norm_eps, h.data());
    }
    {
      const k::OpTimer t(cx, "q, k, v matmuls",
                         matrix_bytes(l.q.w) + matrix_bytes(l.k.w) + matrix_bytes(l.v.w));
      const k::MatmulTarget qkv[] = {{&l.q.w, q.data()}, {&l.k.w, kn.data()}, {&l.v.w, vn.data()}};
      k::matmul_same_input(cx, h.data(), n, qkv, 3);
    }
    {
      const k::OpTimer t(cx, "rope + kv cache writes");
      for (int i = 0; i < n; ++i) {
        const float* cs = rope_cs.data() + static_cast<size_t>(i) * hd;
        k::rope_rotate(q.data() + static_cast<size_t>(i) * qd, cfg_.heads, hd, cs, cs + hd / 2);
        float* ki = kn.data() + static_cast<size_t>(i) * kvd;
        k::rope_rotate(ki, cfg_.kv_heads, hd, cs, cs + hd / 2);
        cache.store(kc, pos0 + i, ki);
        cache.store(vc, pos0 + i, vn.data() + static_cast<size_t>(i) * kvd);
      }
    }
    {
      const k::OpTimer t(cx, "attention");
      k::attention(cx, shape, q.data(), kc, vc, nullptr, attn.data());
    }
    {
      const k::OpTimer t(cx, "o matmul", matrix_bytes(l.o.w));
      k::matmul(cx, attn.data(), n, l.o.w, nullptr, h.data());
    }
    {
      const k::OpTimer t(cx, "norms + residuals");
      k::add_inplace(x.data(), h.data(), x.size());
      k::rms_norm(cx, x.data(), n, H, l.post_norm.w.data(), cfg_.rms_norm_eps, h.data());
    }
    {
      const k::OpTimer t(cx, "gate, up matmuls + silu",
                         matrix_bytes(l.gate.w) + matrix_bytes(l.up.w));
      k::matmul_gate_up_silu(cx, h.data(), n, l.gate.w, l.up.w, gate.data(), up.data());
    }
    {
      const k::OpTimer t(cx, "down matmul", matrix_bytes(l.down.w));
      k::matmul(cx, gate.data(), n, l.down.w, nullptr, h.data());
    }
    {
      const k::OpTimer t(cx, "norms + residuals");
      k::add_inplace(x.data(), h.data(), x.size());
    }
  }
  cache.length_ = pos0 + n;

  {
    const k::OpTimer t(cx, "norms + residuals");
    k::rms_norm(cx, x.data(), n, H, w_.norm.w.data(), cfg_.rms_norm_eps, h.data());
  }
  const k::OpTimer t(cx, "lm_head matmul", matrix_bytes(w_.lm_head.w));
  if (all_logits) {
    k::matmul(cx, h.data(), n, w_.lm_head.w, nullptr, all_logits);
    if (last_logits) {
      std::memcpy(last_logits, all_logits + (N - 1) * cfg_.vocab, sizeof(float) * cfg_.vocab);
    }
  } else if (last_logits) {
    k::matmul(cx, h.data() + (N - 1) * H, 1, w_.lm_head.w, nullptr, last_logits);
  }
}

void Decoder::forward_batch(const k::Compute& cx, const float* input, int n, KVCache* const* caches,
                            float* logits) const {
  const int H = cfg_.hidden, hd = cfg_.head_dim, qd = cfg_.heads * hd, kvd = cfg_.kv_heads * hd,
            F = cfg_.intermediate;
  for (int i = 0; i < n; ++i) {
    if (caches[i]->length_ + 1 > caches[i]->capacity_) {
      throw Error("context overflow: " + std::to_string(caches[i]->length_ + 1) +
                  " tokens exceed the context of " + std::to_string(caches[i]->capacity_));
    }
  }
  const size_t N = static_cast<size_t>(n);
  thread_local std::vector<float> x, h, q, kn, vn, attn, gate, up;
  x.assign(input, input + N * H);
  h.resize(N * H);
  q.resize(N * qd);
  kn.resize(N * kvd);
  vn.resize(N * kvd);
  attn.resize(N * qd);
  gate.resize(N * F);
  up.resize(N * F);
  thread_local std::vector<float> rope_cs;  // each sequence's position: cos, sin
  rope_cs.resize(N * hd);
  for (int i = 0; i < n; ++i) {
    float* cs = rope_cs.data() + static_cast<size_t>(i) * hd;
    k::rope_angles(caches[i]->length_, inv_freq_.data(), hd, cs, cs + hd / 2);
  }

  for (size_t li = 0; li < w_.layers.size(); ++li) {
    const TextLayerWeights& l = w_.layers[li];
    k::rms_norm(cx, x.data(), n, H, l.input_norm.w.data(), cfg_.rms_norm_eps, h.data());
    k::matmul(cx, h.data(), n, l.q.w, nullptr, q.data());
    k::matmul(cx, h.data(), n, l.k.w, nullptr, kn.data());
    k::matmul(cx, h.data(), n, l.v.w, nullptr, vn.data());
    for (int i = 0; i < n; ++i) {
      KVCache& c = *caches[i];
      const int pos = c.length_;
      float* kc = c.k(static_cast<int>(li));
      float* vc = c.v(static_cast<int>(li));
      float* qi = q.data() + static_cast<size_t>(i) * qd;
      float* ki = kn.data() + static_cast<size_t>(i) * kvd;
      const float* cs = rope_cs.data() + static_cast<size_t>(i) * hd;
      k::rope_rotate(qi, cfg_.heads, hd, cs, cs + hd / 2);
      k::rope_rotate(ki, cfg_.kv_heads, hd, cs, cs + hd / 2);
      c.store(kc, pos, ki);
      c.store(vc, pos, vn.data() + static_cast<size_t>(i) * kvd);
      const k::AttentionShape shape = causal_shape(1, pos, c);
      k::attention(cx, shape, qi, kc, vc, nullptr, attn.data() + static_cast<size_t>(i) * qd);
    }
    k::matmul(cx, attn.data(), n, l.o.w, nullptr, h.data());
    k::add_inplace(x.data(), h.data(), x.size());

    k::rms_norm(cx, x.data(), n, H, l.post_norm.w.data(), cfg_.rms_norm_eps, h.data());
    k::matmul(cx, h.data(), n, l.gate.w, nullptr, gate.data());
    k::matmul(cx, h.data(), n, l.up.w, nullptr, up.data());
    k::silu_mul(cx, gate.data(), up.data(), gate.data(), gate.size());
    k::matmul(cx, gate.data(), n, l.down.w, nullptr, h.data());
    k::add_inplace(x.data(), h.data(), x.size());
  }
  for (int i = 0; i < n; ++i) ++caches[i]->length_;
  k::rms_norm(cx, x.data(), n, H, w_.norm.w.data(), cfg_.rms_norm_eps, h.data());
  k::matmul(cx, h.data(), n, w_.lm_head.w, nullptr, logits);
}

}  // namespace smolvlm
