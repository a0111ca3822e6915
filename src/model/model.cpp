#include "model/model.h"

#include <filesystem>
#include <smolvlm/error.h>

#include "formats/safetensors.h"

namespace smolvlm {

Model::Model(ModelConfig cfg, Tokenizer tok, ModelWeights w)
    : config(std::move(cfg)),
      tokenizer(std::move(tok)),
      weights(std::move(w)),
      vision(config, weights.vision),
      decoder(config.text, weights.text),
      eos_id_(tokenizer.token_id("<end_of_utterance>")) {}

std::unique_ptr<Model> Model::load_hf(const std::string& dir) {
  ModelConfig cfg = load_hf_config(dir);
  const std::string tok_path = (std::filesystem::path(dir) / "tokenizer.json").string();
  Tokenizer tok = Tokenizer::from_hf_json_file(tok_path);
  if (static_cast<int>(tok.vocab_size()) > cfg.text.vocab) {
    throw Error("tokenizer has " + std::to_string(tok.vocab_size()) +
                " tokens but the model's vocabulary is " + std::to_string(cfg.text.vocab));
  }
  for (const char* needed : {"<image>", "<fake_token_around_image>", "<global-img>", "<end_of_utterance>"}) {
    if (!tok.find_token(needed)) throw Error(tok_path + " lacks the token " + needed);
  }
  if (tok.token_id("<image>") != cfg.image_token_id) {
    throw Error("config image_token_id " + std::to_string(cfg.image_token_id) +
                " does not match the tokenizer's <image> id");
  }
  auto store = std::make_shared<const TensorStore>(TensorStore::open_hf_folder(dir));
  ModelWeights w = load_hf_weights(cfg, [&](const std::string& name) { return store->find(name); });
  w.storage.push_back(store);  // the weights are views into its mapped files
  return std::unique_ptr<Model>(new Model(std::move(cfg), std::move(tok), std::move(w)));
}

}  // namespace smolvlm
