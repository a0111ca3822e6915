#include "model/weights.h"

#include <smolvlm/error.h>

#include <cstring>

#include "formats/quantize.h"

namespace smolvlm {

bool is_matrix_type(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16 || is_block_type(t);
}

namespace {

class Loader {
 public:
  // `defaulted`: ModelConfig::defaulted, said in every error (a wrong default shows up here).
  Loader(const TensorLookup& find, const std::string& defaulted)
      : find_(find),
        note_(defaulted.empty() ? ""
                                : " (transformers' defaults for what config.json leaves out: " +
                                      defaulted + ")") {}

  const TensorView& view(const std::string& name, const std::vector<int64_t>& shape) const {
    const TensorView* t = find_(name);
    if (!t) throw Error("the model lacks tensor '" + name + "'" + note_);
    if (t->shape != shape) {
      TensorView want;
      want.shape = shape;
      throw Error("tensor '" + name + "' has shape " + t->shape_str() + ", expected " +
                  want.shape_str() + note_);
    }
    return *t;
  }
  // A layer past the config's count in the file: the count (perhaps a default) is wrong, and
  // running fewer layers than the weights hold would answer with nonsense.
  void no_layer(const std::string& prefix, int count, const char* key) const {
    if (find_(prefix + std::to_string(count) + "." + key)) {
      throw Error("the weights hold more than the config's " + std::to_string(count) +
                  " layers ('" + prefix + std::to_string(count) + "." + key + "')" + note_);
    }
  }
  // Small tensors: widened to float32.
  std::vector<float> floats(const std::string& name, std::vector<int64_t> shape) const {
    const TensorView& t = view(name, shape);
    if (t.dtype != DType::F32 && t.dtype != DType::F16 && t.dtype != DType::BF16) {
      throw Error("tensor '" + name + "' has unsupported dtype " + dtype_name(t.dtype));
    }
    return to_f32(t);
  }
  // Big matrices: used in place, in their stored type.
  kernels::Matrix matrix(const std::string& name, std::vector<int64_t> shape, int rows,
                         int cols) const {
    const TensorView& t = view(name, shape);
    if (!is_matrix_type(t.dtype)) {
      throw Error("tensor '" + name + "' has unsupported dtype " + dtype_name(t.dtype));
    }
    if (is_block_type(t.dtype) && cols % block_elems(t.dtype) != 0) {
      throw Error("tensor '" + name + "' is " + dtype_name(t.dtype) +
                  " but its rows are not whole blocks");
    }
    // The stride stored: the kernels ask for a row per output (row_bytes is out of line).
    return {t.dtype, t.data, rows, cols, row_bytes(t.dtype, cols)};
  }
  bool has(const std::string& name) const { return find_(name) != nullptr; }

  Linear linear(const std::string& prefix, int out, int in, bool bias) const {
    Linear l;
    l.w = matrix(prefix + ".weight", {out, in}, out, in);
    if (bias) l.b = floats(prefix + ".bias", {out});
    return l;
  }
  Norm norm(const std::string& prefix, int d, bool bias) const {
    Norm n;
    n.w = floats(prefix + ".weight", {d});
    if (bias) n.b = floats(prefix + ".bias", {d});
    return n;
  }

