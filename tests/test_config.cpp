// config.json parsing for the real model families, with transformers' defaults for omitted keys.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace smolvlm
