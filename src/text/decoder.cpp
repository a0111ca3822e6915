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

// One layer over every row of the batch (spec §5.2): pre-norm attention and pre-norm SwiGLU MLP,
// each added to the residual stream s.x.
void Decoder::layer(const k::Compute& cx, const TextLayerWeights& l, int index,
                    std::span<const SequenceRows> batch, DecoderScratch& s) const {
  const int H = cfg_.hidden, hd = cfg_.head_dim, qd = cfg_.heads * hd, kvd = cfg_.kv_heads * hd;
  const int n = static_cast<int>(s.x.size() / static_cast<size_t>(H));
  k::OpZones zone(cx);

  zone.enter("norms + residuals");
  k::rms_norm(cx, s.x.data(), n, H, l.input_norm.w.data(), cfg_.rms_norm_eps, s.h.data());

  zone.enter("q, k, v matmuls", matrix_bytes(l.q.w) + matrix_bytes(l.k.w) + matrix_bytes(l.v.w));
  const k::MatmulTarget qkv[] = {{&l.q.w, s.q.data()}, {&l.k.w, s.k.data()}, {&l.v.w, s.v.data()}};
  k::matmul_same_input(cx, s.h.data(), n, qkv, 3);

  zone.enter("rope + kv cache writes");
  size_t row = 0;
  for (const SequenceRows& run : batch) {
    float* kc = run.cache->k(index);
    float* vc = run.cache->v(index);
    for (int i = 0; i < run.rows; ++i, ++row) {
      const float* cs = s.rope.data() + row * hd;
      k::rope_rotate(s.q.data() + row * qd, cfg_.heads, hd, cs, cs + hd / 2);
      float* ki = s.k.data() + row * kvd;
      k::rope_rotate(ki, cfg_.kv_heads, hd, cs, cs + hd / 2);
      run.cache->store(kc, run.cache->length_ + i, ki);
      run.cache->store(vc, run.cache->length_ + i, s.v.data() + row * kvd);
    }
  }

  zone.enter("attention");
  row = 0;
  for (const SequenceRows& run : batch) {
    const k::AttentionShape shape = causal_shape(run.rows, run.cache->length_, *run.cache);
    k::attention(cx, shape, s.q.data() + row * qd, run.cache->k(index), run.cache->v(index),
                 nullptr, s.attn.data() + row * qd);
    row += static_cast<size_t>(run.rows);
  }

  zone.enter("o matmul", matrix_bytes(l.o.w));
  k::matmul(cx, s.attn.data(), n, l.o.w, nullptr, s.h.data());

  zone.enter("norms + residuals");
  k::add_inplace(s.x.data(), s.h.data(), s.x.size());
  k::rms_norm(cx, s.x.data(), n, H, l.post_attention_norm.w.data(), cfg_.rms_norm_eps, s.h.data());

  zone.enter("gate, up matmuls + silu", matrix_bytes(l.gate.w) + matrix_bytes(l.up.w));
  k::matmul_gate_up_silu(cx, s.h.data(), n, l.gate.w, l.up.w, s.gate.data(), s.up.data());

  zone.enter("down matmul", matrix_bytes(l.down.w));
  k::matmul(cx, s.gate.data(), n, l.down.w, nullptr, s.h.data());

  zone.enter("norms + residuals");
  k::add_inplace(s.x.data(), s.h.data(), s.x.size());
}

