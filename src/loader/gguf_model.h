// SmolVLM2 as llama.cpp ships it: a text GGUF (arch `llama`, the tokenizer in its metadata) and a
// vision projector GGUF (`mmproj`, arch `clip`, projector type `idefics3`). This reads the pair
// into the same ModelConfig, Tokenizer and HF-named tensors that a Hugging Face folder gives, so
// the rest of the engine cannot tell the difference; and it names tensors the llama.cpp way for the
// writer.
//
// Tensor names (llama.cpp's, gguf-py's TensorNameMap for LLAMA and CLIP):
//   model.text_model.embed_tokens.weight            token_embd.weight
//   model.text_model.layers.N.input_layernorm        blk.N.attn_norm
//   ...self_attn.{q,k,v,o}_proj                      blk.N.attn_{q,k,v,output}
//   ...post_attention_layernorm                      blk.N.ffn_norm
//   ...mlp.{gate,up,down}_proj                       blk.N.ffn_{gate,up,down}
//   model.text_model.norm / lm_head                  output_norm / output
//   model.vision_model.embeddings.patch_embedding    v.patch_embd
//   model.vision_model.embeddings.position_embedding v.position_embd
//   ...encoder.layers.N.layer_norm{1,2}              v.blk.N.ln{1,2}
//   ...self_attn.{q,k,v,out}_proj                    v.blk.N.attn_{q,k,v,out}
//   ...mlp.fc{1,2}                                   v.blk.N.ffn_{up,down}
//   model.vision_model.post_layernorm                v.post_ln
//   model.connector.modality_projection.proj         mm.model.fc
// llama.cpp stores attn_q / attn_k with the rows of each head interleaved (its RoPE rotates
// adjacent pairs, HF's rotates halves); the reader undoes that, the writer does it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "model/config.h"
#include "model/weights.h"
#include "text/tokenizer.h"

namespace smolvlm {

enum class GgufPart { Text, Mmproj };

// The metadata keys of the config, one spelling for the reader (GgufModelFiles) and the writer
// (convert_hf_to_gguf): llama.cpp's names for a `llama` text model and a `clip` mmproj.
namespace gguf_key {
// Text GGUF.
inline constexpr char kTextHidden[] = "llama.embedding_length";
inline constexpr char kTextLayers[] = "llama.block_count";
inline constexpr char kTextHeads[] = "llama.attention.head_count";
inline constexpr char kTextKvHeads[] = "llama.attention.head_count_kv";
inline constexpr char kTextIntermediate[] = "llama.feed_forward_length";
inline constexpr char kTextContext[] = "llama.context_length";
inline constexpr char kTextRmsEps[] = "llama.attention.layer_norm_rms_epsilon";
inline constexpr char kTextRopeBase[] = "llama.rope.freq_base";
inline constexpr char kTextRopeDims[] = "llama.rope.dimension_count";
inline constexpr char kTextRopeScaling[] = "llama.rope.scaling.type";  // read: refused unless none
inline constexpr char kTextKeyLength[] = "llama.attention.key_length";
inline constexpr char kTextValueLength[] = "llama.attention.value_length";
inline constexpr char kTextVocab[] = "llama.vocab_size";
// Vision projector GGUF.
inline constexpr char kVisionHidden[] = "clip.vision.embedding_length";
inline constexpr char kVisionLayers[] = "clip.vision.block_count";
inline constexpr char kVisionHeads[] = "clip.vision.attention.head_count";
inline constexpr char kVisionIntermediate[] = "clip.vision.feed_forward_length";
inline constexpr char kVisionPatch[] = "clip.vision.patch_size";
inline constexpr char kVisionImageSize[] = "clip.vision.image_size";
inline constexpr char kVisionNormEps[] = "clip.vision.attention.layer_norm_epsilon";
inline constexpr char kVisionScaleFactor[] = "clip.vision.projector.scale_factor";
inline constexpr char kVisionProjection[] = "clip.vision.projection_dim";
inline constexpr char kVisionLongestEdge[] = "clip.vision.preproc_image_size";
inline constexpr char kVisionMean[] = "clip.vision.image_mean";
inline constexpr char kVisionStd[] = "clip.vision.image_std";
inline constexpr char kUseGelu[] = "clip.use_gelu";
inline constexpr char kUseSilu[] = "clip.use_silu";  // read: refused when set
}  // namespace gguf_key

struct GgufName {
  GgufPart part;
  std::string name;
};

// The llama.cpp name of a HF SmolVLM tensor (model.text_model.* or model.language_model.*),
// or nullopt for a name outside the model.
std::optional<GgufName> gguf_name_for(const std::string& hf_name);

// Row order of attn_q / attn_k. `rows` rows of `row_bytes` bytes, `n_head` heads of rows/n_head.
// to_gguf: HF order → llama.cpp's; otherwise back.
std::vector<uint8_t> permute_qk_rows(const uint8_t* data, size_t row_bytes, int rows, int n_head,
                                     bool to_gguf);

// What the file pair gives, with HF tensor names. The views point into the mapped files (or into
// buffers owned here for the re-ordered attn_q / attn_k), so keep this object alive as long as
// they are used (Model keeps it in ModelWeights::storage).
class GgufModelFiles {
 public:
  // Opens and checks both files: kinds (a text model is not an mmproj and the reverse), keys,
  // that the projector's width matches the text model, every tensor's presence and shape, and
  // that neither file holds a tensor the model does not use. Throws one-line smolvlm::Errors.
  GgufModelFiles(const std::string& text_path, const std::string& mmproj_path);

