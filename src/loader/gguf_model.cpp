#include "loader/gguf_model.h"

#include <smolvlm/error.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>
#include <tuple>

#include "util/input_text.h"

namespace smolvlm {

namespace {

struct Rule {
  const char* hf;
  const char* gguf;
};

constexpr Rule kTextLayer[] = {
    {"input_layernorm", "attn_norm"},    {"self_attn.q_proj", "attn_q"},
    {"self_attn.k_proj", "attn_k"},      {"self_attn.v_proj", "attn_v"},
    {"self_attn.o_proj", "attn_output"}, {"post_attention_layernorm", "ffn_norm"},
    {"mlp.gate_proj", "ffn_gate"},       {"mlp.up_proj", "ffn_up"},
    {"mlp.down_proj", "ffn_down"},
};

constexpr Rule kVisionLayer[] = {
    {"layer_norm1", "ln1"},         {"layer_norm2", "ln2"},
    {"self_attn.q_proj", "attn_q"}, {"self_attn.k_proj", "attn_k"},
    {"self_attn.v_proj", "attn_v"}, {"self_attn.out_proj", "attn_out"},
    {"mlp.fc1", "ffn_up"},          {"mlp.fc2", "ffn_down"},
};

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

// "layers.12.rest" → (12, "rest") for the given prefix; nullopt when it does not fit.
std::optional<std::pair<int, std::string>> layer_part(const std::string& s,
                                                      const std::string& prefix) {
  if (!starts_with(s, prefix)) return std::nullopt;
  size_t k = prefix.size(), digits = 0;
  int n = 0;
  while (k < s.size() && s[k] >= '0' && s[k] <= '9' && digits < 6) {
    n = n * 10 + (s[k] - '0');
    ++k;
    ++digits;
  }
  if (digits == 0 || k >= s.size() || s[k] != '.') return std::nullopt;
  return std::make_pair(n, s.substr(k + 1));
}

std::optional<std::string> map_layer(const std::string& rest, const Rule* rules, size_t n) {
  for (size_t k = 0; k < n; ++k) {
    if (rest == rules[k].hf) return std::string(rules[k].gguf);
  }
  return std::nullopt;
}

// ggml's dimension order (fastest first), as llama.cpp's tools print shapes.
std::string ggml_dims(const std::vector<int64_t>& shape) {
  std::string s = "{";
  for (size_t k = shape.size(); k-- > 0;) s += std::to_string(shape[k]) + (k ? ", " : "");
  return s + "}";
}

int int_key(const GgufFile& f, const std::string& key, std::optional<int> fallback, int lo = 1,
            int hi = 1 << 24) {
  const std::optional<int64_t> v = f.get_int_opt(key);
  if (!v) {
    if (fallback) return *fallback;
    throw Error("'" + f.path() + "': missing required key '" + key + "'");
  }
  if (*v < lo || *v > hi) {
    throw Error("'" + f.path() + "': key '" + key + "' is " + std::to_string(*v) + ", expected " +
                std::to_string(lo) + " to " + std::to_string(hi));
  }
  return static_cast<int>(*v);
}

float eps_key(const GgufFile& f, const std::string& key, std::optional<double> fallback) {
  const std::optional<double> v = f.get_float_opt(key);
  if (!v && !fallback) throw Error("'" + f.path() + "': missing required key '" + key + "'");
  const double e = v ? *v : *fallback;
  if (!(e > 0 && e < 1)) {
    throw Error("'" + f.path() + "': key '" + key + "' must be between 0 and 1");
  }
  return static_cast<float>(e);
}

std::array<float, 3> rgb_key(const GgufFile& f, const std::string& key,
                             std::array<float, 3> fallback) {
  const GgufValue* v = f.get_array_opt(key, GgufType::F32);
  if (!v) return fallback;
  if (v->floats.size() != 3) {
    throw Error("'" + f.path() + "': key '" + key + "' must hold 3 values, one per colour");
  }
  return {static_cast<float>(v->floats[0]), static_cast<float>(v->floats[1]),
          static_cast<float>(v->floats[2])};
}

}  // namespace

std::optional<GgufName> gguf_name_for(const std::string& hf) {
  const size_t dot = hf.rfind('.');
  if (dot == std::string::npos) return std::nullopt;
  const std::string suffix = hf.substr(dot);
  if (suffix != ".weight" && suffix != ".bias") return std::nullopt;
  const std::string base = hf.substr(0, dot);
  const auto text = [&](const std::string& n) { return GgufName{GgufPart::Text, n + suffix}; };
  const auto vision = [&](const std::string& n) { return GgufName{GgufPart::Mmproj, n + suffix}; };

  if (base == "lm_head") return text("output");
  if (base == "model.connector.modality_projection.proj") return vision("mm.model.fc");
  for (const char* prefix : {"model.text_model.", "model.language_model."}) {
    if (!starts_with(base, prefix)) continue;
    const std::string rest = base.substr(std::strlen(prefix));
    if (rest == "embed_tokens") return text("token_embd");
    if (rest == "norm") return text("output_norm");
    if (auto l = layer_part(rest, "layers.")) {
      if (auto g = map_layer(l->second, kTextLayer, std::size(kTextLayer))) {
        return text("blk." + std::to_string(l->first) + "." + *g);
      }
    }
    return std::nullopt;
  }
  const std::string vp = "model.vision_model.";
  if (!starts_with(base, vp)) return std::nullopt;
  const std::string rest = base.substr(vp.size());
  if (rest == "embeddings.patch_embedding") return vision("v.patch_embd");
  if (rest == "embeddings.position_embedding") return vision("v.position_embd");
  if (rest == "post_layernorm") return vision("v.post_ln");
  if (auto l = layer_part(rest, "encoder.layers.")) {
    if (auto g = map_layer(l->second, kVisionLayer, std::size(kVisionLayer))) {
      return vision("v.blk." + std::to_string(l->first) + "." + *g);
    }
  }
  return std::nullopt;
}

std::vector<uint8_t> permute_qk_rows(const uint8_t* data, size_t row_bytes, int rows, int n_head,
                                     bool to_gguf) {
  if (n_head <= 0 || rows % n_head != 0 || (rows / n_head) % 2 != 0) {
    throw Error("cannot re-order attention rows: " + std::to_string(rows) + " rows for " +
                std::to_string(n_head) + " heads");
  }
  const int hd = rows / n_head, half = hd / 2;
  std::vector<uint8_t> out(static_cast<size_t>(rows) * row_bytes);
  for (int h = 0; h < n_head; ++h) {
    for (int i = 0; i < 2; ++i) {
      for (int j = 0; j < half; ++j) {
        const size_t hf_row = static_cast<size_t>(h * hd + i * half + j);
        const size_t gg_row = static_cast<size_t>(h * hd + 2 * j + i);
        const size_t src = to_gguf ? hf_row : gg_row, dst = to_gguf ? gg_row : hf_row;
        std::memcpy(out.data() + dst * row_bytes, data + src * row_bytes, row_bytes);
      }
    }
  }
  return out;
}

void check_gguf_kind(const GgufFile& f, GgufPart expected) {
  const std::string arch = f.get_string("general.architecture");
  const std::string file = "'" + f.path() + "'";
  if (expected == GgufPart::Text) {
    if (arch == "clip") {
      throw Error(file +
                  " is a vision projector (mmproj) GGUF, not a text model: give it with "
                  "--mmproj and the text model GGUF with -m");
    }
    if (arch != "llama") {
      throw Error(file + ": architecture " + quote_input(arch) +
                  " is not supported (SmolVLM2's text model is 'llama')");
    }
    return;
  }
  if (arch == "llama") {
    throw Error(file +
                " is a text model GGUF (architecture 'llama'), not a vision projector "
                "(mmproj): give it with -m and the mmproj GGUF with --mmproj");
  }
  if (arch != "clip") {
    throw Error(file + ": architecture " + quote_input(arch) +
                " is not a vision projector (expected 'clip')");
  }
  if (f.get_bool_opt("clip.has_vision_encoder") == false) {
    throw Error(file + " has no vision encoder (clip.has_vision_encoder is false)");
  }
  const std::string proj = f.get_string("clip.projector_type");
  if (proj != "idefics3") {
    throw Error(file + ": projector type " + quote_input(proj) + " is not SmolVLM's ('idefics3')");
  }
}

Tokenizer tokenizer_from_gguf(const GgufFile& f) {
  const std::string model = f.get_string("tokenizer.ggml.model");
  if (model != "gpt2") {
    throw Error("'" + f.path() + "': tokenizer " + quote_input(model) +
                " is not supported (SmolVLM2 uses the byte-level BPE 'gpt2')");
  }
  // The pre-tokenizer decides how text is split before BPE; ours is SmolLM2's.
  if (auto pre = f.get_string_opt("tokenizer.ggml.pre"); pre && *pre != "smollm") {
    throw Error("'" + f.path() + "': pre-tokenizer " + quote_input(*pre) +
                " is not supported (SmolVLM2's is 'smollm')");
  }
  std::vector<std::string> tokens = f.get_array("tokenizer.ggml.tokens", GgufType::String).strs;
  const std::vector<std::string>& merges =
      f.get_array("tokenizer.ggml.merges", GgufType::String).strs;
  std::vector<AddedToken> added;
  if (const GgufValue* types = f.get_array_opt("tokenizer.ggml.token_type", GgufType::I32)) {
    if (types->ints.size() != tokens.size()) {
      throw Error("'" + f.path() + "': " + std::to_string(types->ints.size()) +
                  " token types for " + std::to_string(tokens.size()) + " tokens");
    }
    // llama.cpp's token types: 3 CONTROL (HF special added tokens), 4 USER_DEFINED (other added
    // tokens). Both are matched whole before BPE, as HF matches its added tokens.
    for (size_t id = 0; id < tokens.size(); ++id) {
      const int64_t t = types->ints[id];
      if (t == 3 || t == 4) added.push_back({tokens[id], static_cast<int32_t>(id), t == 3});
    }
  }
  try {
    return Tokenizer::from_vocab(std::move(tokens), merges, added);
  } catch (const Error& e) {
    throw Error("'" + f.path() + "': " + e.what());
  }
}

GgufModelFiles::GgufModelFiles(const std::string& text_path, const std::string& mmproj_path)
    : text_(std::make_unique<GgufFile>(text_path)),
      mmproj_(std::make_unique<GgufFile>(mmproj_path)) {
  check_gguf_kind(*text_, GgufPart::Text);
  check_gguf_kind(*mmproj_, GgufPart::Mmproj);
  const GgufFile& tf = *text_;
  const GgufFile& vf = *mmproj_;
  tokenizer_ = tokenizer_from_gguf(tf);

  // Text decoder (llama.* keys; llama.cpp's defaults where it has them). Sizes within
  // ConfigLimits, checked as they are read.
  using L = ConfigLimits;
  namespace K = gguf_key;
  TextConfig& t = config_.text;
  t.hidden = int_key(tf, K::kTextHidden, std::nullopt, 1, L::kHidden);
  t.layers = int_key(tf, K::kTextLayers, std::nullopt, 1, L::kLayers);
  t.heads = int_key(tf, K::kTextHeads, std::nullopt, 1, L::kHeads);
  t.kv_heads = int_key(tf, K::kTextKvHeads, t.heads, 1, L::kHeads);
  t.intermediate = int_key(tf, K::kTextIntermediate, std::nullopt, 1, L::kIntermediate);
  t.max_positions = int_key(tf, K::kTextContext, std::nullopt, 1, L::kPositions);
  t.rms_norm_eps = eps_key(tf, K::kTextRmsEps, std::nullopt);
  const double theta = tf.get_float_opt(K::kTextRopeBase).value_or(10000.0);
  if (!(theta > 0)) throw Error("'" + tf.path() + "': llama.rope.freq_base must be positive");
  t.rope_theta = static_cast<float>(theta);
  t.head_dim = int_key(tf, K::kTextKeyLength, t.hidden / t.heads, 1, L::kHeadDim);
  if (int_key(tf, K::kTextValueLength, t.head_dim) != t.head_dim) {
    throw Error("'" + tf.path() + "': key and value head sizes differ, which SmolVLM2 never does");
  }
  if (int_key(tf, K::kTextRopeDims, t.head_dim) != t.head_dim) {
    throw Error("'" + tf.path() +
                "': partial RoPE (rope.dimension_count below the head size) is "
                "not supported");
  }
  if (auto s = tf.get_string_opt(K::kTextRopeScaling); s && *s != "none") {
    throw Error("'" + tf.path() + "': RoPE scaling " + quote_input(*s) + " is not supported");
  }
  t.vocab = int_key(tf, K::kTextVocab, static_cast<int>(tokenizer_.vocab_size()), 1, L::kVocab);
  if (tokenizer_.vocab_size() != static_cast<size_t>(t.vocab)) {
    throw Error("'" + tf.path() + "': " + std::to_string(tokenizer_.vocab_size()) +
                " tokens but a vocabulary of " + std::to_string(t.vocab));
  }
  t.tie_word_embeddings = tf.find_tensor("output.weight") == nullptr;

  // Vision encoder and connector (clip.* keys).
  VisionConfig& v = config_.vision;
  v.hidden = int_key(vf, K::kVisionHidden, std::nullopt, 1, L::kHidden);
  v.layers = int_key(vf, K::kVisionLayers, std::nullopt, 1, L::kLayers);
  v.heads = int_key(vf, K::kVisionHeads, std::nullopt, 1, L::kHeads);
  v.intermediate = int_key(vf, K::kVisionIntermediate, std::nullopt, 1, L::kIntermediate);
  v.patch = int_key(vf, K::kVisionPatch, std::nullopt, 1, L::kImageSize);
  v.image_size = int_key(vf, K::kVisionImageSize, std::nullopt, 1, L::kImageSize);
  v.channels = 3;
  // LayerNorm epsilon: every SmolVLM / Idefics3 vision tower uses 1e-6 (transformers' default,
  // spec §3). llama.cpp's converter writes 1e-5 when config.json omits the key, as the released
  // SmolVLM2 configs do, so a stated 1e-5 in an idefics3 mmproj is that fallback, not the model:
  // we use 1e-6 to compute what transformers computes. Any other stated value is used as is.
  file_vision_eps_ = vf.get_float_opt(K::kVisionNormEps);
  v.layer_norm_eps = eps_key(vf, K::kVisionNormEps, 1e-6);
  if (v.layer_norm_eps == 1e-5f) v.layer_norm_eps = 1e-6f;
  if (vf.get_bool_opt(K::kUseGelu) == false || vf.get_bool_opt(K::kUseSilu) == true) {
    throw Error("'" + vf.path() + "': only the tanh GELU activation is supported");
  }
  config_.scale_factor = int_key(vf, K::kVisionScaleFactor, std::nullopt, 1, L::kScaleFactor);
  const int projection = int_key(vf, K::kVisionProjection, std::nullopt, 1, L::kHidden);
  if (projection != t.hidden) {
    throw Error("mmproj '" + vf.path() + "' projects images to " + std::to_string(projection) +
                " features but the text model '" + tf.path() + "' is " + std::to_string(t.hidden) +
                " wide: the two files come from different models");
  }

  // Image processing: what preprocessor_config.json would say.
  ImageProcessorConfig& p = config_.processor;
  p.tile_size = v.image_size;
  // clip.vision.preproc_image_size is size.longest_edge; older mmproj files lack it, and SmolVLM2
  // uses 4 tiles' worth (2048 for 512-pixel tiles).
  p.longest_edge = int_key(vf, K::kVisionLongestEdge, std::min(4 * v.image_size, L::kLongestEdge),
                           1, L::kLongestEdge);
  p.video_longest_edge = p.longest_edge;  // as load_hf_config: the video processor uses size
  p.mean = rgb_key(vf, K::kVisionMean, p.mean);
  p.std = rgb_key(vf, K::kVisionStd, p.std);
  for (float s : p.std) {
    if (!(s > 0)) throw Error("'" + vf.path() + "': image_std must be positive");
  }

  const std::optional<int32_t> image_id = tokenizer_.find_token("<image>");
  if (!image_id) throw Error("'" + tf.path() + "': the vocabulary lacks the token <image>");
  config_.image_token_id = *image_id;
  const int side =
      v.patch > 0 && config_.scale_factor > 0 ? v.image_size / v.patch / config_.scale_factor : 0;
  config_.image_seq_len = side * side;
  validate(config_, "'" + tf.path() + "' with '" + vf.path() + "'");

  // The layer counts against the tensors each file holds, before a name is made for each layer:
  // a small file claiming 2^24 blocks is refused here, not after gigabytes of names.
  for (const auto& [f, layers, per_layer] :
       {std::tuple{&tf, t.layers, std::size(kTextLayer)},
        std::tuple{&vf, v.layers, 2 * std::size(kVisionLayer)}}) {
    const uint64_t needed = static_cast<uint64_t>(layers) * per_layer;
    if (needed > f->tensors().size()) {
      throw Error("'" + f->path() + "': " + (f == &tf ? K::kTextLayers : K::kVisionLayers) + " " +
                  std::to_string(layers) + " needs at least " + std::to_string(needed) +
                  " tensors, but the file holds " + std::to_string(f->tensors().size()));
    }
  }

  // Every tensor the config implies, found by its llama.cpp name in the right file and checked.
  std::set<std::string> used_text, used_mmproj;
  for (const NamedShape& ns : hf_tensor_shapes(config_)) {
    const std::optional<GgufName> g = gguf_name_for(ns.name);
    if (!g) throw Error("internal error: no GGUF name for '" + ns.name + "'");
    const GgufFile& f = g->part == GgufPart::Text ? tf : vf;
    const TensorView* tv = f.find_tensor(g->name);
    if (!tv) throw Error("'" + f.path() + "' lacks the tensor '" + g->name + "'");
    if (tv->shape != ns.shape) {
      throw Error("'" + f.path() + "': tensor '" + g->name + "' has dimensions " +
                  ggml_dims(tv->shape) + ", expected " + ggml_dims(ns.shape));
    }
    (g->part == GgufPart::Text ? used_text : used_mmproj).insert(g->name);
    TensorView view = *tv;
    const bool is_q = g->name.ends_with(".attn_q.weight") && g->part == GgufPart::Text;
    const bool is_k = g->name.ends_with(".attn_k.weight") && g->part == GgufPart::Text;
    if (is_q || is_k) {
      const int rows = static_cast<int>(view.shape[0]);
      owned_.push_back(permute_qk_rows(view.data, row_bytes(view.dtype, view.shape[1]), rows,
                                       is_q ? t.heads : t.kv_heads, /*to_gguf=*/false));
      view.data = owned_.back().data();
    }
    by_hf_name_.emplace(ns.name, std::move(view));
  }
  for (const auto& [f, used] : {std::pair{&tf, &used_text}, std::pair{&vf, &used_mmproj}}) {
    for (const TensorView& tv : f->tensors()) {
      if (!used->count(tv.name)) {
        throw Error("'" + f->path() + "' holds the tensor " + quote_input(tv.name) +
                    ", which SmolVLM2 does not have (a different model?)");
      }
    }
  }
}

const TensorView* GgufModelFiles::find(const std::string& hf_name) const {
  auto it = by_hf_name_.find(hf_name);
  return it == by_hf_name_.end() ? nullptr : &it->second;
}

}  // namespace smolvlm
