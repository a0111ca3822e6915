// The GGUF reader and writer, the llama.cpp name map, and everything the file pair gives (config,
// tokenizer, tensors) against the HF folder the fixture files were converted from.
#include <gtest/gtest.h>
#include <smolvlm/error.h>

#include <cmath>

#include "formats/quantize.h"
#include "gguf_test_support.h"
#include "loader/gguf_model.h"
#include "model/config.h"
#include "text/tokenizer.h"

namespace smolvlm {
namespace {

using test::TempDir;

// ---- reader / writer ----

TEST(GgufFormat, ReadsLlamaCppFiles) {
  const GgufFile text(test::text_q8());
  EXPECT_EQ(text.version(), 3u);
  EXPECT_EQ(text.alignment(), 32u);
  EXPECT_EQ(text.metadata().size(), 29u);
  EXPECT_EQ(text.tensors().size(), 21u);
  EXPECT_EQ(text.get_string("general.architecture"), "llama");
  EXPECT_EQ(text.get_int("llama.embedding_length"), 96);
  EXPECT_FLOAT_EQ(static_cast<float>(text.get_float("llama.rope.freq_base")), 100000.0f);
  EXPECT_EQ(text.get_array("tokenizer.ggml.tokens", GgufType::String).strs.size(), 49280u);
  const TensorView* emb = text.find_tensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->dtype, DType::Q8_0);
  EXPECT_EQ(emb->shape, (std::vector<int64_t>{49280, 96}));  // ggml lists {96, 49280}
  EXPECT_EQ(emb->nbytes, 49280u * 3 * 34);
  const GgufFile mm(test::mmproj_f16());
  const TensorView* patch = mm.find_tensor("v.patch_embd.weight");
  ASSERT_NE(patch, nullptr);
  EXPECT_EQ(patch->shape, (std::vector<int64_t>{64, 3, 8, 8}));  // Conv2d [out, in, ky, kx]
  EXPECT_EQ(patch->dtype, DType::F32);
  EXPECT_EQ(mm.find_tensor("mm.model.fc.weight")->dtype, DType::F16);
}

TEST(GgufFormat, WriterRoundTripsEveryValueType) {
  TempDir dir;
  GgufWriter w;
  GgufValue u8;
  u8.type = GgufType::U8;
  u8.u = 200;
  GgufValue i16;
  i16.type = GgufType::I16;
  i16.i = -1234;
  GgufValue u64;
  u64.type = GgufType::U64;
  u64.u = uint64_t{1} << 40;
  GgufValue f64;
  f64.type = GgufType::F64;
  f64.f = 0.1;
  GgufValue u16_array;
  u16_array.type = GgufType::Array;
  u16_array.elem = GgufType::U16;
  u16_array.ints = {1, 65535};
  w.set("a.u8", u8);
  w.set("a.i16", i16);
  w.set("a.u64", u64);
  w.set("a.f64", f64);
  w.set("a.u32", GgufValue::u32(7));
  w.set("a.i32", GgufValue::i32(-7));
  w.set("a.f32", GgufValue::f32(1e-6f));
  w.set("a.bool", GgufValue::boolean(true));
  w.set("a.str", GgufValue::string("héllo\nworld"));
  w.set("a.strs", GgufValue::string_array({"", "x", "Ġthe"}));
  w.set("a.ints", GgufValue::i32_array({-1, 0, 3}));
  w.set("a.floats", GgufValue::f32_array({0.5f, -2.0f}));
  w.set("a.u16s", u16_array);
  w.set("a.u32", GgufValue::u32(8));  // replaces in place
  const std::vector<float> vals = {1.5f, -2.0f, 3.25f};
  w.add_tensor("t.f32", DType::F32, {3}, [&] {
    std::vector<uint8_t> b(12);
    std::memcpy(b.data(), vals.data(), 12);
    return b;
  });
  std::vector<float> row(64);
  for (int k = 0; k < 64; ++k) row[static_cast<size_t>(k)] = static_cast<float>(k) - 20.0f;
  const std::vector<uint8_t> q = quantize_q8_0(row, 2, 32);
  w.add_tensor("t.q8", DType::Q8_0, {2, 32}, [&] { return q; });
  w.write(dir / "x.gguf");

  const GgufFile f(dir / "x.gguf");
  ASSERT_EQ(f.metadata().size(), 13u);
  EXPECT_EQ(f.metadata()[4].first, "a.u32");
  EXPECT_EQ(f.get_int("a.u32"), 8);
  EXPECT_EQ(*f.find("a.u8"), u8);
  EXPECT_EQ(*f.find("a.i16"), i16);
  EXPECT_EQ(*f.find("a.u64"), u64);
  EXPECT_EQ(*f.find("a.f64"), f64);
  EXPECT_EQ(f.get_int("a.i32"), -7);
  EXPECT_EQ(static_cast<float>(f.get_float("a.f32")), 1e-6f);
  EXPECT_EQ(f.get_bool_opt("a.bool"), true);
  EXPECT_EQ(f.get_string("a.str"), "héllo\nworld");
  EXPECT_EQ(f.get_array("a.strs", GgufType::String).strs,
            (std::vector<std::string>{"", "x", "Ġthe"}));
  EXPECT_EQ(f.get_array("a.ints", GgufType::I32).ints, (std::vector<int64_t>{-1, 0, 3}));
  EXPECT_EQ(f.get_array("a.floats", GgufType::F32).floats, (std::vector<double>{0.5, -2.0}));
  EXPECT_EQ(*f.find("a.u16s"), u16_array);
  ASSERT_EQ(f.tensors().size(), 2u);
  EXPECT_EQ(to_f32(*f.find_tensor("t.f32")), vals);
  const TensorView* tq = f.find_tensor("t.q8");
  EXPECT_EQ(tq->shape, (std::vector<int64_t>{2, 32}));
  EXPECT_EQ(std::vector<uint8_t>(tq->data, tq->data + tq->nbytes), q);
  EXPECT_EQ((tq->data - f.find_tensor("t.f32")->data) % 32, 0);  // aligned data
  // Typed getters refuse the wrong type and name missing keys.
  EXPECT_THROW(f.get_string("a.u32"), Error);
  EXPECT_THROW(f.get_float("a.i32"), Error);
  try {
    f.get_int("no.such.key");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing required key 'no.such.key'"), std::string::npos);
  }
}

TEST(GgufFormat, HonoursGeneralAlignment) {
  TempDir dir;
  GgufWriter w;
  w.set("general.alignment", GgufValue::u32(64));
  w.add_tensor("a", DType::F32, {4}, [] { return std::vector<uint8_t>(16, 1); });
  w.add_tensor("b", DType::F32, {4}, [] { return std::vector<uint8_t>(16, 2); });
  w.write(dir / "a.gguf");
  std::string bytes = test::read_bytes(dir / "a.gguf");
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  const GgufContents c = parse_gguf(p, bytes.size(), "a");
  EXPECT_EQ(c.alignment, 64u);
  EXPECT_EQ(c.data_offset % 64, 0u);
  EXPECT_EQ(c.tensors[1].data - c.tensors[0].data, 64);
  EXPECT_EQ(c.tensors[1].data[0], 2);
  // A file that states an alignment that is not a power of two is refused, and so is writing one.
  const size_t at = bytes.find("general.alignment") + std::strlen("general.alignment") + 4;
  test::poke<uint32_t>(bytes, at, 48);
  EXPECT_THROW(parse_gguf(p, bytes.size(), "a"), Error);
  GgufWriter bad;
  bad.set("general.alignment", GgufValue::u32(48));
  EXPECT_THROW(bad.write(dir / "b.gguf"), Error);
}

// Damage that must give one clear error (the CLI versions are in test_gguf_bad_input.cpp).
TEST(GgufFormat, RefusesCorruptHeaders) {
  const std::string good = test::read_bytes(test::mmproj_f16());
  auto parse = [](const std::string& b) {
    try {
      parse_gguf(reinterpret_cast<const uint8_t*>(b.data()), b.size(), "f.gguf");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(parsed)");
  };
  EXPECT_EQ(parse(good), "(parsed)");
  EXPECT_NE(parse(good.substr(0, 3)).find("not a GGUF file"), std::string::npos);
  std::string b = good;
  test::poke<uint32_t>(b, 4, 1);
  EXPECT_NE(parse(b).find("GGUF version 1"), std::string::npos);
  test::poke<uint32_t>(b, 4, 0x03000000);
  EXPECT_NE(parse(b).find("big-endian"), std::string::npos);
  b = good;
  test::poke<uint64_t>(b, 16, uint64_t{1} << 60);  // metadata count
  EXPECT_NE(parse(b).find("truncated or corrupt"), std::string::npos);
  b = good;
  test::poke<uint64_t>(b, 24, uint64_t{1} << 50);  // first key's length
  EXPECT_NE(parse(b).find("truncated"), std::string::npos);
  b = good;
  const size_t type_at = test::tensor_type_pos(b, "v.blk.0.ffn_up.weight");
  test::poke<uint32_t>(b, type_at, 16);  // IQ2_XXS: known to ggml, not to us
  EXPECT_NE(parse(b).find("has type IQ2_XXS, which is not supported"), std::string::npos);
  b = good;
  test::poke<uint32_t>(b, type_at, 12);  // Q4_K: read, but this tensor's rows are not 256-wide
  EXPECT_NE(parse(b).find("not whole Q4_K blocks of 256"), std::string::npos);
  b = good;
  const size_t dims_at = test::tensor_info_pos(b, "v.blk.0.ffn_up.weight");
  test::poke<uint32_t>(b, dims_at, 5);
  EXPECT_NE(parse(b).find("5 dimensions"), std::string::npos);
  b = good;
  test::poke<uint64_t>(b, dims_at + 4, uint64_t{1} << 41);  // absurd dimension
  EXPECT_NE(parse(b).find("impossible shape"), std::string::npos);
  b = good;
  test::poke<uint64_t>(b, dims_at + 4, 65);  // rows of 65 are not whole Q8_0 blocks... F16 here
  test::poke<uint32_t>(b, type_at, kGgmlQ8_0);
  EXPECT_NE(parse(b).find("not whole Q8_0 blocks"), std::string::npos);
  b = good;
  const size_t name_at =
      test::tensor_info_pos(b, "v.blk.1.ln1.bias") - std::strlen("v.blk.1.ln1.bias");
  b.replace(name_at, 16, "v.blk.0.ln1.bias");  // same length: a duplicate name
  EXPECT_NE(parse(b).find("appears twice"), std::string::npos);
}

// ---- names and layout ----

TEST(GgufNames, MapsEveryHfTensor) {
  const ModelConfig cfg = load_hf_config(test::tiny_model());
  const GgufFile text(test::text_bf16()), mm(test::mmproj_f32());
  size_t n = 0;
  for (const NamedShape& ns : hf_tensor_shapes(cfg)) {
    const auto g = gguf_name_for(ns.name);
    ASSERT_TRUE(g) << ns.name;
    const GgufFile& f = g->part == GgufPart::Text ? text : mm;
    const TensorView* t = f.find_tensor(g->name);
    ASSERT_NE(t, nullptr) << ns.name << " → " << g->name;
    EXPECT_EQ(t->shape, ns.shape) << g->name;
    ++n;
  }
  EXPECT_EQ(n, text.tensors().size() + mm.tensors().size());
  EXPECT_EQ(gguf_name_for("model.language_model.layers.12.mlp.up_proj.weight")->name,
            "blk.12.ffn_up.weight");
  EXPECT_EQ(gguf_name_for("model.vision_model.encoder.layers.3.self_attn.out_proj.bias")->name,
            "v.blk.3.attn_out.bias");
  EXPECT_FALSE(gguf_name_for("model.text_model.layers.x.mlp.up_proj.weight"));
  EXPECT_FALSE(gguf_name_for("model.text_model.rotary_emb.inv_freq"));
  EXPECT_FALSE(gguf_name_for("lm_head"));
}

TEST(GgufNames, QkRowOrderRoundTrips) {
  std::vector<uint8_t> rows(12 * 3);
  for (size_t k = 0; k < rows.size(); ++k) rows[k] = static_cast<uint8_t>(k);
  const auto g = permute_qk_rows(rows.data(), 3, 12, 2, true);
  // Head 0 has rows 0..5: halves {0,1,2} and {3,4,5} interleave to 0,3,1,4,2,5.
  EXPECT_EQ(g[3 * 1], 3 * 3);
  EXPECT_EQ(g[3 * 2], 3 * 1);
  EXPECT_EQ(permute_qk_rows(g.data(), 3, 12, 2, false), rows);
  EXPECT_THROW(permute_qk_rows(rows.data(), 3, 12, 5, true), Error);
}

// Every tensor the pair gives by HF name is the HF folder's, bit for bit (BF16 text, F32 mmproj
// are exact copies of the BF16 checkpoint), so the q/k rows are back in HF order.
TEST(GgufModel, TensorsEqualTheHfCheckpoint) {
  const GgufModelFiles pair(test::text_bf16(), test::mmproj_f32());
  const TensorStore hf = TensorStore::open_hf_folder(test::tiny_model());
  size_t n = 0;
  for (const std::string& name : hf.names()) {
    const TensorView* g = pair.find(name);
    ASSERT_NE(g, nullptr) << name;
    EXPECT_EQ(to_f32(*g), to_f32(*hf.find(name))) << name;
    ++n;
  }
  EXPECT_EQ(n, 59u);
}

// llama.cpp's Q8_0 tensors are exactly our quantiser's output on the same weights: the rounding
// (scale = max|x|/127 in float, stored as f16; q = round-half-away(x · 1/scale)) is the same.
TEST(GgufModel, Q8_0MatchesLlamaCppBytes) {
  const TensorStore hf = TensorStore::open_hf_folder(test::tiny_model());
  const ModelConfig cfg = load_hf_config(test::tiny_model());
  size_t tensors = 0, bytes = 0, differ = 0;
  for (const std::string& path : {test::text_q8(), test::mmproj_q8()}) {
    const GgufFile f(path);
    for (const std::string& name : hf.names()) {
      const auto g = gguf_name_for(name);
      const TensorView* t = f.find_tensor(g->name);
      if (!t || t->dtype != DType::Q8_0) continue;
      std::vector<float> x = to_f32(*hf.find(name));
      const int cols = static_cast<int>(t->shape.back()), rows = static_cast<int>(x.size()) / cols;
      const bool q = g->name.ends_with("attn_q.weight") && g->part == GgufPart::Text;
      const bool k = g->name.ends_with("attn_k.weight") && g->part == GgufPart::Text;
      if (q || k) {
        const auto p = permute_qk_rows(reinterpret_cast<const uint8_t*>(x.data()), 4u * cols, rows,
                                       q ? cfg.text.heads : cfg.text.kv_heads, true);
        std::memcpy(x.data(), p.data(), p.size());
      }
      const std::vector<uint8_t> ours = quantize_q8_0(x, rows, cols);
      ASSERT_EQ(ours.size(), t->nbytes) << g->name;
      for (size_t b = 0; b < ours.size(); ++b) differ += ours[b] != t->data[b];
      bytes += ours.size();
      ++tensors;
    }
  }
  std::printf("Q8_0: %zu tensors, %zu bytes, %zu differ from llama.cpp's\n", tensors, bytes,
              differ);
  EXPECT_EQ(tensors, 16u + 13u);
  EXPECT_EQ(differ, 0u);
}

TEST(GgufModel, ConfigEqualsTheHfConfig) {
  const ModelConfig hf = load_hf_config(test::tiny_model());
  const GgufModelFiles pair(test::text_q8(), test::mmproj_f16());
  const ModelConfig& g = pair.config();
  EXPECT_EQ(g.vision.hidden, hf.vision.hidden);
  EXPECT_EQ(g.vision.layers, hf.vision.layers);
  EXPECT_EQ(g.vision.heads, hf.vision.heads);
  EXPECT_EQ(g.vision.intermediate, hf.vision.intermediate);
  EXPECT_EQ(g.vision.patch, hf.vision.patch);
  EXPECT_EQ(g.vision.image_size, hf.vision.image_size);
  EXPECT_EQ(g.vision.layer_norm_eps, hf.vision.layer_norm_eps);
  EXPECT_EQ(g.text.hidden, hf.text.hidden);
  EXPECT_EQ(g.text.layers, hf.text.layers);
  EXPECT_EQ(g.text.heads, hf.text.heads);
  EXPECT_EQ(g.text.kv_heads, hf.text.kv_heads);
  EXPECT_EQ(g.text.head_dim, hf.text.head_dim);
  EXPECT_EQ(g.text.intermediate, hf.text.intermediate);
  EXPECT_EQ(g.text.vocab, hf.text.vocab);
  EXPECT_EQ(g.text.rms_norm_eps, hf.text.rms_norm_eps);
  EXPECT_EQ(g.text.rope_theta, hf.text.rope_theta);
  EXPECT_EQ(g.text.max_positions, hf.text.max_positions);
  EXPECT_EQ(g.text.tie_word_embeddings, hf.text.tie_word_embeddings);
  EXPECT_EQ(g.scale_factor, hf.scale_factor);
  EXPECT_EQ(g.image_token_id, hf.image_token_id);
  EXPECT_EQ(g.image_seq_len, hf.image_seq_len);
  EXPECT_EQ(g.processor.longest_edge, hf.processor.longest_edge);
  EXPECT_EQ(g.processor.tile_size, hf.processor.tile_size);
  EXPECT_EQ(g.processor.do_split, hf.processor.do_split);
  EXPECT_EQ(g.processor.mean, hf.processor.mean);
  EXPECT_EQ(g.processor.std, hf.processor.std);
  EXPECT_EQ(g.processor.rescale, hf.processor.rescale);
  EXPECT_EQ(g.processor.video_longest_edge, hf.processor.video_longest_edge);
}

// The vision LayerNorm epsilon: what the tiny mmproj says, and llama.cpp's 1e-5 fallback.
TEST(GgufModel, VisionEpsilon) {
  const GgufModelFiles pair(test::text_q8(), test::mmproj_f16());
  ASSERT_TRUE(pair.file_vision_eps());
  std::printf("tiny mmproj clip.vision.attention.layer_norm_epsilon = %.9g; used %.9g\n",
              *pair.file_vision_eps(), static_cast<double>(pair.config().vision.layer_norm_eps));
  EXPECT_EQ(static_cast<float>(*pair.file_vision_eps()), 1e-6f);  // the tiny config states 1e-6
  EXPECT_EQ(pair.config().vision.layer_norm_eps, 1e-6f);
  TempDir dir;
  const std::string key = "clip.vision.attention.layer_norm_epsilon";
  auto with_eps = [&](std::optional<float> eps) {
    test::rewrite_gguf(test::mmproj_f16(), dir / "m.gguf",
                       {[&](auto& meta) {
                          if (eps)
                            test::set_meta(meta, key, GgufValue::f32(*eps));
                          else
                            test::drop_meta(meta, key);
                        },
                        nullptr});
    return GgufModelFiles(test::text_q8(), dir / "m.gguf").config().vision.layer_norm_eps;
  };
  EXPECT_EQ(with_eps(1e-5f), 1e-6f);  // llama.cpp's fallback for configs without the key
  EXPECT_EQ(with_eps(std::nullopt), 1e-6f);
  EXPECT_EQ(with_eps(1e-4f), 1e-4f);  // any other stated value is the model's
}

// The tokenizer rebuilt from GGUF metadata tokenises exactly like tokenizer.json.
TEST(GgufModel, TokenizerEqualsTheHfTokenizer) {
  const GgufFile text(test::text_q8());
  const Tokenizer g = tokenizer_from_gguf(text);
  const Tokenizer hf = Tokenizer::from_hf_json_file(test::tiny_model() + "/tokenizer.json");
  ASSERT_EQ(g.vocab_size(), hf.vocab_size());
  size_t special_differ = 0;
  for (int32_t id = 0; id < static_cast<int32_t>(hf.vocab_size()); ++id) {
    special_differ += g.is_special(id) != hf.is_special(id);
    if (g.token_bytes(id) != hf.token_bytes(id)) ADD_FAILURE() << "token " << id;
  }
  EXPECT_EQ(special_differ, 0u);
  std::vector<std::string> texts;
  for (const auto& [name, c] : test::golden_json()["cases"].items()) {
    texts.push_back(c["expanded_prompt"].get<std::string>());
    EXPECT_EQ(g.encode(texts.back()), test::parse_int_list(c["input_ids"])) << name;
  }
  const auto ref =
      nlohmann::json::parse(read_text_file(test::fixtures() + "/reference/tokenizer_cases.json"));
  for (const auto& c : ref["cases"]) {
    const std::string t = c["text"].get<std::string>();
    EXPECT_EQ(g.encode(t), c["ids"].get<std::vector<int32_t>>()) << t;
    EXPECT_EQ(g.encode(t), hf.encode(t)) << t;
  }
}

}  // namespace
}  // namespace smolvlm
