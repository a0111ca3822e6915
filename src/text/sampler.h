// Next-token choice: greedy, or HF's sampling chain (repetition penalty → temperature → top-k →
// top-p) with a seeded generator so a run can be repeated.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace smolvlm {

struct SamplingParams {
  float temperature = 0.0f;  // <= 0: greedy
  int top_k = 0;             // 0: off
  float top_p = 1.0f;        // 1: off
  float repeat_penalty = 1.0f;
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& p) : p_(p), rng_(p.seed) {}
  // logits is modified (penalty, scaling). `history` is every id seen so far (prompt included,
  // as HF's repetition penalty does).
  int32_t sample(std::span<float> logits, std::span<const int32_t> history);

 private:
  SamplingParams p_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> candidates_;
};

int32_t argmax(std::span<const float> logits);

}  // namespace smolvlm
