#include "text/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_set>

namespace smolvlm {

int32_t argmax(std::span<const float> logits) {
  // First maximum wins, as torch.argmax does.
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

int32_t Sampler::sample(std::span<float> logits, std::span<const int32_t> history) {
  if (p_.repeat_penalty != 1.0f) {
    std::unordered_set<int32_t> seen(history.begin(), history.end());
    for (int32_t id : seen) {
      if (id < 0 || static_cast<size_t>(id) >= logits.size()) continue;
      float& l = logits[static_cast<size_t>(id)];
      l = l < 0 ? l * p_.repeat_penalty : l / p_.repeat_penalty;
    }
  }
  if (p_.temperature <= 0.0f) return argmax(logits);

  candidates_.clear();
  for (size_t i = 0; i < logits.size(); ++i) {
    // A logit of -inf (a token a constraint refused) has probability zero: left out, it is not
    // sorted, and the rounding fallback below can never return it.
    if (logits[i] == -std::numeric_limits<float>::infinity()) continue;
    candidates_.emplace_back(logits[i] / p_.temperature, static_cast<int32_t>(i));
  }
  if (candidates_.empty()) return argmax(logits);
  auto by_logit = [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  size_t keep = candidates_.size();
  if (p_.top_k > 0 && static_cast<size_t>(p_.top_k) < keep) {
    keep = static_cast<size_t>(p_.top_k);
    std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<std::ptrdiff_t>(keep),
                      candidates_.end(), by_logit);
  } else if (p_.top_p < 1.0f) {
    std::sort(candidates_.begin(), candidates_.end(), by_logit);
  }
  // Without top-k or top-p nothing is cut, so no order is needed: the draw below walks the
  // vocabulary in id order (the same distribution, without sorting ~49k candidates a token).
  candidates_.resize(keep);
  // Softmax over the survivors.
  float maxv = candidates_.front().first;
  for (const auto& c : candidates_) maxv = std::max(maxv, c.first);
  double sum = 0.0;
  for (auto& c : candidates_) {
    c.first = std::exp(c.first - maxv);
    sum += c.first;
  }
  for (auto& c : candidates_) c.first = static_cast<float>(c.first / sum);
  if (p_.top_p < 1.0f) {
    // Keep the smallest prefix whose mass reaches top_p (at least one token).
    double cum = 0.0;
    size_t n = 0;
    while (n < candidates_.size()) {
      cum += candidates_[n++].first;
      if (cum >= p_.top_p) break;
    }
    candidates_.resize(n);
    sum = cum;
  } else {
    sum = 1.0;
  }
  std::uniform_real_distribution<double> dist(0.0, sum);
  double r = dist(rng_);
  for (const auto& c : candidates_) {
    r -= c.first;
    if (r <= 0) return c.second;
  }
  return candidates_.back().second;
}

}  // namespace smolvlm
