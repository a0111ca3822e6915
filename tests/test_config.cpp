// config.json parsing for the real model families, with transformers' defaults for omitted keys.
#include <gtest/gtest.h>
#include <smolvlm/error.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "formats/mapped_file.h"
#include "model/config.h"
#include "model/weights.h"
#include "test_support.h"

namespace smolvlm {
namespace {

TEST(Config, Real256M) {
  const ModelConfig c = load_hf_config(test::fixtures() + "/models/SmolVLM2-256M-Video-Instruct");
  EXPECT_EQ(c.text.hidden, 576);
  EXPECT_EQ(c.text.layers, 30);
  EXPECT_EQ(c.text.heads, 9);
  EXPECT_EQ(c.text.kv_heads, 3);
  EXPECT_EQ(c.text.head_dim, 64);
  EXPECT_EQ(c.text.intermediate, 1536);
  EXPECT_EQ(c.text.vocab, 49280);
  EXPECT_FLOAT_EQ(c.text.rope_theta, 100000.0f);
  EXPECT_FALSE(c.text.tie_word_embeddings);
  EXPECT_EQ(c.vision.hidden, 768);
  EXPECT_EQ(c.vision.layers, 12);          // SmolVLMVisionConfig default
  EXPECT_EQ(c.vision.intermediate, 3072);  // default
  EXPECT_FLOAT_EQ(c.vision.layer_norm_eps, 1e-6f);
  EXPECT_EQ(c.vision.num_patches(), 1024);
  EXPECT_EQ(c.scale_factor, 4);
  EXPECT_EQ(c.image_seq_len, 64);
  EXPECT_EQ(c.connector_in(), 12288);
  EXPECT_EQ(c.processor.longest_edge, 2048);
  EXPECT_EQ(c.processor.tile_size, 512);
  EXPECT_TRUE(c.processor.do_split);
}

TEST(Config, Real500MWithoutProcessorFiles) {
  const ModelConfig c = load_hf_config(test::fixtures() + "/models/SmolVLM2-500M-Video-Instruct");
  EXPECT_EQ(c.text.hidden, 960);
  EXPECT_EQ(c.text.layers, 32);
  EXPECT_EQ(c.text.heads, 15);
  EXPECT_EQ(c.text.kv_heads, 5);
  EXPECT_EQ(c.text.intermediate, 2560);
  EXPECT_EQ(c.vision.layers, 12);
  EXPECT_EQ(c.image_seq_len, 64);  // derived from the grid when processor_config.json is absent
  EXPECT_EQ(c.processor.longest_edge, 2048);  // 4 tiles, SmolVLMImageProcessor's default
  EXPECT_EQ(c.defaulted,
            "vision_config.num_hidden_layers = 12, vision_config.intermediate_size = 3072");
  EXPECT_EQ(c.processor.tile_size, 512);
}

// SmolVLM2-2.2B: patch 14 on 384-pixel tiles (27 patches a side, 6 pixels dropped), scale 3
// (81 tokens a tile), MHA with the head counts left to LlamaConfig's default 32, untied head.
TEST(Config, Real22BGeometry) {
  const ModelConfig c = load_hf_config(test::fixtures() + "/models/SmolVLM2-2.2B-Instruct");
  EXPECT_EQ(c.vision.hidden, 1152);
  EXPECT_EQ(c.vision.intermediate, 4304);
  EXPECT_EQ(c.vision.layers, 27);
  EXPECT_EQ(c.vision.heads, 16);
  EXPECT_EQ(c.vision.head_dim(), 72);
  EXPECT_EQ(c.vision.patch, 14);
  EXPECT_EQ(c.vision.image_size, 384);
  EXPECT_EQ(c.vision.patches_per_side(), 27);
  EXPECT_EQ(c.vision.num_patches(), 729);
  EXPECT_FLOAT_EQ(c.vision.layer_norm_eps, 1e-6f);
  EXPECT_EQ(c.scale_factor, 3);
  EXPECT_EQ(c.image_seq_len, 81);
  EXPECT_EQ(c.connector_in(), 10368);
  EXPECT_EQ(c.text.hidden, 2048);
  EXPECT_EQ(c.text.intermediate, 8192);
  EXPECT_EQ(c.text.layers, 24);
  EXPECT_EQ(c.text.heads, 32);     // LlamaConfig default: the key is absent
  EXPECT_EQ(c.text.kv_heads, 32);  // = heads: no GQA
  EXPECT_EQ(c.text.head_dim, 64);
  EXPECT_EQ(c.text.vocab, 49280);
  EXPECT_FLOAT_EQ(c.text.rope_theta, 130000.0f);
  EXPECT_FLOAT_EQ(c.text.rms_norm_eps, 1e-5f);
  EXPECT_EQ(c.text.max_positions, 8192);
  EXPECT_FALSE(c.text.tie_word_embeddings);
  EXPECT_EQ(c.processor.longest_edge, 1536);
  EXPECT_EQ(c.processor.tile_size, 384);
  EXPECT_EQ(c.processor.video_longest_edge, 1536);
  EXPECT_EQ(c.processor.video_max_frames, 64);
  EXPECT_EQ(c.defaulted,
            "text_config.num_attention_heads = 32, text_config.num_key_value_heads = 32");
  // The weights' shapes: 2.2B parameters, the head untied.
  int64_t params = 0;
  bool head = false;
  for (const NamedShape& t : hf_tensor_shapes(c)) {
    int64_t n = 1;
    for (const int64_t d : t.shape) n *= d;
    params += n;
    head = head || t.name == "lm_head.weight";
    if (t.name == "model.vision_model.embeddings.position_embedding.weight") {
      EXPECT_EQ(t.shape, (std::vector<int64_t>{729, 1152}));
    }
    if (t.name == "model.connector.modality_projection.proj.weight") {
      EXPECT_EQ(t.shape, (std::vector<int64_t>{2048, 10368}));
    }
    if (t.name == "model.text_model.layers.0.self_attn.k_proj.weight") {
      EXPECT_EQ(t.shape, (std::vector<int64_t>{2048, 2048}));
    }
  }
  EXPECT_TRUE(head);
  EXPECT_GT(params, 2'200'000'000);
  EXPECT_LT(params, 2'300'000'000);
}

// Without preprocessor_config.json the longest edge is SmolVLMImageProcessor's 4 tiles, whatever
// the tile; a config that leaves out scale_factor takes SmolVLMConfig's 2, and the error it then
// meets says so; the text sizes and the <image> id have no SmolVLM2 default.
TEST(Config, DefaultsFollowTransformers) {
  const std::string dir = test::fixtures() + "/models/SmolVLM2-2.2B-Instruct";
  const std::string config = read_text_file(dir + "/config.json");
  const ModelConfig c = parse_hf_config({"d/config.json", config}, nullptr, nullptr, "d");
  EXPECT_EQ(c.processor.longest_edge, 1536);
  EXPECT_EQ(c.processor.video_longest_edge, 1536);
  EXPECT_EQ(c.image_seq_len, 81);

  nlohmann::json j = nlohmann::json::parse(config);
  j.erase("scale_factor");  // 27 patches a side do not shuffle by 2
  try {
    (void)parse_hf_config({"d/config.json", j.dump()}, nullptr, nullptr, "d");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "(transformers' defaults for what config.json leaves out: scale_factor = 2, "),
              std::string::npos)
        << e.what();
  }
  j["scale_factor"] = 3;
  for (const char* key : {"hidden_size", "num_hidden_layers", "intermediate_size"}) {
    nlohmann::json k = j;
    k["text_config"].erase(key);
    try {
      (void)parse_hf_config({"d/config.json", k.dump()}, nullptr, nullptr, "d");
      FAIL() << "no error without " << key;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("text_config lacks '") + key + "'"),
                std::string::npos)
          << e.what();
    }
  }
  j.erase("image_token_id");
  try {
    (void)parse_hf_config({"d/config.json", j.dump()}, nullptr, nullptr, "d");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no 'image_token_id'"), std::string::npos) << e.what();
  }
}

