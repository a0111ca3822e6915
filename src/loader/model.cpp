#include "loader/model.h"

#include <smolvlm/error.h>

#include <algorithm>
#include <filesystem>

#include "formats/gguf.h"
#include "formats/mapped_file.h"
#include "formats/safetensors.h"
#include "kernels/q4k_panels.h"
#include "loader/decode_panel_cache.h"
#include "loader/gguf_model.h"

namespace smolvlm {

namespace {

// The tokens the prompt format needs, and the config's <image> id, against the tokenizer.
void check_tokens(const Tokenizer& tok, const ModelConfig& cfg, const std::string& source) {
  if (static_cast<int>(tok.vocab_size()) > cfg.text.vocab) {
    throw Error(source + " has " + std::to_string(tok.vocab_size()) +
                " tokens but the model's vocabulary is " + std::to_string(cfg.text.vocab));
  }
  for (const char* needed :
       {"<image>", "<fake_token_around_image>", "<global-img>", "<end_of_utterance>"}) {
    if (!tok.find_token(needed)) throw Error(source + " lacks the token " + needed);
  }
  if (tok.token_id("<image>") != cfg.image_token_id) {
    throw Error("config image_token_id " + std::to_string(cfg.image_token_id) +
                " does not match the <image> id of " + source);
  }
}

}  // namespace

Model::Model(ModelConfig cfg, Tokenizer tok, ModelWeights w, VisionPrecision vision_precision)
    : config(std::move(cfg)),
      tokenizer(std::move(tok)),
      weights(std::move(w)),
      vision(config, weights.vision, vision_precision),
      decoder(config.text, weights.text),
      eos_id_(tokenizer.token_id("<end_of_utterance>")) {}

namespace {

void drop_pages(const kernels::Matrix& m) {
  if (m.data && m.rows > 0) drop_mapped_pages(m.data, static_cast<size_t>(m.rows) * m.row_stride());
  // Decode panels in their cache file (loader/decode_panel_cache.h) go too; the embedding shares
  // its tied head's, dropped twice: harmless.
  if (m.panels) drop_mapped_pages(m.panels, kernels::decode_panel_bytes(m));
}

void drop_vision_pages(const VisionWeights& v) {
  drop_pages(v.patch.w);
  drop_pages(v.connector.w);
  for (const VisionLayerWeights& l : v.layers) {
    for (const Linear* p : {&l.q, &l.k, &l.v, &l.o, &l.fc1, &l.fc2}) drop_pages(p->w);
  }
}

void drop_text_pages(const TextWeights& t) {
  drop_pages(t.embed);
  drop_pages(t.lm_head.w);  // the same pages again when tied: harmless
  for (const TextLayerWeights& l : t.layers) {
    for (const Linear* p : l.linears()) drop_pages(p->w);
  }
}

}  // namespace

void Model::with_vision_resident(const std::function<void()>& encode) const {
  drop_text_pages(weights.text);
  encode();
  drop_vision_pages(weights.vision);
}

std::unique_ptr<Model> Model::load_hf(const std::string& dir, VisionPrecision vision_precision) {
  ModelConfig cfg = load_hf_config(dir);
  const std::string tok_path = (std::filesystem::path(dir) / "tokenizer.json").string();
  Tokenizer tok = Tokenizer::from_hf_json_file(tok_path);
  check_tokens(tok, cfg, "'" + tok_path + "'");
  auto store = std::make_shared<const TensorStore>(TensorStore::open_hf_folder(dir));
  ModelWeights w;
  try {
    w = load_hf_weights(cfg, [&](const std::string& name) { return store->find(name); });
  } catch (const Error& e) {
    throw Error("model folder '" + dir + "': " + e.what());  // which model lacks what
  }
  w.storage.push_back(store);  // the weights are views into its mapped files
  return std::unique_ptr<Model>(
      new Model(std::move(cfg), std::move(tok), std::move(w), vision_precision));
}

std::unique_ptr<Model> Model::load_gguf(const std::string& text_path,
                                        const std::string& mmproj_path,
                                        VisionPrecision vision_precision,
                                        const std::string& cache_dir) {
  auto files = std::make_shared<GgufModelFiles>(text_path, mmproj_path);
  ModelConfig cfg = files->config();
  Tokenizer tok = files->take_tokenizer();
  check_tokens(tok, cfg, "'" + text_path + "'");
  ModelWeights w;
  try {
    w = load_hf_weights(cfg, [&](const std::string& name) { return files->find(name); });
  } catch (const Error& e) {
    throw Error("'" + text_path + "' with '" + mmproj_path + "': " + e.what());
  }
  w.storage.push_back(files);  // the weights are views into its mapped files
  attach_decode_panels(w.text, text_path, cache_dir, w.storage);
  return std::unique_ptr<Model>(
      new Model(std::move(cfg), std::move(tok), std::move(w), vision_precision));
}

namespace {

// The .gguf files in a folder whose names say mmproj (or, with mmproj false, do not).
std::vector<std::string> gguf_files(const std::filesystem::path& dir, bool mmproj) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (e.path().extension() == ".gguf" && (name.find("mmproj") != std::string::npos) == mmproj) {
      out.push_back(e.path().string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::unique_ptr<Model> Model::load(const std::string& model_path, const std::string& mmproj_path,
                                   VisionPrecision vision_precision, const std::string& cache_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path p(model_path);
  if (fs::is_directory(p, ec)) {
    if (fs::exists(p / "config.json", ec) || gguf_files(p, false).empty()) {
      if (!mmproj_path.empty()) {
        throw Error("--mmproj goes with a GGUF text model, but '" + model_path +
                    "' is a Hugging Face model folder");
      }
      return load_hf(model_path, vision_precision);
    }
    const auto texts = gguf_files(p, false), projs = gguf_files(p, true);
    if (texts.size() != 1 || (mmproj_path.empty() && projs.size() != 1)) {
      throw Error("model folder '" + model_path + "' holds " + std::to_string(texts.size()) +
                  " text GGUF and " + std::to_string(projs.size()) +
                  " mmproj GGUF files; name them with -m TEXT.gguf --mmproj MMPROJ.gguf");
    }
    return load_gguf(texts[0], mmproj_path.empty() ? projs[0] : mmproj_path, vision_precision,
                     cache_dir);
  }
  if (!fs::exists(p, ec) || !is_gguf_file(model_path)) {
    if (fs::exists(p, ec)) {
      throw Error("'" + model_path + "' is neither a Hugging Face model folder nor a GGUF file");
    }
    if (p.extension() == ".gguf") throw Error("model file '" + model_path + "' does not exist");
    return load_hf(model_path, vision_precision);  // says the folder does not exist
  }
  if (!mmproj_path.empty()) return load_gguf(model_path, mmproj_path, vision_precision, cache_dir);
  const auto projs = gguf_files(p.has_parent_path() ? p.parent_path() : fs::path("."), true);
  if (projs.size() != 1) {
    throw Error("'" + model_path +
                "' is a GGUF text model: give its vision projector with "
                "--mmproj FILE (found " +
                std::to_string(projs.size()) + " *mmproj*.gguf beside it)");
  }
  return load_gguf(model_path, projs[0], vision_precision, cache_dir);
}

}  // namespace smolvlm