 private:
  const TensorLookup& find_;
  std::string note_;
};

}  // namespace

std::vector<NamedShape> hf_tensor_shapes(const ModelConfig& cfg) {
  const VisionConfig& vc = cfg.vision;
  const TextConfig& tc = cfg.text;
  const int64_t D = vc.hidden, F = vc.intermediate, H = tc.hidden, I = tc.intermediate;
  const int64_t qd = tc.heads * tc.head_dim, kvd = tc.kv_heads * tc.head_dim;
  std::vector<NamedShape> out;
  const std::string vp = "model.vision_model.";
  out.push_back({vp + "embeddings.patch_embedding.weight", {D, vc.channels, vc.patch, vc.patch}});
  out.push_back({vp + "embeddings.patch_embedding.bias", {D}});
  out.push_back({vp + "embeddings.position_embedding.weight", {vc.num_patches(), D}});
  for (int i = 0; i < vc.layers; ++i) {
    const std::string lp = vp + "encoder.layers." + std::to_string(i) + ".";
    for (const char* n : {"layer_norm1", "layer_norm2"}) {
      out.push_back({lp + n + ".weight", {D}});
      out.push_back({lp + n + ".bias", {D}});
    }
    for (const char* n : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
      out.push_back({lp + "self_attn." + n + ".weight", {D, D}});
      out.push_back({lp + "self_attn." + n + ".bias", {D}});
    }
    out.push_back({lp + "mlp.fc1.weight", {F, D}});
    out.push_back({lp + "mlp.fc1.bias", {F}});
    out.push_back({lp + "mlp.fc2.weight", {D, F}});
    out.push_back({lp + "mlp.fc2.bias", {D}});
  }
  out.push_back({vp + "post_layernorm.weight", {D}});
  out.push_back({vp + "post_layernorm.bias", {D}});
  out.push_back({"model.connector.modality_projection.proj.weight", {H, cfg.connector_in()}});
  const std::string tp = "model.text_model.";
  out.push_back({tp + "embed_tokens.weight", {tc.vocab, H}});
  for (int i = 0; i < tc.layers; ++i) {
    const std::string lp = tp + "layers." + std::to_string(i) + ".";
    out.push_back({lp + "input_layernorm.weight", {H}});
    out.push_back({lp + "self_attn.q_proj.weight", {qd, H}});
    out.push_back({lp + "self_attn.k_proj.weight", {kvd, H}});
    out.push_back({lp + "self_attn.v_proj.weight", {kvd, H}});
    out.push_back({lp + "self_attn.o_proj.weight", {H, qd}});
    out.push_back({lp + "post_attention_layernorm.weight", {H}});
    out.push_back({lp + "mlp.gate_proj.weight", {I, H}});
    out.push_back({lp + "mlp.up_proj.weight", {I, H}});
    out.push_back({lp + "mlp.down_proj.weight", {H, I}});
  }
  out.push_back({tp + "norm.weight", {H}});
  if (!tc.tie_word_embeddings) out.push_back({"lm_head.weight", {tc.vocab, H}});
  return out;
}

ModelWeights load_hf_weights(const ModelConfig& cfg, const TensorLookup& find) {
  const Loader ld(find, cfg.defaulted);
  ModelWeights m;
  const VisionConfig& vc = cfg.vision;
  const int D = vc.hidden, C = vc.channels, P = vc.patch;

  const std::string vp = "model.vision_model.";
  VisionWeights& vw = m.vision;
  // Conv2d weight [D, C, P, P] is already the (c, ky, kx) row-major matrix we need.
  vw.patch.w = ld.matrix(vp + "embeddings.patch_embedding.weight", {D, C, P, P}, D, C * P * P);
  vw.patch.b = ld.floats(vp + "embeddings.patch_embedding.bias", {D});
  vw.position = ld.floats(vp + "embeddings.position_embedding.weight", {vc.num_patches(), D});
  for (int i = 0; i < vc.layers; ++i) {
    const std::string lp = vp + "encoder.layers." + std::to_string(i) + ".";
    VisionLayerWeights l;
    l.ln1 = ld.norm(lp + "layer_norm1", D, true);
    l.q = ld.linear(lp + "self_attn.q_proj", D, D, true);
    l.k = ld.linear(lp + "self_attn.k_proj", D, D, true);
    l.v = ld.linear(lp + "self_attn.v_proj", D, D, true);
    l.o = ld.linear(lp + "self_attn.out_proj", D, D, true);
    l.ln2 = ld.norm(lp + "layer_norm2", D, true);
    l.fc1 = ld.linear(lp + "mlp.fc1", vc.intermediate, D, true);
    l.fc2 = ld.linear(lp + "mlp.fc2", D, vc.intermediate, true);
    vw.layers.push_back(std::move(l));
  }
  ld.no_layer(vp + "encoder.layers.", vc.layers, "layer_norm1.weight");
  vw.post_ln = ld.norm(vp + "post_layernorm", D, true);

  const TextConfig& tc = cfg.text;
  vw.connector =
      ld.linear("model.connector.modality_projection.proj", tc.hidden, cfg.connector_in(), false);

  // transformers has used both names for the text model over its versions.
  const std::string tp = ld.has("model.language_model.embed_tokens.weight")
                             ? "model.language_model."
                             : "model.text_model.";
  TextWeights& tw = m.text;
  const int H = tc.hidden, qd = tc.heads * tc.head_dim, kvd = tc.kv_heads * tc.head_dim;
  tw.embed = ld.matrix(tp + "embed_tokens.weight", {tc.vocab, H}, tc.vocab, H);
  for (int i = 0; i < tc.layers; ++i) {
    const std::string lp = tp + "layers." + std::to_string(i) + ".";
    TextLayerWeights l;
    l.input_norm = ld.norm(lp + "input_layernorm", H, false);
    l.q = ld.linear(lp + "self_attn.q_proj", qd, H, false);
    l.k = ld.linear(lp + "self_attn.k_proj", kvd, H, false);
    l.v = ld.linear(lp + "self_attn.v_proj", kvd, H, false);
    l.o = ld.linear(lp + "self_attn.o_proj", H, qd, false);
    l.post_attention_norm = ld.norm(lp + "post_attention_layernorm", H, false);
    l.gate = ld.linear(lp + "mlp.gate_proj", tc.intermediate, H, false);
    l.up = ld.linear(lp + "mlp.up_proj", tc.intermediate, H, false);
    l.down = ld.linear(lp + "mlp.down_proj", H, tc.intermediate, false);
    tw.layers.push_back(std::move(l));
  }
  ld.no_layer(tp + "layers.", tc.layers, "input_layernorm.weight");
  tw.norm = ld.norm(tp + "norm", H, false);
  if (!tc.tie_word_embeddings && ld.has("lm_head.weight")) {
    tw.lm_head = ld.linear("lm_head", tc.vocab, H, false);
  } else {  // tied (or a checkpoint that dropped the head): the embedding matrix serves
    tw.lm_head.w = tw.embed;
  }
  return m;
}

namespace {

void restore_matrix(kernels::Matrix& m, DType type,
                    std::vector<std::shared_ptr<const void>>& storage) {
  if (m.type == type || type == DType::F32) return;
  const bool blocks = type == DType::Q8_0 || type == DType::Q4_0;
  if (blocks && m.cols % kQ8BlockSize != 0) return;  // stays as it is
  auto buf =
      std::make_shared<std::vector<uint8_t>>(static_cast<size_t>(m.rows) * row_bytes(type, m.cols));
  std::vector<float> row(static_cast<size_t>(m.cols));
  for (int r = 0; r < m.rows; ++r) {
    kernels::dequantize_row(m, r, row.data());
    uint8_t* dst = buf->data() + static_cast<size_t>(r) * row_bytes(type, m.cols);
    if (type == DType::Q8_0) {
      quantize_row_q8_0(row.data(), m.cols, dst);
    } else if (type == DType::Q4_0) {
      quantize_row_q4_0(row.data(), m.cols, dst);
    } else {
      for (int i = 0; i < m.cols; ++i) {
        const uint16_t h = type == DType::F16 ? f32_to_f16(row[static_cast<size_t>(i)])
                                              : f32_to_bf16(row[static_cast<size_t>(i)]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
    }
  }
  m = {type, buf->data(), m.rows, m.cols, row_bytes(type, m.cols)};
  storage.push_back(std::move(buf));
}

}  // namespace

void requantize(ModelWeights& w, DType text_type, DType vision_type) {
  auto& st = w.storage;
  for (auto& l : w.vision.layers) {
    for (Linear* lin : {&l.q, &l.k, &l.v, &l.o, &l.fc1, &l.fc2})
      restore_matrix(lin->w, vision_type, st);
  }
  restore_matrix(w.vision.connector.w, vision_type, st);
  const bool tied = w.text.lm_head.w.data == w.text.embed.data;
  for (auto& l : w.text.layers) {
    for (Linear* lin : l.linears()) restore_matrix(lin->w, text_type, st);
  }
  restore_matrix(w.text.embed, text_type, st);
  if (tied) {
    w.text.lm_head.w = w.text.embed;
  } else {
    restore_matrix(w.text.lm_head.w, text_type, st);
  }
}

}  // namespace smolvlm