TEST(Config, TinyFixtureUsesRopeParameters) {
  const ModelConfig c = load_hf_config(test::tiny_model());
  EXPECT_FLOAT_EQ(c.text.rope_theta, 100000.0f);  // transformers >= 5 layout
  EXPECT_EQ(c.text.head_dim, 32);
  EXPECT_EQ(c.text.kv_heads, 1);
  EXPECT_EQ(c.image_seq_len, 4);
  EXPECT_EQ(c.processor.longest_edge, 256);
  EXPECT_EQ(c.processor.tile_size, 64);
}

// parse_hf_config on the tiny model's config.json after `edit`; returns the error, "" if none.
template <typename Edit>
std::string config_error(Edit edit) {
  nlohmann::json j = nlohmann::json::parse(read_text_file(test::tiny_model() + "/config.json"));
  edit(j);
  try {
    (void)parse_hf_config({"dir/config.json", j.dump()}, nullptr, nullptr, "dir");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Config, IntegersMustBeIntegersInRange) {
  EXPECT_EQ(config_error([](nlohmann::json&) {}), "");
  EXPECT_EQ(config_error([](nlohmann::json& j) { j["text_config"]["num_hidden_layers"] = 2.5; }),
            "dir/config.json: 'text_config.num_hidden_layers' must be an integer, got 2.5");
  EXPECT_EQ(config_error([](nlohmann::json& j) { j["text_config"]["num_hidden_layers"] = 2.0; }),
            "dir/config.json: 'text_config.num_hidden_layers' must be an integer, got 2.0");
  EXPECT_EQ(config_error([](nlohmann::json& j) { j["text_config"]["vocab_size"] = 1e12; }),
            "dir/config.json: 'text_config.vocab_size' must be an integer, got 1000000000000.0");
  EXPECT_EQ(config_error([](nlohmann::json& j) { j["vocab_size"] = 1e12; }),
            "dir/config.json: 'vocab_size' must be an integer, got 1000000000000.0");
  EXPECT_EQ(
      config_error([](nlohmann::json& j) { j["text_config"]["num_hidden_layers"] = 1LL << 40; }),
      "dir/config.json: 'text_config.num_hidden_layers' is 1099511627776, out of range "
      "(-2147483648 to 2147483647)");
  EXPECT_EQ(
      config_error([](nlohmann::json& j) { j["vision_config"]["patch_size"] = -(1LL << 40); }),
      "dir/config.json: 'vision_config.patch_size' is -1099511627776, out of range "
      "(-2147483648 to 2147483647)");
  EXPECT_EQ(config_error([](nlohmann::json& j) { j["image_token_id"] = "49190"; }),
            "dir/config.json: 'image_token_id' is not a number: '49190'");
  EXPECT_EQ(config_error([](nlohmann::json& j) { j["text_config"]["rms_norm_eps"] = 1e300; }),
            "dir/config.json: 'text_config.rms_norm_eps' is 1e+300, out of range");
  // In range for an int but not a size: validate() still speaks.
  EXPECT_EQ(config_error([](nlohmann::json& j) { j["text_config"]["num_hidden_layers"] = -3; }),
            "dir/config.json: invalid model config: the text layer count is -3, expected 1 to "
            "1024");
}

TEST(Config, ProcessorIntegersAreCheckedToo) {
  const std::string config = read_text_file(test::tiny_model() + "/config.json");
  const std::string pre =
      R"({"size": {"longest_edge": 1e9}, "max_image_size": {"longest_edge": 64}})";
  try {
    (void)parse_hf_config({"d/config.json", config}, &pre, nullptr, "d");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "d/preprocessor_config.json: 'size.longest_edge' must be an integer, got "
              "1000000000.0");
  }
}

TEST(Config, DirectoryOrFifoAsConfigSaysWhatItIs) {
  test::TempDir dir;
  std::filesystem::create_directory(dir / "config.json");
  try {
    (void)load_hf_config(dir.path());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "cannot open config file '" + (dir / "config.json") + "': is a directory");
  }
}

}  // namespace
}  // namespace smolvlm
