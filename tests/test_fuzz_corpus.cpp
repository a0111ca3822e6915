// Replays the fuzz seed corpus and every saved fuzz finding (fuzz/corpus/<target>,
// fuzz/regressions/<target>) through what that target fuzzes: the model-file inputs through both
// parsers, the others through theirs. Each must parse or throw smolvlm::Error, nothing else (see
// fuzz/README.md), so every finding stays fixed even where clang is not installed.
#include <gtest/gtest.h>
#include <smolvlm/error.h>

#include <filesystem>

#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "messages.h"
#include "model/config.h"
#include "test_support.h"
#include "text/tokenizer.h"
#include "vision/image.h"

#if SMOLVLM_HAVE_VIDEO
#include "video/libav.h"
#include "video/video.h"
#endif

namespace smolvlm {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> fuzz_inputs(std::initializer_list<const char*> targets) {
  std::vector<fs::path> out;
  const fs::path root = fs::path(test::fixtures()) / ".." / ".." / "fuzz";
  for (const char* dir : {"corpus", "regressions"}) {
    for (const char* target : targets) {
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(root / dir / target, ec)) {
        if (e.is_regular_file()) out.push_back(e.path());
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Runs `parse` on every input of the targets; returns how many parsed (the rest threw Error).
template <typename Parse>
int replay(std::initializer_list<const char*> targets, size_t at_least, Parse parse) {
  const std::vector<fs::path> inputs = fuzz_inputs(targets);
  EXPECT_GE(inputs.size(), at_least) << "the seed corpus is missing";
  int parsed = 0;
  for (const fs::path& p : inputs) {
    SCOPED_TRACE(p.string());
    const std::string bytes = read_text_file(p.string());
    try {
      parse(bytes);
      ++parsed;
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    }
  }
  return parsed;
}

TEST(GgufFuzzCorpus, EveryInputParsesOrFailsCleanly) {
  const std::vector<fs::path> inputs = fuzz_inputs({"gguf", "safetensors"});
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

TEST(FuzzCorpus, ConfigInputsParseOrFailCleanly) {
  const int parsed = replay({"config"}, 2, [](const std::string& text) {
    (void)parse_hf_config({"fuzz/config.json", text}, nullptr, nullptr, "fuzz");
  });
  EXPECT_GE(parsed, 2);  // the seeds are valid configs
}

TEST(FuzzCorpus, TokenizerInputsLoadOrFailCleanly) {
  const int parsed = replay({"tokenizer"}, 2, [](const std::string& text) {
    const Tokenizer tok = Tokenizer::from_hf_json(text, "fuzz/tokenizer.json");
    for (int32_t id : tok.encode("Hello 123 world")) {
      ASSERT_GE(id, 0);
      ASSERT_LT(static_cast<size_t>(id), tok.vocab_size());
    }
  });
  EXPECT_GE(parsed, 2);
}

TEST(FuzzCorpus, MessagesInputsParseOrFailCleanly) {
  const int parsed = replay({"messages"}, 2, [](const std::string& text) {
    const Conversation conv = cli::parse_messages(text, "fuzz/messages.json");
    ASSERT_FALSE(conv.empty());
    EXPECT_EQ(conv.back().role, "user");
  });
  EXPECT_GE(parsed, 2);
}

TEST(FuzzCorpus, PictureInputsDecodeOrFailCleanly) {
  const int parsed = replay({"jpeg", "png", "pictures"}, 8, [](const std::string& bytes) {
    // An exact-size heap copy, so the sanitizer build catches any read past the end.
    const std::vector<uint8_t> buf(bytes.begin(), bytes.end());
    const Image im = decode_image(buf.data(), buf.size(), "fuzz");
    ASSERT_EQ(im.rgb.size(), static_cast<size_t>(im.width) * static_cast<size_t>(im.height) * 3);
  });
  EXPECT_GE(parsed, 8);  // the fixture pictures among the seeds
}

#if SMOLVLM_HAVE_VIDEO
TEST(FuzzCorpus, VideoInputsDecodeOrFailCleanly) {
  av::set_guard_pages(true);  // as the fuzz target runs: a write past libswscale's buffer faults
  const int parsed = replay({"video"}, 8, [](const std::string& bytes) {
    const std::vector<uint8_t> buf(bytes.begin(), bytes.end());
    VideoReader reader("fuzz", buf.data(), buf.size());
    std::vector<int> all;
    for (int i = 0; i < reader.info().total_frames && i < 8; ++i) all.push_back(i);
    int frames = 0;
    reader.read_frames(all, [&](int, Image&& f) {
      ++frames;
      ASSERT_EQ(f.rgb.size(), static_cast<size_t>(f.width) * static_cast<size_t>(f.height) * 3);
    });
    EXPECT_GT(frames, 0);
  });
  av::set_guard_pages(false);
  EXPECT_GE(parsed, 8);  // every seed is a clip that decodes
}
#endif

}  // namespace
}  // namespace smolvlm
