// The golden cases (tests/fixtures/tiny-smolvlm2/golden.*) run from llama.cpp's GGUF files:
// - text BF16 + mmproj F32 hold exactly the checkpoint's weights, so the float32 tolerances hold:
//   vision and logits_last ≤ 1e-3 max abs, argmax at every position and 24 greedy ids exact;
// - text Q8_0 (w8a8) + mmproj F16: per case the cosine similarity of logits_last to the reference
//   (≥ 0.999 required) and how many of the 24 greedy ids match, printed as a table;
// - our own converted pair gives exactly the outputs of llama.cpp's pair.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include "gguf_test_support.h"
#include "kernels/kernel_path.h"
#include "loader/gguf_model.h"
#include "prompt_route_support.h"
#include "text/sampler.h"

namespace smolvlm {
namespace {

using test::cosine;
using test::golden;
using test::golden_json;
using test::max_abs_diff;

const std::vector<std::string>& kCases = test::kGoldenCases;

const Model& gguf_model(const std::string& text, const std::string& mmproj) {
  static std::map<std::string, std::unique_ptr<Model>> models;
  auto& m = models[text + "|" + mmproj];
  // Float32 vision asked for explicitly: these tests measure the text weights' error (and the F32
  // mmproj's float32 tolerances); bf16 vision has its bars in GoldenBf16Vision.
  if (!m) m = Model::load_gguf(text, mmproj, VisionPrecision::F32);
  return *m;
}

struct CaseRun {
  std::vector<float> logits_last;
  std::vector<int32_t> argmax_all;
  std::vector<int32_t> greedy;
  double vision_hidden_diff = 0, features_diff = 0;  // against the golden tensors
};

// The golden case from its stored input ids and pixels: prefill (logits at every position), then 24
// greedy steps with the KV cache.
CaseRun run_case(const Model& model, const std::string& name) {
  CaseRun r;
  const auto& c = golden_json()["cases"][name];
  const std::vector<int32_t> ids = test::parse_int_list(c["input_ids"]);
  std::vector<float> features;
  if (name != "text_only") {
    const std::vector<float> pixels = golden(name + ".pixel_values");
    const std::vector<float> want_hidden = golden(name + ".vision_last_hidden");
    const std::vector<float> want_feat = golden(name + ".image_features");
    const size_t tile = size_t{3} * model.config.vision.image_size * model.config.vision.image_size;
    const int n_tiles = static_cast<int>(pixels.size() / tile);
    const size_t hid = want_hidden.size() / n_tiles, feat = want_feat.size() / n_tiles;
    for (int t = 0; t < n_tiles; ++t) {
      const std::vector<float> h =
          model.vision.encode_tile(test::test_compute(), pixels.data() + tile * t);
      r.vision_hidden_diff =
          std::max(r.vision_hidden_diff, max_abs_diff(h.data(), want_hidden.data() + hid * t, hid));
      const std::vector<float> f = model.vision.connect(test::test_compute(), h);
      r.features_diff =
          std::max(r.features_diff, max_abs_diff(f.data(), want_feat.data() + feat * t, feat));
    }
    features = model.vision.image_features(test::test_compute(), pixels.data(), n_tiles);
  }
  const std::vector<float> x = test::embed_with_features(model, ids, features);
  const int n = static_cast<int>(ids.size()), V = model.config.text.vocab;
  KVCache cache(model.config.text, n + 24);
  std::vector<float> all(static_cast<size_t>(n) * V);
  r.logits_last.resize(static_cast<size_t>(V));
  model.decoder.forward(test::test_compute(), x.data(), n, cache, r.logits_last.data(), all.data());
  for (int i = 0; i < n; ++i) {
    r.argmax_all.push_back(
        argmax(std::span<const float>(all.data() + static_cast<size_t>(i) * V, V)));
  }
  std::vector<float> last = r.logits_last, emb(static_cast<size_t>(model.config.text.hidden));
  for (int step = 0; step < 24; ++step) {
    const int32_t id = argmax(last);
    r.greedy.push_back(id);
    model.decoder.embed(&id, 1, emb.data());
    model.decoder.forward(test::test_compute(), emb.data(), 1, cache, last.data());
  }
  return r;
}

std::vector<int32_t> golden_argmax(const std::string& name) {
  const TensorView& am = test::golden_tensors().get(name + ".argmax_all");
  std::vector<int32_t> out(static_cast<size_t>(am.numel()));
  std::memcpy(out.data(), am.data, out.size() * 4);
  return out;
}

class GgufGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(GgufGolden, Bf16TextF32MmprojMatchesTransformers) {
  const std::string& name = GetParam();
  const Model& model = gguf_model(test::text_bf16(), test::mmproj_f32());
  const CaseRun r = run_case(model, name);
  const double dl = max_abs_diff(r.logits_last, golden(name + ".logits_last"));
  const std::vector<int32_t> want_argmax = golden_argmax(name);
  ASSERT_EQ(r.argmax_all.size(), want_argmax.size());
  int mismatches = 0;
  for (size_t i = 0; i < want_argmax.size(); ++i) mismatches += r.argmax_all[i] != want_argmax[i];
  const std::vector<int32_t> want =
      test::parse_int_list(golden_json()["cases"][name]["greedy_new_ids"]);
  std::printf(
      "[gguf bf16+f32/%s] vision %.3g, features %.3g, logits_last max abs %.3g, argmax "
      "mismatches %d, greedy %s\n",
      name.c_str(), r.vision_hidden_diff, r.features_diff, dl, mismatches,
      r.greedy == want ? "24/24" : "DIFFERENT");
  EXPECT_LE(r.vision_hidden_diff, 1e-3);
  EXPECT_LE(r.features_diff, 1e-3);
  EXPECT_LE(dl, 1e-3);
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(r.greedy, want);
}

INSTANTIATE_TEST_SUITE_P(Gguf, GgufGolden, ::testing::ValuesIn(kCases));

// w8a8: the Q8_0 text model with the F16 (and, for the record, the Q8_0) vision projector.
TEST(GgufQ8Golden, CosineAndGreedyTable) {
  struct Pair {
    const char* label;
    std::string text, mmproj;
    bool required;  // cosine ≥ 0.999 asserted
  };
  const Pair pairs[] = {{"Q8_0 text + F16 mmproj", test::text_q8(), test::mmproj_f16(), true},
                        {"Q8_0 text + Q8_0 mmproj", test::text_q8(), test::mmproj_q8(), false}};
  for (const Pair& p : pairs) {
    const Model& model = gguf_model(p.text, p.mmproj);
    std::printf("\n%s: logits_last against transformers (float32)\n", p.label);
    std::printf("  %-14s %10s %12s %14s %14s\n", "case", "cosine", "max abs", "greedy prefix",
                "greedy same");
    double worst = 1;
    for (const std::string& name : kCases) {
      const CaseRun r = run_case(model, name);
      const std::vector<float> ref = golden(name + ".logits_last");
      const std::vector<int32_t> want =
          test::parse_int_list(golden_json()["cases"][name]["greedy_new_ids"]);
      int prefix = 0, same = 0;
      while (prefix < 24 &&
             r.greedy[static_cast<size_t>(prefix)] == want[static_cast<size_t>(prefix)])
        ++prefix;
      for (size_t i = 0; i < 24; ++i) same += r.greedy[i] == want[i];
      const double cs = cosine(r.logits_last, ref);
      worst = std::min(worst, cs);
      std::printf("  %-14s %10.6f %12.4g %11d/24 %11d/24\n", name.c_str(), cs,
                  max_abs_diff(r.logits_last, ref), prefix, same);
      if (p.required) {
        EXPECT_GE(cs, 0.999) << name;
      }
    }
    std::printf("  worst cosine %.6f\n", worst);
  }
}

// w4a8: `convert --type q4_0` of the tiny model (4-bit weights for the 500M/2.2B on small boards).
// 16 levels per block of 32 leave each weight with noise of about amax/28 — some 7% of a random
// Gaussian weight's size, in every layer — so this random model keeps cosine ≈ 0.97–0.98 (8-bit:
// 0.9998). The bar is 0.95: well above what a wrong scale, nibble order or sign gives (≈ 0).
TEST(GgufQ4Golden, ConvertedQ4TextStaysClose) {
  test::TempDir dir;
  ConvertOptions opt;
  opt.text_type = DType::Q4_0;
  opt.vision_type = DType::F16;
  const ConvertResult files = convert_hf_to_gguf(test::tiny_model(), dir.path(), opt);
  EXPECT_NE(files.text_path.find("Q4_0"), std::string::npos) << files.text_path;
  const std::unique_ptr<Model> model =
      Model::load_gguf(files.text_path, files.mmproj_path, VisionPrecision::F32);
  EXPECT_EQ(model->weights.text.layers[0].gate.w.type, DType::Q4_0);
  std::printf("\nQ4_0 text + F16 mmproj: logits_last against transformers (float32)\n");
  double worst = 1;
  for (const std::string& name : kCases) {
    const CaseRun r = run_case(*model, name);
    const std::vector<float> ref = golden(name + ".logits_last");
    const double cs = cosine(r.logits_last, ref);
    worst = std::min(worst, cs);
    std::printf("  %-14s cosine %.6f  max abs %.4g\n", name.c_str(), cs,
                max_abs_diff(r.logits_last, ref));
    EXPECT_GE(cs, 0.95) << name;
  }
  std::printf("  worst cosine %.6f\n", worst);
}

// `convert --type q4_k_m` of the tiny model: its 96-wide rows fall back to Q8_0, the 256-wide
// ffn_down rows take Q4_K (layer 0) and Q6_K (layer 1, a "more bits" layer), as llama.cpp's
// recipe does; the logits stay close to transformers' (a wrong K-quant layout gives ≈ 0).
TEST(GgufKQuantGolden, ConvertedQ4KMTextStaysClose) {
  test::TempDir dir;
  ConvertOptions opt;
  opt.text_type = DType::Q4_K;
  opt.vision_type = DType::F16;
  const ConvertResult files = convert_hf_to_gguf(test::tiny_model(), dir.path(), opt);
  EXPECT_NE(files.text_path.find("Q4_K_M"), std::string::npos) << files.text_path;
  const std::unique_ptr<Model> model =
      Model::load_gguf(files.text_path, files.mmproj_path, VisionPrecision::F32);
  EXPECT_EQ(model->weights.text.layers[0].down.w.type, DType::Q4_K);
  EXPECT_EQ(model->weights.text.layers[1].down.w.type, DType::Q6_K);
  EXPECT_EQ(model->weights.text.layers[0].gate.w.type, DType::Q8_0);
  std::printf("\nQ4_K_M text + F16 mmproj: logits_last against transformers (float32)\n");
  double worst = 1;
  for (const std::string& name : kCases) {
    const CaseRun r = run_case(*model, name);
    const std::vector<float> ref = golden(name + ".logits_last");
    const double cs = cosine(r.logits_last, ref);
    worst = std::min(worst, cs);
    std::printf("  %-14s cosine %.6f  max abs %.4g\n", name.c_str(), cs,
                max_abs_diff(r.logits_last, ref));
    EXPECT_GE(cs, 0.99) << name;
  }
  std::printf("  worst cosine %.6f\n", worst);
}

// The other K-quant mixes `convert` writes, on the tiny model: only its 256-wide ffn_down rows
// take K-quants (the rest fall back to Q8_0), in each mix's type for a first ("more bits" for
// the _M mixes) and a last layer, as llama-quantize picks them; the table is the README's.
TEST(GgufKQuantGolden, EveryMixStaysClose) {
  struct Mix {
    const char* label;
    DType type;
    bool small;
    DType down0, down1;  // ffn_down of layers 0 and 1
    double min_cosine;   // well above what a wrong layout gives (≈ 0)
  };
  const Mix mixes[] = {
      {"Q2_K", DType::Q2_K, false, DType::Q3_K, DType::Q3_K, 0.9},
      {"Q3_K_M", DType::Q3_K, false, DType::Q4_K, DType::Q4_K, 0.95},
      {"Q4_K_S", DType::Q4_K, true, DType::Q4_K, DType::Q4_K, 0.95},
      {"Q4_K_M", DType::Q4_K, false, DType::Q4_K, DType::Q6_K, 0.95},
      {"Q5_K_S", DType::Q5_K, true, DType::Q5_K, DType::Q5_K, 0.99},
      {"Q5_K_M", DType::Q5_K, false, DType::Q5_K, DType::Q6_K, 0.99},
      {"Q6_K", DType::Q6_K, false, DType::Q6_K, DType::Q6_K, 0.99},
  };
  std::printf("\nK-quant mixes (text) + F16 mmproj against transformers (float32), %zu cases\n",
              kCases.size());
  std::printf("  %-8s %10s %16s %16s\n", "mix", "min cosine", "greedy prefix", "greedy same");
  for (const Mix& mix : mixes) {
    test::TempDir dir;
    ConvertOptions opt;
    opt.text_type = mix.type;
    opt.kquant_small = mix.small;
    opt.vision_type = DType::F16;
    const ConvertResult files = convert_hf_to_gguf(test::tiny_model(), dir.path(), opt);
    EXPECT_NE(files.text_path.find(std::string("-") + mix.label + ".gguf"), std::string::npos)
        << files.text_path;
    const std::unique_ptr<Model> model =
        Model::load_gguf(files.text_path, files.mmproj_path, VisionPrecision::F32);
    EXPECT_EQ(model->weights.text.layers[0].down.w.type, mix.down0) << mix.label;
    EXPECT_EQ(model->weights.text.layers[1].down.w.type, mix.down1) << mix.label;
    EXPECT_EQ(model->weights.text.layers[0].gate.w.type, DType::Q8_0) << mix.label;
    double worst = 1;
    int prefix_lo = 24, prefix_hi = 0, same_lo = 24, same_hi = 0;
    for (const std::string& name : kCases) {
      const CaseRun r = run_case(*model, name);
      const std::vector<int32_t> want =
          test::parse_int_list(golden_json()["cases"][name]["greedy_new_ids"]);
      int prefix = 0, same = 0;
      while (prefix < 24 &&
             r.greedy[static_cast<size_t>(prefix)] == want[static_cast<size_t>(prefix)])
        ++prefix;
      for (size_t i = 0; i < 24; ++i) same += r.greedy[i] == want[i];
      const double cs = cosine(r.logits_last, golden(name + ".logits_last"));
      worst = std::min(worst, cs);
      prefix_lo = std::min(prefix_lo, prefix);
      prefix_hi = std::max(prefix_hi, prefix);
      same_lo = std::min(same_lo, same);
      same_hi = std::max(same_hi, same);
      EXPECT_GE(cs, mix.min_cosine) << mix.label << " " << name;
    }
    std::printf("  %-8s %10.6f %8d–%2d/24 %8d–%2d/24\n", mix.label, worst, prefix_lo, prefix_hi,
                same_lo, same_hi);
  }
}

// The panels live in a cache file (loader/decode_panel_cache.h): made by the first load of a model
// file, mapped as it is by the next ones, remade when damaged or when the model file changed;
// none (the file's rows) when LoadOptions::cache_dir is empty or cannot be written.
class Q4PanelCache : public ::testing::Test {
 protected:
  void SetUp() override {
    const kernels::KernelPath& path = kernels::default_path();
    if (!path.gemv_q4_panels || &path == &kernels::generic_path())
      GTEST_SKIP() << "no SIMD Q4_0 panel kernel on this CPU";
    cache_dir_ = cache_.path();
    ConvertOptions opt;
    opt.text_type = DType::Q4_0;
    opt.vision_type = DType::F16;
    files_ = convert_hf_to_gguf(test::tiny_model(), model_.path(), opt);
  }
  void set_cache(const std::string& dir) { cache_dir_ = dir; }
  std::unique_ptr<Model> load() const {
    return Model::load_gguf(files_.text_path, files_.mmproj_path, VisionPrecision::F32, cache_dir_);
  }
  std::vector<std::filesystem::path> cache_files() const {
    std::vector<std::filesystem::path> out;
    for (const auto& e : std::filesystem::directory_iterator(cache_.path()))
      out.push_back(e.path());
    return out;
  }
  static bool has_panels(const Model& m) {
    const TextWeights& t = m.weights.text;
    return t.layers[0].gate.w.panels && t.lm_head.w.panels;
  }

