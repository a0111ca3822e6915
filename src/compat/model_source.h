// Where the seed-style "VisionModel LLMModel" pair points: one Hugging Face folder (given twice,
// or as the folder and a file in it), or separate vision (mmproj) and text model files.
#pragma once

#include <string>

namespace smolvlm::compat {

struct ModelSource {
  std::string model;   // what Engine::load takes
  std::string mmproj;  // the separate vision model file, or empty
};

// Throws smolvlm::Error with a one-line message when the pair cannot be used.
ModelSource model_source(const std::string& vision_model, const std::string& llm_model);

}  // namespace smolvlm::compat