  const ModelConfig& config() const { return config_; }
  const Tokenizer& tokenizer() const { return tokenizer_; }
  // Moves the tokenizer out (copying its tables would cost several ms of load time); tokenizer()
  // is empty afterwards.
  Tokenizer take_tokenizer() { return std::move(tokenizer_); }
  const GgufFile& text() const { return *text_; }
  const GgufFile& mmproj() const { return *mmproj_; }
  // By HF name; nullptr when absent (e.g. lm_head of a tied model).
  const TensorView* find(const std::string& hf_name) const;
  // The vision LayerNorm epsilon the mmproj states (nullopt when it has none); config().vision
  // holds the one used (see gguf_model.cpp on llama.cpp's 1e-5 default).
  std::optional<double> file_vision_eps() const { return file_vision_eps_; }

 private:
  std::unique_ptr<GgufFile> text_, mmproj_;
  ModelConfig config_;
  Tokenizer tokenizer_;
  std::optional<double> file_vision_eps_;
  std::map<std::string, TensorView> by_hf_name_;
  std::vector<std::vector<uint8_t>> owned_;  // re-ordered attn_q / attn_k rows
};

// Pieces of the above, exposed for tests and the converter.
Tokenizer tokenizer_from_gguf(const GgufFile& text);
void check_gguf_kind(const GgufFile& f, GgufPart expected);

// ---- writing ----

struct ConvertOptions {
  // Q8_0, Q4_0, F16, BF16, F32, or a K-quant mix named by its main type: Q2_K, Q3_K (Q3_K_M),
  // Q4_K and Q5_K (their _M mix, or _S with kquant_small), Q6_K.
  DType text_type = DType::Q8_0;
  bool kquant_small = false;       // Q4_K_S / Q5_K_S instead of Q4_K_M / Q5_K_M
  DType vision_type = DType::F16;  // F16, Q8_0, BF16 or F32
  std::string name;                // file name stem; default: the folder's name
};

struct ConvertResult {
  std::string text_path, mmproj_path;
  size_t text_tensors = 0, mmproj_tensors = 0;
};

// Converts a HF SmolVLM2 folder into a text GGUF and an mmproj GGUF in `out_dir`, named
// `<name>-<TYPE>.gguf` and `mmproj-<name>-<TYPE>.gguf`, with llama.cpp's names, metadata, tensor
// types and byte layout (its Q8_0 rounding included). `progress` sees the bytes written over both.
ConvertResult convert_hf_to_gguf(const std::string& hf_dir, const std::string& out_dir,
                                 const ConvertOptions& options,
                                 const GgufWriter::Progress& progress = nullptr);

}  // namespace smolvlm
