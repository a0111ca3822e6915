#include "compat/model_source.h"

#include <smolvlm/error.h>

#include <filesystem>

namespace smolvlm::compat {

ModelSource model_source(const std::string& vision_model, const std::string& llm_model) {
  namespace fs = std::filesystem;
  std::error_code ec;
  auto folder_of = [&](const std::string& p) -> std::string {
    if (fs::is_directory(p, ec)) return p;
    if (fs::is_regular_file(p, ec)) return fs::path(p).parent_path().string();
    throw Error("cannot find the model '" + p + "'");
  };
  // A llama.cpp text GGUF with its vision projector GGUF (the pair the seed's two models map to).
  const auto is_gguf = [](const std::string& p) { return fs::path(p).extension() == ".gguf"; };
  if (is_gguf(llm_model) && fs::is_regular_file(llm_model, ec)) {
    if (!fs::exists(vision_model, ec)) throw Error("cannot find the model '" + vision_model + "'");
    const bool same = fs::equivalent(vision_model, llm_model, ec);
    return {llm_model, same || fs::is_directory(vision_model, ec) ? std::string() : vision_model};
  }
  // A Hugging Face folder holds both halves: accept it twice, or a file inside it.
  const std::string vision_dir = folder_of(vision_model), llm_dir = folder_of(llm_model);
  if (!fs::equivalent(vision_dir.empty() ? "." : vision_dir, llm_dir.empty() ? "." : llm_dir, ec)) {
    throw Error("'" + vision_model + "' and '" + llm_model +
                "' are different models; give the same SmolVLM2 folder twice, or a text GGUF "
                "and its mmproj GGUF");
  }
  return {llm_dir.empty() ? "." : llm_dir, {}};
}

}  // namespace smolvlm::compat
