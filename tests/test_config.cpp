// config.json parsing for the real model families, with transformers' defaults for omitted keys.
#include <gtest/gtest.h>
#include <smolvlm/error.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "formats/mapped_file.h"
#include "model/config.h"
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
  EXPECT_EQ(c.processor.tile_size, 512);
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
