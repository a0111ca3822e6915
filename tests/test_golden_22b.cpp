// Golden tests for the SmolVLM2-2.2B geometry: a tiny model shaped like the 2.2B (patch 14 on
// 132-pixel tiles, so 9 patches a side and 6 pixels dropped; scale 3, 9 tokens a tile; 32 heads
// and 32 KV heads by LlamaConfig's default, head_dim 4, rope_theta 130000; untied lm_head), made
// by `smolvlm random-model` from tests/fixtures/tiny-smolvlm2-22b, against what the independent
// numpy oracle computed for the same weights (tools/make_22b_oracle_vectors.py →
// tests/fixtures/reference/tiny22b_oracle.*). Tolerances as the HF golden tests: tiles exact
// (PIL LANCZOS / BICUBIC), vision output and features ≤ 1e-3, logits ≤ 1e-3, prompt ids, argmax
// at every prompt position and 24 greedy ids exact.
#include <gtest/gtest.h>
#include <smolvlm/smolvlm.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include "cli_runner.h"
#include "greedy_support.h"
#include "loader/model.h"
#include "prompt_route_support.h"
#include "test_support.h"
#include "text/sampler.h"

namespace smolvlm {
namespace {

using test::max_abs_diff;

const nlohmann::json& oracle_json() {
  static const nlohmann::json j =
      nlohmann::json::parse(read_text_file(test::fixtures() + "/reference/tiny22b_oracle.json"));
  return j;
}

const SafetensorsFile& oracle_tensors() {
  static const SafetensorsFile f(test::fixtures() + "/reference/tiny22b_oracle.safetensors");
  return f;
}

std::vector<int32_t> oracle_ints(const std::string& name) {
  const TensorView& t = oracle_tensors().get(name);
  std::vector<int32_t> out(static_cast<size_t>(t.numel()));
  std::memcpy(out.data(), t.data, out.size() * sizeof(int32_t));
  return out;
}

// The model folder, made once: the committed config files, the real tokenizer, and the weights
// `random-model` writes for the seed the vectors were made with.
const std::string& model_dir() {
  static std::unique_ptr<test::TempDir> dir;
  static std::string path;
  if (dir) return path;
  dir = std::make_unique<test::TempDir>();
  namespace fs = std::filesystem;
  const fs::path config = fs::path(dir->path()) / "config";
  fs::create_directory(config);
  for (const auto& e : fs::directory_iterator(test::fixtures() + "/tiny-smolvlm2-22b")) {
    fs::copy_file(e.path(), config / e.path().filename());
  }
  for (const auto& name : oracle_json()["tokenizer_files"]) {
    fs::copy_file(fs::path(test::tiny_model()) / name.get<std::string>(),
                  config / name.get<std::string>());
  }
  path = (fs::path(dir->path()) / "model").string();
  const test::CliResult r =
      test::run_cli({"random-model", "--config", config.string(), "-o", path, "--seed",
                     std::to_string(oracle_json()["seed"].get<int>())});
  if (r.status != 0) throw Error("random-model failed: " + r.err);
  return path;
}

const Model& model() {
  static const std::unique_ptr<Model> m = Model::load_hf(model_dir(), VisionPrecision::F32);
  return *m;
}

// The HF fixture's messages for a case (golden.json keeps them in HF's chat format).
std::vector<PromptMessage> messages_of(const std::string& name) {
  std::vector<PromptMessage> out;
  for (const auto& m : test::golden_json()["cases"][name]["messages"]) {
    PromptMessage pm{m["role"].get<std::string>(), {}};
    for (const auto& item : m["content"]) {
      const std::string type = item["type"].get<std::string>();
      if (type == "text") {
        pm.content.push_back({PromptItem::Kind::Text, item["text"].get<std::string>()});
      }
      if (type == "image") pm.content.push_back({PromptItem::Kind::Image, {}});
      if (type == "video") pm.content.push_back({PromptItem::Kind::Video, {}});
    }
    out.push_back(std::move(pm));
  }
  return out;
}

// FNV-1a 64 of a tile's 8-bit values (CHW), recovered exactly from its pixel values (v/127.5 - 1).
std::string tile_hash(const float* tile, size_t n) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (size_t i = 0; i < n; ++i) {
    const long v = std::lround((static_cast<double>(tile[i]) + 1.0) * 127.5);
    h = (h ^ static_cast<uint64_t>(v)) * 0x100000001B3ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

class Golden22B : public ::testing::TestWithParam<std::string> {
 protected:
  const nlohmann::json& ocase() const {
    for (const auto& c : oracle_json()["cases"]) {
      if (c["name"] == GetParam()) return c;
    }
    throw Error("no oracle case " + GetParam());
  }
  test::CasePrompt prepare() const {
    const nlohmann::json& c = ocase();
    std::vector<Image> images, frames;
    VideoSlot video;
    for (const auto& img : c["images"]) {
      images.push_back(
          load_image_file(test::tiny_model() + "/images/" + img.get<std::string>() + ".png"));
    }
    if (c.contains("frames")) {
      for (const auto& k : c["frames"]) {
        frames.push_back(load_image_file(test::tiny_model() + "/images/frame_" +
                                         std::to_string(k.get<int>()) + ".png"));
      }
      video.timestamps_s = c["timestamps"].get<std::vector<double>>();
      video.duration_s = c["duration_s"].get<double>();
    }
    ImageProcessorConfig proc = model().config.processor;
    proc.do_split = c["split"].get<bool>();
    return test::case_prompt(model(), messages_of(GetParam()), images, proc, frames, video);
  }
};

TEST(Golden22BModel, HasTheGeometry) {
  const ModelConfig& c = model().config;
  EXPECT_EQ(c.vision.patch, 14);
  EXPECT_EQ(c.vision.image_size % c.vision.patch, 6);  // as 384 = 27 · 14 + 6
  EXPECT_EQ(c.vision.patches_per_side(), 9);
  EXPECT_EQ(c.scale_factor, 3);
  EXPECT_EQ(c.image_seq_len, 9);
  EXPECT_EQ(c.image_seq_len, oracle_json()["image_seq_len"].get<int>());
  EXPECT_EQ(c.text.heads, 32);
  EXPECT_EQ(c.text.kv_heads, 32);
  EXPECT_FLOAT_EQ(c.text.rope_theta, 130000.0f);
  EXPECT_EQ(c.processor.longest_edge, 4 * c.processor.tile_size);
  EXPECT_NE(model().weights.text.lm_head.w.data, model().weights.text.embed.data);  // untied
}

TEST_P(Golden22B, PromptIdsAndTiles) {
  const nlohmann::json& c = ocase();
  EXPECT_EQ(render_chat(messages_of(GetParam()), true), c["prompt"].get<std::string>());
  const test::CasePrompt p = prepare();
  EXPECT_EQ(p.prompt.text, c["expanded_prompt"].get<std::string>());
  EXPECT_EQ(p.prompt.ids, c["input_ids"].get<std::vector<int32_t>>());
  if (!c.contains("n_tiles")) {
    EXPECT_EQ(p.n_tiles, 0);
    return;
  }
  ASSERT_EQ(p.n_tiles, c["n_tiles"].get<int>());
  const size_t tile =
      static_cast<size_t>(3) * model().config.vision.image_size * model().config.vision.image_size;
  ASSERT_EQ(p.pixels.size(), tile * static_cast<size_t>(p.n_tiles));
  for (int t = 0; t < p.n_tiles; ++t) {
    EXPECT_EQ(tile_hash(p.pixels.data() + tile * t, tile),
              c["tile_fnv64"][static_cast<size_t>(t)].get<std::string>())
        << "tile " << t;
  }
}

TEST_P(Golden22B, VisionLogitsAndGreedy) {
  const nlohmann::json& c = ocase();
  const std::string& name = GetParam();
  const Model& m = model();
  const test::CasePrompt p = prepare();
  std::vector<float> features;
  double dh = 0, df = 0;
  if (p.n_tiles > 0) {
    const std::vector<float> h = m.vision.encode_tile(test::test_compute(), p.pixels.data());
    dh = max_abs_diff(h, to_f32(oracle_tensors().get(name + ".vision_last_hidden0")));
    features = m.vision.image_features(test::test_compute(), p.pixels.data(), p.n_tiles);
    df = max_abs_diff(features, to_f32(oracle_tensors().get(name + ".image_features")));
    EXPECT_LE(dh, 1e-3);
    EXPECT_LE(df, 1e-3);
  }
  const std::vector<int32_t> ids = c["input_ids"].get<std::vector<int32_t>>();
  const std::vector<float> x = test::embed_with_features(m, ids, features);
  const int n = static_cast<int>(ids.size()), V = m.config.text.vocab;
  KVCache cache(m.config.text, n + 24);
  std::vector<float> all(static_cast<size_t>(n) * V), last(static_cast<size_t>(V));
  m.decoder.forward(test::test_compute(), x.data(), n, cache, last.data(), all.data());

  const std::vector<int32_t> at = oracle_ints(name + ".logits_ids");
  const std::vector<float> want = to_f32(oracle_tensors().get(name + ".logits_values"));
  ASSERT_EQ(at.size(), want.size());
  double dl = 0;
  for (size_t i = 0; i < at.size(); ++i) {
    dl = std::max(dl, static_cast<double>(std::fabs(last[static_cast<size_t>(at[i])] - want[i])));
  }
  EXPECT_LE(dl, 1e-3);
  const std::vector<int32_t> argmax_all = oracle_ints(name + ".argmax_all");
  ASSERT_EQ(argmax_all.size(), ids.size());
  int argmax_mismatch = 0;
  for (int i = 0; i < n; ++i) {
    argmax_mismatch += argmax(std::span<const float>(all.data() + static_cast<size_t>(i) * V, V)) !=
                       argmax_all[static_cast<size_t>(i)];
  }
  EXPECT_EQ(argmax_mismatch, 0);

  const std::vector<int32_t> greedy =
      test::greedy_ids(m.decoder, m.config.text.hidden, test::test_compute(), cache, last, 24);
  const std::vector<int32_t> want_ids = c["greedy_new_ids"].get<std::vector<int32_t>>();
  int same = 0;
  while (same < 24 && greedy[static_cast<size_t>(same)] == want_ids[static_cast<size_t>(same)]) {
    ++same;
  }
  std::printf(
      "[2.2B geometry %s] vision tile 0 max abs %.3g, image_features max abs %.3g, logits_last "
      "max abs %.3g, argmax mismatches %d, greedy ids matching %d/24\n",
      name.c_str(), dh, df, dl, argmax_mismatch, same);
  EXPECT_EQ(greedy, want_ids);
}

INSTANTIATE_TEST_SUITE_P(TinyModel, Golden22B,
                         ::testing::Values("text_only", "image_split", "image_nosplit", "video"));

// The public API on the same model: a picture file in, the oracle's prompt length and answer out.
TEST(Golden22BEngine, AskAboutASplitPicture) {
  const nlohmann::json* split = nullptr;
  for (const auto& c : oracle_json()["cases"]) {
    if (c["name"] == "image_split") split = &c;
  }
  ASSERT_NE(split, nullptr);
  auto engine = Engine::load(model_dir(), LoadOptions{});
  EXPECT_EQ(engine->info().tokens_per_tile, 9);
  const Conversation conv = {{"user",
                              {Content::image_file(test::tiny_model() + "/images/img_b.png"),
                               Content::text("Describe the image.")}}};
  GenerationOptions opt;
  opt.max_new_tokens = 24;
  const Result r = engine->generate(conv, opt);
  EXPECT_EQ(r.metrics.prompt_tokens, static_cast<int>((*split)["input_ids"].size()));
  EXPECT_EQ(r.metrics.image_tiles, (*split)["n_tiles"].get<int>());
  EXPECT_EQ(r.tokens, (*split)["greedy_new_ids"].get<std::vector<int32_t>>());
}

// The model's weights under a config.json edited by `edit`; returns load_hf's error ("" if none).
template <typename Edit>
std::string load_error(Edit edit) {
  namespace fs = std::filesystem;
  test::TempDir dir;
  for (const auto& e : fs::directory_iterator(model_dir())) {
    const fs::path to = fs::path(dir.path()) / e.path().filename();
    if (e.path().extension() == ".safetensors") {
      fs::create_hard_link(e.path(), to);  // 50 MB: linked, not copied
    } else {
      fs::copy_file(e.path(), to);
    }
  }
  nlohmann::json j = nlohmann::json::parse(read_text_file(dir.path() + "/config.json"));
  edit(j);
  std::ofstream(dir.path() + "/config.json", std::ios::trunc) << j.dump();
  try {
    (void)Model::load_hf(dir.path());
  } catch (const Error& e) {
    // Load errors name the folder first; what follows is compared.
    const std::string m = e.what(), folder = "model folder '" + dir.path() + "': ";
    return m.rfind(folder, 0) == 0 ? m.substr(folder.size()) : "(the folder is not named) " + m;
  }
  return "";
}

// A default that does not fit the weights is named in the error; a config that counts fewer
// layers than the weights hold is refused rather than run short.
TEST(Golden22BModel, WrongLayerCountsAndDefaultsAreSaid) {
  EXPECT_EQ(load_error([](nlohmann::json&) {}), "");
  EXPECT_EQ(load_error([](nlohmann::json& j) { j["vision_config"].erase("num_hidden_layers"); }),
            "the model lacks tensor 'model.vision_model.encoder.layers.2.layer_norm1.weight' "
            "(transformers' defaults for what config.json leaves out: "
            "vision_config.num_hidden_layers = 12, text_config.num_attention_heads = 32, "
            "text_config.num_key_value_heads = 32)");
  EXPECT_EQ(load_error([](nlohmann::json& j) { j["vision_config"].erase("intermediate_size"); }),
            "tensor 'model.vision_model.encoder.layers.0.mlp.fc1.weight' has shape [80, 48], "
            "expected [3072, 48] (transformers' defaults for what config.json leaves out: "
            "vision_config.intermediate_size = 3072, text_config.num_attention_heads = 32, "
            "text_config.num_key_value_heads = 32)");
  EXPECT_EQ(load_error([](nlohmann::json& j) { j["text_config"]["num_hidden_layers"] = 1; }),
            "the weights hold more than the config's 1 layers "
            "('model.text_model.layers.1.input_layernorm.weight') (transformers' defaults for "
            "what config.json leaves out: text_config.num_attention_heads = 32, "
            "text_config.num_key_value_heads = 32)");
  EXPECT_EQ(load_error([](nlohmann::json& j) { j["vision_config"]["num_hidden_layers"] = 1; }),
            "the weights hold more than the config's 1 layers "
            "('model.vision_model.encoder.layers.1.layer_norm1.weight') (transformers' defaults "
            "for what config.json leaves out: text_config.num_attention_heads = 32, "
            "text_config.num_key_value_heads = 32)");
}

// The same model as a GGUF pair (`convert --type f32 --vision-type f32`): the mmproj's patch 14,
// image 132, scale 3 and preprocessing size give the same tiles, features and answer.
TEST(Golden22BEngine, GgufPairAnswersAsTheOracle) {
  const nlohmann::json* split = nullptr;
  for (const auto& c : oracle_json()["cases"]) {
    if (c["name"] == "image_split") split = &c;
  }
  ASSERT_NE(split, nullptr);
  test::TempDir out;
  const test::CliResult r = test::run_cli({"convert", model_dir(), "-o", out.path(), "--type",
                                           "f32", "--vision-type", "f32", "--name", "tiny22b"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto engine = Engine::load(out.path() + "/tiny22b-F32.gguf", LoadOptions{});
  EXPECT_EQ(engine->info().tokens_per_tile, 9);
  EXPECT_EQ(engine->info().tile_size, 132);
  const Conversation conv = {{"user",
                              {Content::image_file(test::tiny_model() + "/images/img_b.png"),
                               Content::text("Describe the image.")}}};
  GenerationOptions opt;
  opt.max_new_tokens = 24;
  const Result res = engine->generate(conv, opt);
  EXPECT_EQ(res.metrics.prompt_tokens, static_cast<int>((*split)["input_ids"].size()));
  EXPECT_EQ(res.metrics.image_tiles, (*split)["n_tiles"].get<int>());
  EXPECT_EQ(res.tokens, (*split)["greedy_new_ids"].get<std::vector<int32_t>>());
}

}  // namespace
}  // namespace smolvlm
