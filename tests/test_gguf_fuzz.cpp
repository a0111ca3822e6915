// Replays the fuzz seed corpus and every saved fuzz finding (fuzz/corpus, fuzz/regressions) through
// both parsers: each must parse or throw smolvlm::Error, nothing else (see fuzz/README.md).
#include <gtest/gtest.h>
#include <smolvlm/error.h>

#include <filesystem>

#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "test_support.h"

namespace smolvlm {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> fuzz_inputs() {
  std::vector<fs::path> out;
  const fs::path root = fs::path(test::fixtures()) / ".." / ".." / "fuzz";
  for (const char* dir : {"corpus", "regressions"}) {
    std::error_code ec;
    for (const auto& e : fs::recursive_directory_iterator(root / dir, ec)) {
      if (e.is_regular_file()) out.push_back(e.path());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(GgufFuzzCorpus, EveryInputParsesOrFailsCleanly) {
  const std::vector<fs::path> inputs = fuzz_inputs();
  ASSERT_GE(inputs.size(), 4u) << "the seed corpus is missing";
  for (const fs::path& p : inputs) {
    SCOPED_TRACE(p.string());
    const std::string bytes = read_text_file(p.string());
    // An exact-size heap copy, so the sanitizer build catches any read past the end.
    std::vector<uint8_t> buf(bytes.begin(), bytes.end());
    const uint8_t* data = buf.empty() ? nullptr : buf.data();
    size_t parsed = 0;
    try {
      for (const TensorView& t : parse_gguf(data, buf.size(), p.filename().string()).tensors) {
        ASSERT_TRUE(t.nbytes == 0 || (t.data >= data && t.data + t.nbytes <= data + buf.size()));
      }
      ++parsed;
    } catch (const Error&) {
    }
    try {
      for (const auto& [name, t] : parse_safetensors(data, buf.size(), p.filename().string())) {
        ASSERT_TRUE(t.nbytes == 0 || (t.data >= data && t.data + t.nbytes <= data + buf.size()));
      }
      ++parsed;
    } catch (const Error&) {
    }
    EXPECT_LE(parsed, 1u);  // no input is both a GGUF and a safetensors file
  }
}

}  // namespace
}  // namespace smolvlm
