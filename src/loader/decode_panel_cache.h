// Q4_0 and Q4_K text matrices repacked as 16-row panels (kernels/q4_panels.h,
// kernels/q4k_panels.h) where the CPU's kernels decode from them (Q4_0: 2× the file layout's
// kernel on one Zen 4 core), kept in a file in the user's
// cache directory: the panels are then a file's pages, like the weights, so they leave the
// resident set while a picture is encoded (an anonymous copy could not: a Q4_0 picture request's
// peak RSS rose 311 → 386 MB with one), and they are built once per model file, not per load.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model/weights.h"

namespace smolvlm {

// Points every Q4_0 and Q4_K matrix of `t` (and a tied embedding) at its panels in the cache file
// for `text_path` in `cache_dir` (made on first use), adds the mapping to `storage` and drops the
// matrices' pages of the model file. Leaves a matrix untouched where the best path has no SIMD
// panel kernel for its type (generic: the twins only), `cache_dir` is empty, or the file cannot be
// made or read (the file's rows give the same answers, more slowly).
void attach_decode_panels(TextWeights& t, const std::string& text_path,
                          const std::string& cache_dir,
                          std::vector<std::shared_ptr<const void>>& storage);

}  // namespace smolvlm