  test::TempDir cache_, model_;
  ConvertResult files_;
  std::string cache_dir_;  // LoadOptions::cache_dir
};

TEST_F(Q4PanelCache, MadeOnceThenMappedAsItIs) {
  const std::unique_ptr<Model> first = load();
  ASSERT_TRUE(has_panels(*first));
  const auto made = cache_files();
  ASSERT_EQ(made.size(), 1u);
  const auto stamp = std::filesystem::last_write_time(made[0]);
  const CaseRun a = run_case(*first, "text_only");
  const std::unique_ptr<Model> second = load();
  ASSERT_TRUE(has_panels(*second));
  EXPECT_EQ(cache_files(), made);
  EXPECT_EQ(std::filesystem::last_write_time(made[0]), stamp);  // not written again
  const CaseRun b = run_case(*second, "text_only");
  EXPECT_EQ(a.logits_last, b.logits_last);
  EXPECT_EQ(a.greedy, b.greedy);
}

TEST_F(Q4PanelCache, ADamagedFileIsMadeAgain) {
  const CaseRun want = run_case(*load(), "text_only");
  const auto made = cache_files();
  ASSERT_EQ(made.size(), 1u);
  const auto full = std::filesystem::file_size(made[0]);
  std::filesystem::resize_file(made[0], full / 2);  // cut short
  {
    const std::unique_ptr<Model> m = load();
    EXPECT_TRUE(has_panels(*m));
    EXPECT_EQ(std::filesystem::file_size(made[0]), full);
    EXPECT_EQ(run_case(*m, "text_only").logits_last, want.logits_last);
  }
  {  // same size, another header (another layout version or key): not used as it is
    std::FILE* f = std::fopen(made[0].c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    std::fputs("not the magic", f);
    std::fclose(f);
    const std::unique_ptr<Model> m = load();
    EXPECT_TRUE(has_panels(*m));
    EXPECT_EQ(run_case(*m, "text_only").logits_last, want.logits_last);
  }
}

TEST_F(Q4PanelCache, AChangedModelFileReplacesIt) {
  (void)load();
  const auto made = cache_files();
  ASSERT_EQ(made.size(), 1u);
  const auto stamp = std::filesystem::last_write_time(made[0]);
  std::filesystem::last_write_time(
      files_.text_path,
      std::filesystem::last_write_time(files_.text_path) + std::chrono::seconds(5));
  EXPECT_TRUE(has_panels(*load()));
  EXPECT_EQ(cache_files(), made);  // the same name, made again
  EXPECT_NE(std::filesystem::last_write_time(made[0]), stamp);
}

// The file earlier versions kept for the same model (Q4_0 panels alone, named q4-panels-…) is
// removed by the next load; other files in the folder stay.
TEST_F(Q4PanelCache, AnEarlierVersionsFileGoes) {
  (void)load();
  const auto made = cache_files();
  ASSERT_EQ(made.size(), 1u);
  const std::string name = made[0].filename().string();
  ASSERT_EQ(name.rfind("decode-panels-", 0), 0u) << name;
  const std::filesystem::path dir = cache_.path();
  const auto earlier = dir / ("q4-panels-" + name.substr(std::strlen("decode-panels-")));
  const auto other = dir / "q4-panels-of-another-model.bin";
  for (const auto& p : {earlier, other}) std::ofstream(p) << "old panels";
  EXPECT_TRUE(has_panels(*load()));
  EXPECT_FALSE(std::filesystem::exists(earlier));
  EXPECT_TRUE(std::filesystem::exists(other));
  EXPECT_TRUE(std::filesystem::exists(made[0]));
}

TEST_F(Q4PanelCache, OffOrUnwritableMeansTheFileRows) {
  const CaseRun with_panels = run_case(*load(), "text_only");
  const std::string not_a_dir = model_ / "plain-file";
  std::FILE* f = std::fopen(not_a_dir.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  for (const std::string& dir : {std::string(), not_a_dir + "/cache"}) {  // none, unwritable
    set_cache(dir);
    const std::unique_ptr<Model> m = load();
    EXPECT_FALSE(m->weights.text.layers[0].gate.w.panels) << dir;
    const CaseRun rows = run_case(*m, "text_only");
    EXPECT_LT(max_abs_diff(rows.logits_last, with_panels.logits_last), 1e-3) << dir;
    EXPECT_EQ(rows.greedy, with_panels.greedy) << dir;
  }
}

// Where the CPU decodes Q4_0 from 16-row panels, the loader gives every Q4_0 matrix its panels:
// the answers are those of the file's rows (the same integer sums; only the float order of the
// block sums differs), on every golden case.
TEST_F(Q4PanelCache, PanelsGiveTheFileRowsAnswers) {
  const std::unique_ptr<Model> model = load();
  ASSERT_TRUE(has_panels(*model));
  std::vector<CaseRun> with_panels;
  for (const std::string& name : kCases) with_panels.push_back(run_case(*model, name));
  TextWeights& text = const_cast<TextWeights&>(model->weights.text);
  for (TextLayerWeights& l : text.layers) {
    for (Linear* p : l.linears()) p->w.panels = nullptr;
  }
  text.lm_head.w.panels = text.embed.panels = nullptr;
  for (size_t i = 0; i < kCases.size(); ++i) {
    const CaseRun rows = run_case(*model, kCases[i]);
    EXPECT_LT(max_abs_diff(with_panels[i].logits_last, rows.logits_last), 1e-3) << kCases[i];
    EXPECT_EQ(with_panels[i].greedy, rows.greedy) << kCases[i];
  }
}

// Our `convert` output and llama.cpp's files give the same numbers in our engine, bit for bit.
TEST(GgufConvertedPair, SameOutputsAsLlamaCppPair) {
  test::TempDir dir;
  ConvertOptions opt;
  opt.text_type = DType::Q8_0;
  opt.vision_type = DType::F16;
  const ConvertResult c = convert_hf_to_gguf(test::tiny_model(), dir.path(), opt);
  const std::unique_ptr<Model> ours_model =
      Model::load_gguf(c.text_path, c.mmproj_path, VisionPrecision::F32);
  const Model& ours = *ours_model;
  const Model& theirs = gguf_model(test::text_q8(), test::mmproj_f16());
  for (const std::string& name :
       {std::string("text_only"), std::string("image_split"), std::string("video")}) {
    const CaseRun a = run_case(ours, name), b = run_case(theirs, name);
    EXPECT_EQ(a.logits_last, b.logits_last) << name;
    EXPECT_EQ(a.argmax_all, b.argmax_all) << name;
    EXPECT_EQ(a.greedy, b.greedy) << name;
  }
}

}  // namespace
}  // namespace smolvlm
