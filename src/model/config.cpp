#include "model/config.h"

#include <smolvlm/error.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "formats/mapped_file.h"

namespace smolvlm {

namespace {

using nlohmann::json;

json read_json(const std::filesystem::path& p) {
  try {
    return json::parse(read_text_file(p.string()));
  } catch (const json::exception&) {
    throw Error("'" + p.string() + "' is not valid JSON");
  }
}

// Reads an int key if present (and numeric), else keeps the default.
template <typename T>
void get_num(const json& j, const char* key, T& out, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return;
  if (!j[key].is_number()) throw Error(where + ": '" + key + "' is not a number");
  out = j[key].get<T>();
}

int longest_edge(const json& j, const char* key, int fallback) {
  if (j.contains(key) && j[key].is_object() && j[key].contains("longest_edge") &&
      j[key]["longest_edge"].is_number_integer()) {
    return j[key]["longest_edge"].get<int>();
  }
  return fallback;
}

}  // namespace

ModelConfig load_hf_config(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error("model folder '" + dir + "' does not exist");
  const fs::path cfg_path = fs::path(dir) / "config.json";
  if (!fs::exists(cfg_path, ec)) throw Error("model folder '" + dir + "' has no config.json");
  const json j = read_json(cfg_path);
  const std::string where = cfg_path.string();
  if (!j.is_object()) throw Error(where + ": not a JSON object");

  ModelConfig c;
  get_num(j, "scale_factor", c.scale_factor, where);
  get_num(j, "image_token_id", c.image_token_id, where);
  if (j.contains("tie_word_embeddings") && j["tie_word_embeddings"].is_boolean()) {
    c.text.tie_word_embeddings = j["tie_word_embeddings"].get<bool>();
  }

  // Vision: SmolVLMVisionConfig defaults for layers/MLP/eps (spec §12); the class defaults for
  // hidden/heads/patch/image are not SmolVLM2 values, so those keys must be present.
  if (!j.contains("vision_config") || !j["vision_config"].is_object()) {
    throw Error(where + ": missing vision_config");
  }
  const json& v = j["vision_config"];
  for (const char* key : {"hidden_size", "image_size", "patch_size", "num_attention_heads"}) {
    if (!v.contains(key)) throw Error(where + ": vision_config lacks '" + key + "'");
  }
  get_num(v, "hidden_size", c.vision.hidden, where);
  get_num(v, "num_hidden_layers", c.vision.layers, where);
  get_num(v, "num_attention_heads", c.vision.heads, where);
  get_num(v, "intermediate_size", c.vision.intermediate, where);
  get_num(v, "patch_size", c.vision.patch, where);
  get_num(v, "image_size", c.vision.image_size, where);
  get_num(v, "num_channels", c.vision.channels, where);
  get_num(v, "layer_norm_eps", c.vision.layer_norm_eps, where);
  if (v.contains("hidden_act") && v["hidden_act"] != "gelu_pytorch_tanh") {
    throw Error(where + ": unsupported vision hidden_act " + v["hidden_act"].dump());
  }

  if (!j.contains("text_config") || !j["text_config"].is_object()) {
    throw Error(where + ": missing text_config");
  }
  const json& t = j["text_config"];
  get_num(t, "hidden_size", c.text.hidden, where);
  get_num(t, "num_hidden_layers", c.text.layers, where);
  get_num(t, "num_attention_heads", c.text.heads, where);
  c.text.kv_heads = c.text.heads;  // LlamaConfig: num_key_value_heads defaults to the head count
  get_num(t, "num_key_value_heads", c.text.kv_heads, where);
  get_num(t, "intermediate_size", c.text.intermediate, where);
  get_num(t, "vocab_size", c.text.vocab, where);
  get_num(j, "vocab_size", c.text.vocab, where);
  get_num(t, "rms_norm_eps", c.text.rms_norm_eps, where);
  get_num(t, "max_position_embeddings", c.text.max_positions, where);
  c.text.head_dim = c.text.heads > 0 ? c.text.hidden / c.text.heads : 0;
  get_num(t, "head_dim", c.text.head_dim, where);
  // rope_theta: transformers < 5 writes text_config.rope_theta, >= 5 rope_parameters.rope_theta.
  bool have_theta = false;
  if (t.contains("rope_parameters") && t["rope_parameters"].is_object()) {
    const json& rp = t["rope_parameters"];
    if (rp.contains("rope_type") && rp["rope_type"] != "default") {
      throw Error(where + ": unsupported rope_type " + rp["rope_type"].dump());
    }
    if (rp.contains("rope_theta")) {
      get_num(rp, "rope_theta", c.text.rope_theta, where);
      have_theta = true;
    }
  }
  if (t.contains("rope_theta")) {
    get_num(t, "rope_theta", c.text.rope_theta, where);
    have_theta = true;
  }
  if (!have_theta) throw Error(where + ": text_config has no rope_theta");
  if (t.contains("rope_scaling") && !t["rope_scaling"].is_null()) {
    throw Error(where + ": rope_scaling is not supported");
  }
  if (t.contains("tie_word_embeddings") && t["tie_word_embeddings"].is_boolean() &&
      !j.contains("tie_word_embeddings")) {
    c.text.tie_word_embeddings = t["tie_word_embeddings"].get<bool>();
  }

  // Processor: preprocessor_config.json / processor_config.json, spec §12 values when absent.
  ImageProcessorConfig& p = c.processor;
  p.tile_size = c.vision.image_size;
  const fs::path pre_path = fs::path(dir) / "preprocessor_config.json";
  if (fs::exists(pre_path, ec)) {
    const json pj = read_json(pre_path);
    const std::string pw = pre_path.string();
    p.longest_edge = longest_edge(pj, "size", p.longest_edge);
    p.tile_size = longest_edge(pj, "max_image_size", p.tile_size);
    if (pj.contains("do_image_splitting") && pj["do_image_splitting"].is_boolean()) {
      p.do_split = pj["do_image_splitting"].get<bool>();
    }
    for (const char* key : {"image_mean", "image_std"}) {
      if (pj.contains(key)) {
        if (!pj[key].is_array() || pj[key].size() != 3) throw Error(pw + ": bad " + key);
        auto& dst = std::string(key) == "image_mean" ? p.mean : p.std;
        for (int i = 0; i < 3; ++i)
          dst[static_cast<size_t>(i)] = pj[key][static_cast<size_t>(i)].get<float>();
      }
    }
    get_num(pj, "rescale_factor", p.rescale, pw);
    if (pj.contains("resample") && pj["resample"] != 1) {
      throw Error(pw + ": only LANCZOS (resample 1) is supported");
    }
    p.video_longest_edge = p.longest_edge;  // the video processor overrides video_size with size
    if (pj.contains("video_sampling")) {
      const json& vs = pj["video_sampling"];
      if (!vs.is_object()) throw Error(pw + ": video_sampling is not an object");
      get_num(vs, "fps", p.video_fps, pw + " video_sampling");
      get_num(vs, "max_frames", p.video_max_frames, pw + " video_sampling");
      if (!(p.video_fps > 0) || p.video_max_frames < 1) {
        throw Error(pw + ": video_sampling fps and max_frames must be positive");
      }
    }
  }
  c.image_seq_len = 0;
  const fs::path proc_path = fs::path(dir) / "processor_config.json";
  if (fs::exists(proc_path, ec))
    get_num(read_json(proc_path), "image_seq_len", c.image_seq_len, proc_path.string());
  const int derived = c.vision.patch > 0 && c.scale_factor > 0
                          ? (c.vision.patches_per_side() / c.scale_factor) *
                                (c.vision.patches_per_side() / c.scale_factor)
                          : 0;
  if (c.image_seq_len == 0) c.image_seq_len = derived;
  validate(c);
  if (c.image_seq_len != derived) {
    throw Error(where + ": image_seq_len " + std::to_string(c.image_seq_len) +
                " does not match the vision grid (" + std::to_string(derived) + ")");
  }
  return c;
}

void validate(const ModelConfig& c) {
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw Error("invalid model config: " + what);
  };
  const auto& v = c.vision;
  const auto& t = c.text;
  need(v.hidden > 0 && v.layers > 0 && v.heads > 0 && v.intermediate > 0,
       "vision sizes must be positive");
  need(v.hidden % v.heads == 0, "vision hidden size not divisible by its head count");
  need(v.patch > 0 && v.image_size > 0 && v.image_size % v.patch == 0,
       "image size not a multiple of the patch size");
  need(v.channels == 3, "vision num_channels must be 3");
  need(c.scale_factor > 0 && v.patches_per_side() % c.scale_factor == 0,
       "patch grid not divisible by scale_factor");
  need(t.hidden > 0 && t.layers > 0 && t.heads > 0 && t.kv_heads > 0 && t.head_dim > 0 &&
           t.intermediate > 0,
       "text sizes must be positive");
  need(t.head_dim % 2 == 0, "text head_dim must be even (RoPE)");
  need(t.heads % t.kv_heads == 0, "attention heads not a multiple of key/value heads");
  need(t.vocab > 0 && c.image_token_id >= 0 && c.image_token_id < t.vocab,
       "image_token_id outside the vocabulary");
  need(t.rope_theta > 0, "rope_theta must be positive");
  need(c.processor.tile_size == v.image_size, "max_image_size differs from the vision image_size");
  need(c.processor.longest_edge > 0, "size.longest_edge must be positive");
}

}  // namespace smolvlm
