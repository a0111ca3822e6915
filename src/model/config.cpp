#include "model/config.h"

#include <smolvlm/error.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <type_traits>

#include "formats/mapped_file.h"
#include "util/input_text.h"
#include "util/json_brief.h"

namespace smolvlm {

namespace {

using nlohmann::json;

json parse_json(const std::string& text, const std::string& where) {
  return parse_json_bounded(text, "'" + where + "'");
}

// One JSON object of a config file, with the dotted path of its keys for messages
// ("text_config.num_hidden_layers"). Values must have the type and range of what they set: an
// integer key holding 2.5, 1e12 or 2^40 is an error naming the key and the value, not a
// truncation.
struct Section {
  const json& j;
  const std::string& file;
  std::string prefix;  // "" or "text_config."

  bool has(const char* key) const { return j.contains(key) && !j[key].is_null(); }
  [[noreturn]] void fail(const char* key, const std::string& why) const {
    throw Error(file + ": '" + prefix + key + "' " + why);
  }
  // Reads a number key if present (and not null), else keeps the default.
  void get(const char* key, int& out) const {
    if (!has(key)) return;
    const json& v = j[key];
    if (!v.is_number()) fail(key, "is not a number: " + brief_json(v));
    if (!v.is_number_integer()) fail(key, "must be an integer, got " + brief_json(v));
    const bool in_range = v.is_number_unsigned()
                              ? v.get<uint64_t>() <= uint64_t{INT32_MAX}
                              : v.get<int64_t>() >= INT32_MIN && v.get<int64_t>() <= INT32_MAX;
    if (!in_range) {
      fail(key, "is " + brief_json(v) + ", out of range (" + std::to_string(INT32_MIN) + " to " +
                    std::to_string(INT32_MAX) + ")");
    }
    out = static_cast<int>(v.get<int64_t>());
  }
  template <typename Real>
  requires std::is_floating_point_v<Real>
  void get(const char* key, Real& out) const {
    if (!has(key)) return;
    const json& v = j[key];
    if (!v.is_number()) fail(key, "is not a number: " + brief_json(v));
    const double d = v.get<double>();
    // JSON has no NaN, but 1e999 reads as infinity: refused here rather than computed with.
    if (!std::isfinite(d)) fail(key, "is " + brief_json(v) + ", not a finite number");
    if (std::fabs(d) > std::numeric_limits<Real>::max()) {
      fail(key, "is " + brief_json(v) + ", out of range");
    }
    out = static_cast<Real>(d);
  }
  void get(const char* key, bool& out) const {
    if (has(key) && j[key].is_boolean()) out = j[key].get<bool>();
  }
  Section sub(const char* key) const { return {j[key], file, prefix + key + "."}; }
  bool has_object(const char* key) const { return j.contains(key) && j[key].is_object(); }
};

// size.longest_edge and max_image_size.longest_edge of preprocessor_config.json.
int longest_edge(const Section& s, const char* key, int fallback) {
  if (s.has_object(key)) s.sub(key).get("longest_edge", fallback);
  return fallback;
}

}  // namespace

ModelConfig load_hf_config(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error("model folder '" + dir + "' does not exist");
  const fs::path cfg_path = fs::path(dir) / "config.json";
  if (!fs::exists(cfg_path, ec)) throw Error("model folder '" + dir + "' has no config.json");
  const std::string config = read_file(cfg_path.string(), "config file", kMaxJsonFileBytes);
  std::string pre, proc;
  const fs::path pre_path = fs::path(dir) / "preprocessor_config.json";
  const bool have_pre = fs::exists(pre_path, ec);
  if (have_pre) pre = read_file(pre_path.string(), "config file", kMaxJsonFileBytes);
  const fs::path proc_path = fs::path(dir) / "processor_config.json";
  const bool have_proc = fs::exists(proc_path, ec);
  if (have_proc) proc = read_file(proc_path.string(), "config file", kMaxJsonFileBytes);
  return parse_hf_config({cfg_path.string(), config}, have_pre ? &pre : nullptr,
                         have_proc ? &proc : nullptr, dir);
}

ModelConfig parse_hf_config(const NamedText& config, const std::string* preprocessor_json,
                            const std::string* processor_json, const std::string& dir) {
  namespace fs = std::filesystem;
  const std::string& where = config.name;
  const json j = parse_json(config.text, where);
  if (!j.is_object()) throw Error(where + ": not a JSON object");
  const Section top{j, where, ""};

  ModelConfig c;
  // Keys left out take transformers' defaults; the ones that shape tensors are listed in
  // c.defaulted, which the weight loader's errors repeat (a wrong default then says so).
  auto defaulted = [&](const Section& s, const char* key, const std::string& value) {
    if (s.has(key)) return;
    c.defaulted += (c.defaulted.empty() ? "" : ", ") + s.prefix + key + " = " + value;
  };
  c.scale_factor = 2;  // SmolVLMConfig's default
  defaulted(top, "scale_factor", "2");
  top.get("scale_factor", c.scale_factor);
  if (!top.has("image_token_id")) {  // SmolVLMConfig's 128257 is no SmolVLM2 tokenizer's id
    throw Error(where + ": no 'image_token_id' (transformers' default 128257 is not a SmolVLM2 " +
                "token; the released configs say 49190)");
  }
  top.get("image_token_id", c.image_token_id);
  top.get("tie_word_embeddings", c.text.tie_word_embeddings);

  // Vision: SmolVLMVisionConfig defaults for layers/MLP/eps (spec §12); the class defaults for
  // hidden/heads/patch/image are not SmolVLM2 values, so those keys must be present.
  if (!top.has_object("vision_config")) throw Error(where + ": missing vision_config");
  const Section v = top.sub("vision_config");
  for (const char* key : {"hidden_size", "image_size", "patch_size", "num_attention_heads"}) {
    if (!v.j.contains(key)) throw Error(where + ": vision_config lacks '" + key + "'");
  }
  defaulted(v, "num_hidden_layers", std::to_string(c.vision.layers));
  defaulted(v, "intermediate_size", std::to_string(c.vision.intermediate));
  v.get("hidden_size", c.vision.hidden);
  v.get("num_hidden_layers", c.vision.layers);
  v.get("num_attention_heads", c.vision.heads);
  v.get("intermediate_size", c.vision.intermediate);
  v.get("patch_size", c.vision.patch);
  v.get("image_size", c.vision.image_size);
  v.get("num_channels", c.vision.channels);
  v.get("layer_norm_eps", c.vision.layer_norm_eps);
  if (v.j.contains("hidden_act") && v.j["hidden_act"] != "gelu_pytorch_tanh") {
    throw Error(where + ": unsupported vision hidden_act " + brief_json(v.j["hidden_act"]));
  }

  if (!top.has_object("text_config")) throw Error(where + ": missing text_config");
  const Section t = top.sub("text_config");
  // LlamaConfig's defaults where they are the architecture's (32 heads: the 2.2B's config leaves
  // the head counts out); its sizes are Llama-7B's (4096 wide, 32 layers, 11008, a vocabulary of
  // 32000), never a SmolVLM2's, so those keys must be there.
  for (const char* key : {"hidden_size", "num_hidden_layers", "intermediate_size"}) {
    if (!t.has(key)) {
      throw Error(where + ": text_config lacks '" + key +
                  "' (transformers' LlamaConfig default is a Llama-7B size, not a SmolVLM2 one)");
    }
  }
  if (!t.has("vocab_size") && !top.has("vocab_size")) {
    throw Error(where + ": no 'vocab_size' in text_config or at the top (LlamaConfig's default " +
                "32000 is not the SmolVLM2 tokenizer's 49280)");
  }
  c.text.heads = 32;
  c.text.rms_norm_eps = 1e-6f;
  c.text.max_positions = 2048;
  t.get("hidden_size", c.text.hidden);
  t.get("num_hidden_layers", c.text.layers);
  defaulted(t, "num_attention_heads", "32");
  t.get("num_attention_heads", c.text.heads);
  c.text.kv_heads = c.text.heads;  // LlamaConfig: num_key_value_heads defaults to the head count
  defaulted(t, "num_key_value_heads", std::to_string(c.text.heads));
  t.get("num_key_value_heads", c.text.kv_heads);
  t.get("intermediate_size", c.text.intermediate);
  t.get("vocab_size", c.text.vocab);
  top.get("vocab_size", c.text.vocab);
  t.get("rms_norm_eps", c.text.rms_norm_eps);
  t.get("max_position_embeddings", c.text.max_positions);
  c.text.head_dim = c.text.heads > 0 ? c.text.hidden / c.text.heads : 0;
  defaulted(t, "head_dim", std::to_string(c.text.head_dim));
  t.get("head_dim", c.text.head_dim);
  // rope_theta: transformers < 5 writes text_config.rope_theta, >= 5 rope_parameters.rope_theta.
  bool have_theta = false;
  if (t.has_object("rope_parameters")) {
    const Section rp = t.sub("rope_parameters");
    if (rp.j.contains("rope_type") && rp.j["rope_type"] != "default") {
      throw Error(where + ": unsupported rope_type " + brief_json(rp.j["rope_type"]));
    }
    if (rp.j.contains("rope_theta")) {
      rp.get("rope_theta", c.text.rope_theta);
      have_theta = true;
    }
  }
  if (t.j.contains("rope_theta")) {
    t.get("rope_theta", c.text.rope_theta);
    have_theta = true;
  }
  if (!have_theta) throw Error(where + ": text_config has no rope_theta");
  if (t.has("rope_scaling")) throw Error(where + ": rope_scaling is not supported");
  if (!j.contains("tie_word_embeddings")) t.get("tie_word_embeddings", c.text.tie_word_embeddings);

  // Processor: preprocessor_config.json / processor_config.json, spec §12 values when absent.
  ImageProcessorConfig& p = c.processor;
  p.tile_size = c.vision.image_size;
  bool have_longest_edge = false;
  if (preprocessor_json) {
    const std::string pw = (fs::path(dir) / "preprocessor_config.json").string();
    const json pj = parse_json(*preprocessor_json, pw);
    if (!pj.is_object()) throw Error(pw + ": not a JSON object");
    const Section ps{pj, pw, ""};
    have_longest_edge = ps.has_object("size") && ps.sub("size").has("longest_edge");
    p.longest_edge = longest_edge(ps, "size", p.longest_edge);
    p.tile_size = longest_edge(ps, "max_image_size", p.tile_size);
    ps.get("do_image_splitting", p.do_split);
    for (const char* key : {"image_mean", "image_std"}) {
      if (pj.contains(key)) {
        if (!pj[key].is_array() || pj[key].size() != 3) throw Error(pw + ": bad " + key);
        auto& dst = std::string(key) == "image_mean" ? p.mean : p.std;
        for (int i = 0; i < 3; ++i) {
          const json& e = pj[key][static_cast<size_t>(i)];
          if (!e.is_number() || !std::isfinite(e.get<double>())) {
            throw Error(pw + ": '" + key + "' holds " + brief_json(e) + ", not a finite number");
          }
          // The image processor divides by the std: zero (or a sign flip) is no real model's.
          if (std::string(key) == "image_std" && !(e.get<double>() > 0)) {
            throw Error(pw + ": 'image_std' holds " + brief_json(e) + ", not a positive number");
          }
          dst[static_cast<size_t>(i)] = e.get<float>();
        }
      }
    }
    ps.get("rescale_factor", p.rescale);
    if (!(p.rescale > 0)) throw Error(pw + ": 'rescale_factor' must be positive");
    if (pj.contains("resample") && pj["resample"] != 1) {
      throw Error(pw + ": only LANCZOS (resample 1) is supported");
    }
    if (pj.contains("video_sampling")) {
      const json& vs = pj["video_sampling"];
      if (!vs.is_object()) throw Error(pw + ": video_sampling is not an object");
      const Section vss{vs, pw, "video_sampling."};
      vss.get("fps", p.video_fps);
      vss.get("max_frames", p.video_max_frames);
      // The command line's limits (--fps, --max-frames).
      if (!(p.video_fps >= kMinSamplingFps && p.video_fps <= kMaxSamplingFps)) {
        vss.fail("fps", "is " + vs["fps"].dump() + ", not between 0.001 and 1000");
      }
      if (p.video_max_frames < 1 || p.video_max_frames > kMaxSampledFrames) {
        vss.fail("max_frames", "is " + vs["max_frames"].dump() + ", not between 1 and 4096");
      }
    }
  }
  // SmolVLMImageProcessor's default is 4 tiles: 2048 for 512-pixel tiles, 1536 for 384.
  if (!have_longest_edge) p.longest_edge = 4 * p.tile_size;
  p.video_longest_edge = p.longest_edge;  // the video processor overrides video_size with size
  c.image_seq_len = 0;
  if (processor_json) {
    const std::string pw = (fs::path(dir) / "processor_config.json").string();
    const json pj = parse_json(*processor_json, pw);
    if (!pj.is_object()) throw Error(pw + ": not a JSON object");
    Section{pj, pw, ""}.get("image_seq_len", c.image_seq_len);
  }
  const int derived = c.vision.patch > 0 && c.scale_factor > 0
                          ? (c.vision.patches_per_side() / c.scale_factor) *
                                (c.vision.patches_per_side() / c.scale_factor)
                          : 0;
  if (c.image_seq_len == 0) c.image_seq_len = derived;
  // A default that does not fit the rest says it was one.
  const std::string note =
      c.defaulted.empty()
          ? ""
          : " (transformers' defaults for what config.json leaves out: " + c.defaulted + ")";
  try {
    validate(c, where);
  } catch (const Error& e) {
    throw Error(e.what() + note);
  }
  if (c.image_seq_len != derived) {
    throw Error(where + ": image_seq_len " + std::to_string(c.image_seq_len) +
                " does not match the vision grid (" + std::to_string(derived) + ")" + note);
  }
  return c;
}

void validate(const ModelConfig& c, const std::string& source) {
  auto need = [&](bool ok, const std::string& what) {
    if (!ok) throw Error((source.empty() ? "" : source + ": ") + "invalid model config: " + what);
  };
  // Each size is a positive count under its ConfigLimits maximum.
  auto count = [&](int value, int max, const char* what) {
    need(value > 0 && value <= max, std::string(what) + " is " + std::to_string(value) +
                                        ", expected 1 to " + std::to_string(max));
  };
  using L = ConfigLimits;
  const auto& v = c.vision;
  const auto& t = c.text;
  count(v.hidden, L::kHidden, "the vision hidden size");
  count(v.layers, L::kLayers, "the vision layer count");
  count(v.heads, L::kHeads, "the vision head count");
  count(v.intermediate, L::kIntermediate, "the vision intermediate size");
  count(v.image_size, L::kImageSize, "the vision image_size");
  count(v.patch, v.image_size, "the vision patch_size");
  count(c.scale_factor, L::kScaleFactor, "scale_factor");
  need(v.hidden % v.heads == 0, "vision hidden size not divisible by its head count");
  // A tile need not be whole patches (the 2.2B: 384 = 27 · 14 + 6): the stride-patch 'valid'
  // convolution drops the remainder.
  need(v.patch > 0 && v.image_size >= v.patch, "patch size larger than the image size");
  need(v.channels == 3, "vision num_channels must be 3");
  // Attention over the patches is quadratic in their count: 128 a side (16,384 patches) is far
  // past any released encoder (SmolVLM2: 32) and keeps a hostile config from an endless encode.
  need(v.patches_per_side() <= 128, "the vision patch grid is " +
                                        std::to_string(v.patches_per_side()) +
                                        " patches a side (image_size / patch_size), over 128");
  need(v.patches_per_side() % c.scale_factor == 0, "patch grid not divisible by scale_factor");
  need(std::isfinite(v.layer_norm_eps) && v.layer_norm_eps > 0 && v.layer_norm_eps < 1,
       "vision layer_norm_eps must lie between 0 and 1");
  count(t.hidden, L::kHidden, "the text hidden size");
  count(t.layers, L::kLayers, "the text layer count");
  count(t.heads, L::kHeads, "the text head count");
  count(t.kv_heads, L::kHeads, "the text key/value head count");
  count(t.head_dim, L::kHeadDim, "the text head_dim");
  count(t.intermediate, L::kIntermediate, "the text intermediate size");
  count(t.vocab, L::kVocab, "the vocabulary size");
  count(t.max_positions, L::kPositions, "max_position_embeddings");
  // The KV cache indexes one head's positions with int: positions x head size must fit.
  need(int64_t{t.max_positions} * t.kv_heads * t.head_dim <= INT32_MAX,
       "max_position_embeddings x key/value heads x head_dim passes 2^31");
  need(t.head_dim % 2 == 0, "text head_dim must be even (RoPE)");
  need(t.heads % t.kv_heads == 0, "attention heads not a multiple of key/value heads");
  need(c.image_token_id >= 0 && c.image_token_id < t.vocab,
       "image_token_id outside the vocabulary");
  need(std::isfinite(t.rope_theta) && t.rope_theta > 0, "rope_theta must be finite and positive");
  need(std::isfinite(t.rms_norm_eps) && t.rms_norm_eps > 0 && t.rms_norm_eps < 1,
       "rms_norm_eps must lie between 0 and 1");
  const auto& p = c.processor;
  need(p.tile_size == v.image_size, "max_image_size differs from the vision image_size");
  count(p.longest_edge, L::kLongestEdge, "size.longest_edge");
  count(p.video_longest_edge, L::kLongestEdge, "the video longest edge");
  count(p.video_max_frames, L::kVideoFrames, "video_sampling.max_frames");
  need(std::isfinite(p.video_fps) && p.video_fps > 0, "video_sampling.fps must be positive");
  need(std::isfinite(p.rescale) && p.rescale > 0, "rescale_factor must be positive");
  for (size_t i = 0; i < 3; ++i) {
    need(std::isfinite(p.mean[i]), "image_mean must be finite");
    need(std::isfinite(p.std[i]) && p.std[i] > 0, "image_std must be finite and positive");
  }
}

}  // namespace smolvlm
