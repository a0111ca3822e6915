// Helpers shared by the tests: fixture paths, the golden reference files, comparisons.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "formats/mapped_file.h"
#include "formats/safetensors.h"
#include "kernels/compute.h"

namespace smolvlm::test {

inline std::string fixtures() { return SMOLVLM_FIXTURES_DIR; }
// The compute context the golden suites run the networks on (default threads and kernel path).
inline const kernels::Compute& test_compute() {
  static const kernels::Compute cx;
  return cx;
}
inline std::string tiny_model() { return fixtures() + "/tiny-smolvlm2"; }

// The eight cases of tiny-smolvlm2/golden.json.
inline const std::vector<std::string> kGoldenCases = {"text_only",  "image_nosplit", "image_split",
                                                      "image_tall", "image_small",   "multi_turn",
                                                      "two_images", "video"};

inline const nlohmann::json& golden_json() {
  static const nlohmann::json j =
      nlohmann::json::parse(read_text_file(tiny_model() + "/golden.json"));
  return j;
}

inline const SafetensorsFile& golden_tensors() {
  static const SafetensorsFile f(tiny_model() + "/golden.safetensors");
  return f;
}

inline std::vector<float> golden(const std::string& name) {
  return to_f32(golden_tensors().get(name));
}

// golden.json stores lists as Python reprs ("[1, 2, 3]"); JSON-compatible for int lists.
inline std::vector<int32_t> parse_int_list(const nlohmann::json& v) {
  if (v.is_array()) return v.get<std::vector<int32_t>>();
  return nlohmann::json::parse(v.get<std::string>()).get<std::vector<int32_t>>();
}

inline double max_abs_diff(const float* a, const float* b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, static_cast<double>(std::fabs(a[i] - b[i])));
  return m;
}
inline double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() ? max_abs_diff(a.data(), b.data(), a.size()) : INFINITY;
}
// Cosine similarity, summed in double (the reduced-precision paths are checked with it).
inline double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return 0.0;
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

// A fresh temporary folder, removed when the object dies.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "smolvlm-test-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace smolvlm::test
