// The golden suites' greedy continuation, written once: from the logits of a prefilled cache,
// `steps` ids, each the argmax, embedded and decoded in turn (as transformers' greedy generate).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/compute.h"
#include "text/decoder.h"
#include "text/sampler.h"

namespace smolvlm::test {

inline std::vector<int32_t> greedy_ids(const Decoder& decoder, int hidden,
                                       const kernels::Compute& cx, KVCache& cache,
                                       std::vector<float>& last, int steps) {
  std::vector<int32_t> greedy;
  std::vector<float> emb(static_cast<size_t>(hidden));
  for (int step = 0; step < steps; ++step) {
    const int32_t id = argmax(last);
    greedy.push_back(id);
    decoder.embed(&id, 1, emb.data());
    decoder.forward(cx, emb.data(), 1, cache, last.data());
  }
  return greedy;
}

}  // namespace smolvlm::test