void Decoder::forward(const k::Compute& cx, const float* input, std::span<const SequenceRows> batch,
                      DecoderScratch& s, float* last_logits, float* all_logits) const {
  const size_t H = static_cast<size_t>(cfg_.hidden), hd = static_cast<size_t>(cfg_.head_dim),
               qd = static_cast<size_t>(cfg_.heads) * hd,
               kvd = static_cast<size_t>(cfg_.kv_heads) * hd,
               F = static_cast<size_t>(cfg_.intermediate), V = static_cast<size_t>(cfg_.vocab);
  size_t N = 0;
  for (size_t r = 0; r < batch.size(); ++r) {
    const SequenceRows& run = batch[r];
    if (run.rows <= 0) throw Error("decoder pass: a sequence of the batch has no rows");
    const int end = run.cache->length_ + run.rows;
    if (end > run.cache->capacity_) {
      throw Error("context overflow: " + std::to_string(end) + " tokens exceed the context of " +
                  std::to_string(run.cache->capacity_));
    }
    for (size_t o = 0; o < r; ++o) {
      if (batch[o].cache == run.cache) throw Error("decoder pass: one sequence appears twice");
    }
    N += static_cast<size_t>(run.rows);
  }
  if (N == 0) return;
  // assign/resize keep capacity: once warm, a pass allocates nothing.
  s.x.assign(input, input + N * H);
  s.h.resize(N * H);
  s.q.resize(N * qd);
  s.k.resize(N * kvd);
  s.v.resize(N * kvd);
  s.attn.resize(N * qd);
  s.gate.resize(N * F);
  s.up.resize(N * F);
  // Each row's RoPE cos and sin, once for all the layers.
  s.rope.resize(N * hd);
  size_t row = 0;
  for (const SequenceRows& run : batch) {
    for (int i = 0; i < run.rows; ++i, ++row) {
      float* cs = s.rope.data() + row * hd;
      k::rope_angles(run.cache->length_ + i, inv_freq_.data(), static_cast<int>(hd), cs,
                     cs + hd / 2);
    }
  }

  for (size_t li = 0; li < w_.layers.size(); ++li) {
    layer(cx, w_.layers[li], static_cast<int>(li), batch, s);
  }
  for (const SequenceRows& run : batch) run.cache->length_ += run.rows;

  k::OpZones zone(cx);
  zone.enter("norms + residuals");
  const int n = static_cast<int>(N);
  if (all_logits) {
    k::rms_norm(cx, s.x.data(), n, static_cast<int>(H), w_.norm.w.data(), cfg_.rms_norm_eps,
                s.h.data());
    zone.enter("lm_head matmul", matrix_bytes(w_.lm_head.w));
    k::matmul(cx, s.h.data(), n, w_.lm_head.w, nullptr, all_logits);
    if (last_logits) {
      size_t end = 0;
      for (size_t r = 0; r < batch.size(); ++r) {
        end += static_cast<size_t>(batch[r].rows);
        std::memcpy(last_logits + r * V, all_logits + (end - 1) * V, sizeof(float) * V);
      }
    }
    return;
  }
  if (!last_logits) return;
  // Only each run's last row needs its logits: gather those rows, norm them, one product.
  const size_t runs = batch.size();
  s.last_hidden.resize(runs * H);
  size_t end = 0;
  for (size_t r = 0; r < runs; ++r) {
    end += static_cast<size_t>(batch[r].rows);
    std::memcpy(s.last_hidden.data() + r * H, s.x.data() + (end - 1) * H, sizeof(float) * H);
  }
  k::rms_norm(cx, s.last_hidden.data(), static_cast<int>(runs), static_cast<int>(H),
              w_.norm.w.data(), cfg_.rms_norm_eps, s.h.data());
  zone.enter("lm_head matmul", matrix_bytes(w_.lm_head.w));
  k::matmul(cx, s.h.data(), static_cast<int>(runs), w_.lm_head.w, nullptr, last_logits);
}

void Decoder::forward(const k::Compute& cx, const float* x, int n, KVCache& cache,
                      DecoderScratch& scratch, float* last_logits, float* all_logits) const {
  const SequenceRows one[] = {{&cache, n}};
  forward(cx, x, one, scratch, last_logits, all_logits);
}

void Decoder::forward(const k::Compute& cx, const float* x, int n, KVCache& cache,
                      float* last_logits, float* all_logits) const {
  DecoderScratch scratch;
  forward(cx, x, n, cache, scratch, last_logits, all_logits);
}

}  // namespace smolvlm
