// `smolvlm bench --profile`'s per-op timings: a decode step with a profile attached records each
// op of every layer once, with the weight bytes its matrices hold, and computes the same logits;
// a vision tile records each op with its arithmetic, which adds up to the tile's.
#include <gtest/gtest.h>
#include <smolvlm/error.h>

#include <algorithm>
#include <string>
#include <vector>

#include "chat/bench_interface.h"
#include "test_support.h"

namespace smolvlm {
namespace {

size_t bytes(const kernels::Matrix& m) { return static_cast<size_t>(m.rows) * m.row_stride(); }

TEST(OpProfile, ADecodeStepRecordsEveryOpOfEveryLayer) {
  const std::unique_ptr<Model> m = Model::load_hf(test::tiny_model());
  const TextConfig& cfg = m->config.text;
  kernels::Compute cx(2);
  std::vector<float> emb(static_cast<size_t>(cfg.hidden)), plain(static_cast<size_t>(cfg.vocab)),
      timed(plain.size());
  const int32_t id = 42;
  m->decoder.embed(&id, 1, emb.data());
  KVCache a(cfg, 4), b(cfg, 4);
  m->decoder.forward(cx, emb.data(), 1, a, plain.data());

  kernels::OpProfile ops;
  cx.set_profile(&ops);
  m->decoder.forward(cx, emb.data(), 1, b, timed.data());
  cx.set_profile(nullptr);
  EXPECT_EQ(plain, timed);

  const auto& layers = m->weights.text.layers;
  const int L = static_cast<int>(layers.size());
  size_t qkv = 0, gate_up = 0;
  for (const auto& l : layers) {
    qkv += bytes(l.q.w) + bytes(l.k.w) + bytes(l.v.w);
    gate_up += bytes(l.gate.w) + bytes(l.up.w);
  }
  std::vector<std::string> names;
  for (const auto& r : ops.rows()) {
    names.push_back(r.op);
    EXPECT_GE(r.ms, 0.0) << r.op;
    if (r.op == "q, k, v matmuls") {
      EXPECT_EQ(r.calls, L);
      EXPECT_EQ(r.weight_bytes, static_cast<double>(qkv));
    } else if (r.op == "gate, up matmuls + silu") {
      EXPECT_EQ(r.weight_bytes, static_cast<double>(gate_up));
    } else if (r.op == "lm_head matmul") {
      EXPECT_EQ(r.calls, 1);
      EXPECT_EQ(r.weight_bytes, static_cast<double>(bytes(m->weights.text.lm_head.w)));
    } else if (r.op == "norms + residuals") {
      EXPECT_EQ(r.calls, 3 * L + 1);
    } else {
      EXPECT_EQ(r.calls, L) << r.op;
    }
  }
  const std::vector<std::string> want = {
      "norms + residuals", "q, k, v matmuls", "rope + kv cache writes",
      "attention",         "o matmul",        "gate, up matmuls + silu",
      "down matmul",       "lm_head matmul"};
  EXPECT_EQ(names, want);

  // Detached: nothing more is recorded.
  m->decoder.forward(cx, emb.data(), 1, a, plain.data());
  EXPECT_EQ(ops.rows()[1].calls, L);
}

// A server's decode step is the same decoder pass as `ask`'s, with a row for each sequence: its
// logits are each sequence's alone, and it records the same ops (the fused q/k/v and gate/up
// calls) once per layer, not once per sequence.
TEST(OpProfile, ABatchOfSequencesRunsTheSamePassAsOneSequence) {
  const std::unique_ptr<Model> m = Model::load_hf(test::tiny_model());
  const TextConfig& cfg = m->config.text;
  const size_t H = static_cast<size_t>(cfg.hidden), V = static_cast<size_t>(cfg.vocab);
  kernels::Compute cx(2);
  const std::vector<int32_t> a_ids = {5, 17, 300, 42}, b_ids = {9, 1000, 77};
  std::vector<float> a_emb(a_ids.size() * H), b_emb(b_ids.size() * H);
  m->decoder.embed(a_ids.data(), static_cast<int>(a_ids.size()), a_emb.data());
  m->decoder.embed(b_ids.data(), static_cast<int>(b_ids.size()), b_emb.data());

  // Alone: a's first three tokens then its fourth; b's first two then its third.
  KVCache a1(cfg, 8), b1(cfg, 8);
  std::vector<float> a_alone(V), b_alone(V), scratch_logits(V);
  m->decoder.forward(cx, a_emb.data(), 3, a1, scratch_logits.data());
  m->decoder.forward(cx, a_emb.data() + 3 * H, 1, a1, a_alone.data());
  m->decoder.forward(cx, b_emb.data(), 3, b1, b_alone.data());

  // Together: a's prefix alone, then one pass of a's fourth token beside b's whole prompt.
  KVCache a2(cfg, 8), b2(cfg, 8);
  m->decoder.forward(cx, a_emb.data(), 3, a2, scratch_logits.data());
  std::vector<float> x(4 * H), logits(2 * V);
  std::copy(a_emb.begin() + 3 * static_cast<std::ptrdiff_t>(H), a_emb.end(), x.begin());
  std::copy(b_emb.begin(), b_emb.end(), x.begin() + static_cast<std::ptrdiff_t>(H));
  const SequenceRows batch[] = {{&a2, 1}, {&b2, 3}};
  DecoderScratch scratch;
  kernels::OpProfile ops;
  cx.set_profile(&ops);
  m->decoder.forward(cx, x.data(), batch, scratch, logits.data());
  cx.set_profile(nullptr);
  EXPECT_EQ(a2.length(), 4);
  EXPECT_EQ(b2.length(), 3);
  for (size_t i = 0; i < V; ++i) {
    ASSERT_NEAR(logits[i], a_alone[i], 1e-4) << "a, logit " << i;
    ASSERT_NEAR(logits[V + i], b_alone[i], 1e-4) << "b, logit " << i;
  }
  const int L = static_cast<int>(m->weights.text.layers.size());
  std::vector<std::string> names;
  for (const auto& r : ops.rows()) {
    names.push_back(r.op);
    if (r.op == "q, k, v matmuls" || r.op == "gate, up matmuls + silu" || r.op == "attention") {
      EXPECT_EQ(r.calls, L) << r.op;
    }
  }
  const std::vector<std::string> want = {
      "norms + residuals", "q, k, v matmuls", "rope + kv cache writes",
      "attention",         "o matmul",        "gate, up matmuls + silu",
      "down matmul",       "lm_head matmul"};
  EXPECT_EQ(names, want);

  // A run that would pass its cache's end changes no cache.
  KVCache small(cfg, 2);
  const SequenceRows too_long[] = {{&a2, 1}, {&small, 3}};
  EXPECT_THROW(m->decoder.forward(cx, x.data(), too_long, scratch, logits.data()), Error);
  EXPECT_EQ(a2.length(), 4);
  EXPECT_EQ(small.length(), 0);
}

TEST(OpProfile, AVisionTileRecordsEachOpWithItsArithmetic) {
  const std::unique_ptr<Model> m = Model::load_hf(test::tiny_model());
  const VisionConfig& vc = m->config.vision;
  kernels::Compute cx(2);
  std::vector<float> px(static_cast<size_t>(3) * vc.image_size * vc.image_size);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<float>(i % 17) / 8.0f - 1.0f;
  const std::vector<float> plain = m->vision.image_features(cx, px.data(), 1);
  kernels::OpProfile ops;
  cx.set_profile(&ops);
  const std::vector<float> timed = m->vision.image_features(cx, px.data(), 1);
  cx.set_profile(nullptr);
  EXPECT_EQ(plain, timed);

  const int L = static_cast<int>(m->weights.vision.layers.size());
  double flops = 0;
  std::vector<std::string> names;
  for (const auto& r : ops.rows()) {
    names.push_back(r.op);
    flops += r.flops;
    if (r.op == "patch embedding" || r.op == "connector matmul") {
      EXPECT_EQ(r.calls, 1) << r.op;
    } else if (r.op == "layer norms") {
      EXPECT_EQ(r.calls, 2 * L + 1);
    } else if (r.op == "residual adds") {
      EXPECT_EQ(r.calls, 2 * L);
    } else {
      EXPECT_EQ(r.calls, L) << r.op;
    }
    const bool arithmetic = r.op.find("matmul") != std::string::npos || r.op == "patch embedding" ||
                            r.op == "attention";
    EXPECT_EQ(r.flops > 0, arithmetic) << r.op;
  }
  EXPECT_DOUBLE_EQ(flops, m->vision.flops_per_tile());
  const std::vector<std::string> want = {"patch embedding", "layer norms", "q, k, v matmuls",
                                         "attention",       "o matmul",    "residual adds",
                                         "fc1 matmul",      "gelu",        "fc2 matmul",
                                         "connector matmul"};
  EXPECT_EQ(names, want);
}

}  // namespace
}  // namespace smolvlm
