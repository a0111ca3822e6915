// Vision arithmetic on CPUs without bf16 dot products (AVX2, AVX-512 before Cooper Lake, the
// generic path; NEON, dotprod, i8mm on ARM): what each way of running the vision encoder's
// products keeps of transformers' float32 reference, on every golden picture case, for every
// kernel path of this CPU without bf16 arithmetic. The ways:
//  - float32 products on F32 weights, and on F16 weights widened as the GEMM packs them
//    (what `auto`, and `f32`, run for F32 and F16 files on these paths);
//  - int8 w8a8 products on Q8_0 weights (a Q8_0 mmproj: what it runs whatever is asked).
// Bars: the default (`auto` on an F32 or F16 file) keeps the reference's 24 greedy ids on every
// picture case and its image features within cosine ≥ 0.999999 (max abs ≤ 1e-3, Golden's bar);
// int8 keeps cosine ≥ 0.9995 and is reported (README, "Vision precision", has the figures).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "gguf_test_support.h"
#include "greedy_support.h"
#include "kernels/kernel_path.h"
#include "kernels/kernels.h"
#include "loader/model.h"
#include "prompt_route_support.h"
#include "test_support.h"
#include "text/decoder.h"
#include "text/sampler.h"

namespace smolvlm {
namespace {

// The vision files and what is asked of them; the text file is the BF16 one (the tiny model's
// weights are bf16 values, so its float32 products are the reference's).
struct VisionWay {
  const char* name;
  std::string (*mmproj)();
  VisionPrecision asked;
  bool is_default;  // what `auto` runs on these paths, held to the default's bars
};
const VisionWay kWays[] = {
    {"auto_F32_weights", test::mmproj_f32, VisionPrecision::Auto, true},
    {"auto_F16_weights", test::mmproj_f16, VisionPrecision::Auto, true},
    {"int8_Q8_0_weights", test::mmproj_q8, VisionPrecision::Auto, false},
};

const Model& model_for(const VisionWay& way) {
  static std::map<std::string, std::unique_ptr<Model>> models;
  auto& m = models[way.name];
  if (!m) m = Model::load_gguf(test::text_bf16(), way.mmproj(), way.asked);
  return *m;
}

struct CaseResult {
  double features_cosine = 0, features_max_abs = 0;
  int greedy_same = 0;  // leading greedy ids equal to the reference's, of 24
  bool greedy_equal = false;
};

// A golden case's image features, then the prompt prefilled and 24 greedy ids, all on `cx`.
CaseResult run_case(const Model& model, const kernels::Compute& cx, const std::string& name) {
  const nlohmann::json& gcase = test::golden_json()["cases"][name];
  const std::vector<float> pixels = test::golden(name + ".pixel_values");
  const size_t tile =
      static_cast<size_t>(3) * model.config.vision.image_size * model.config.vision.image_size;
  const std::vector<float> features =
      model.vision.image_features(cx, pixels.data(), static_cast<int>(pixels.size() / tile));
  const std::vector<float> want_feat = test::golden(name + ".image_features");
  CaseResult r;
  r.features_cosine = test::cosine(features, want_feat);
  r.features_max_abs = test::max_abs_diff(features, want_feat);

  const std::vector<int32_t> ids = test::parse_int_list(gcase["input_ids"]);
  const std::vector<float> x = test::embed_with_features(model, ids, features);
  const int n = static_cast<int>(ids.size());
  KVCache cache(model.config.text, n + 24);
  std::vector<float> last(static_cast<size_t>(model.config.text.vocab));
  model.decoder.forward(cx, x.data(), n, cache, last.data());
  const std::vector<int32_t> greedy =
      test::greedy_ids(model.decoder, model.config.text.hidden, cx, cache, last, 24);
  const std::vector<int32_t> want = test::parse_int_list(gcase["greedy_new_ids"]);
  while (r.greedy_same < 24 &&
         greedy[static_cast<size_t>(r.greedy_same)] == want[static_cast<size_t>(r.greedy_same)])
    ++r.greedy_same;
  r.greedy_equal = greedy == want;
  return r;
}

bool path_available(const std::string& name) {
  for (const kernels::KernelPath* p : kernels::available_paths()) {
    if (name == p->name) return true;
  }
  return false;
}

class GoldenVisionPrecision : public ::testing::TestWithParam<std::tuple<std::string, VisionWay>> {
};

TEST_P(GoldenVisionPrecision, PictureCasesWithoutBf16) {
  const std::string& path = std::get<0>(GetParam());
  const VisionWay& way = std::get<1>(GetParam());
  if (!path_available(path)) GTEST_SKIP() << "this CPU lacks the " << path << " path";
  const kernels::Compute cx(0, path);
  if (kernels::has_bf16_matmul(cx)) GTEST_SKIP() << path << " has bf16 (GoldenBf16Vision)";
  const Model& model = model_for(way);
  EXPECT_FALSE(model.vision.uses_bf16(cx));
  EXPECT_STREQ(model.vision.arithmetic(cx), way.is_default ? "f32" : "int8");

  int kept = 0, cases = 0;
  double worst_cosine = 1, worst_max_abs = 0;
  for (const std::string& name : test::kGoldenCases) {
    if (name == "text_only") continue;
    const CaseResult r = run_case(model, cx, name);
    ++cases;
    kept += r.greedy_equal;
    worst_cosine = std::min(worst_cosine, r.features_cosine);
    worst_max_abs = std::max(worst_max_abs, r.features_max_abs);
    std::printf("[%s %s/%s] image_features cosine %.7f max abs %.3g, greedy ids matching %d/24\n",
                path.c_str(), way.name, name.c_str(), r.features_cosine, r.features_max_abs,
                r.greedy_same);
    if (way.is_default) {
      EXPECT_TRUE(r.greedy_equal) << name;
    }
  }
  std::printf("[%s %s] features cosine ≥ %.7f, max abs ≤ %.3g; greedy ids kept on %d/%d cases\n",
              path.c_str(), way.name, worst_cosine, worst_max_abs, kept, cases);
  if (way.is_default) {
    EXPECT_GE(worst_cosine, 0.999999);
    EXPECT_LE(worst_max_abs, 1e-3);
  } else {
    EXPECT_GE(worst_cosine, 0.9995);
  }
}

std::string case_name(const ::testing::TestParamInfo<GoldenVisionPrecision::ParamType>& info) {
  return std::get<0>(info.param) + "_" + std::get<1>(info.param).name;
}

INSTANTIATE_TEST_SUITE_P(TinyModel, GoldenVisionPrecision,
                         ::testing::Combine(::testing::ValuesIn(kernels::known_path_names()),
                                            ::testing::ValuesIn(kWays)),
                         case_name);

}  // namespace
}  // namespace smolvlm
