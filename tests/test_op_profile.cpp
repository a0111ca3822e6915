// `smolvlm bench --profile`'s per-op timings: a decode step with a profile attached records each
// op of every layer once, with the weight bytes its matrices hold, and computes the same logits;
// a vision tile records each op with its arithmetic, which adds up to the tile's.
#include <gtest/gtest.h>

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
