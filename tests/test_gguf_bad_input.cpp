// Bad GGUF input through the CLI, one case each: a one-line error, exit status 1, never a crash
// (a crash shows as a signal; the sanitizer build's reports would make stderr longer than a line).
#include <gtest/gtest.h>

#include "cli_runner.h"
#include "gguf_test_support.h"

namespace smolvlm {
namespace {

using test::TempDir;

void expect_one_line_error(const test::CliResult& r, const std::string& must_contain) {
  EXPECT_EQ(r.status, 1) << r.err;
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "error is not one line: " << r.err;
  EXPECT_NE(r.err.find(must_contain), std::string::npos) << r.err;
  EXPECT_EQ(r.err.rfind("smolvlm: error: ", 0), 0u) << r.err;
}

test::CliResult ask(const std::string& text, const std::string& mmproj) {
  return test::run_cli({"ask", "-m", text, "--mmproj", mmproj, "-p", "Hi", "-n", "2"});
}

// The F16 mmproj with its bytes changed by `damage`, then run with the good text model.
test::CliResult ask_damaged_mmproj(const std::function<void(std::string&)>& damage) {
  TempDir dir;
  std::string bytes = test::read_bytes(test::mmproj_f16());
  damage(bytes);
  test::write_bytes(dir / "bad.gguf", bytes);
  return ask(test::text_bf16(), dir / "bad.gguf");
}

TEST(GgufBadInput, GoodPairRuns) {
  const test::CliResult r = ask(test::text_bf16(), test::mmproj_f16());
  EXPECT_EQ(r.status, 0) << r.err;
}

TEST(GgufBadInput, WrongMagic) {
  expect_one_line_error(ask_damaged_mmproj([](std::string& b) { b.replace(0, 4, "GGUX"); }),
                        "is not a GGUF file");
}

TEST(GgufBadInput, UnsupportedVersion) {
  expect_one_line_error(ask_damaged_mmproj([](std::string& b) { test::poke<uint32_t>(b, 4, 4); }),
                        "GGUF version 4, which is not supported");
}

TEST(GgufBadInput, TruncatedFile) {
  TempDir dir;  // cut inside the text model's token list
  test::write_bytes(dir / "t.gguf", test::read_bytes(test::text_bf16()).substr(0, 100000));
  expect_one_line_error(ask(dir / "t.gguf", test::mmproj_f16()), "is truncated");
}

TEST(GgufBadInput, TensorDataPastTheEnd) {
  expect_one_line_error(ask_damaged_mmproj([](std::string& b) { b.resize(b.size() - 1000); }),
                        "lies past the end");
}

TEST(GgufBadInput, OffsetBreaksAlignment) {
  expect_one_line_error(ask_damaged_mmproj([](std::string& b) {
                          const size_t at = test::tensor_type_pos(b, "v.post_ln.weight") + 4;
                          test::poke<uint64_t>(b, at, test::peek<uint64_t>(b, at) + 4);
                        }),
                        "is not a multiple of the alignment 32");
}

TEST(GgufBadInput, UnknownTensorType) {
  expect_one_line_error(ask_damaged_mmproj([](std::string& b) {
                          test::poke<uint32_t>(b, test::tensor_type_pos(b, "v.patch_embd.bias"),
                                               99);
                        }),
                        "unknown tensor type 99");
}

TEST(GgufBadInput, MissingRequiredKey) {
  TempDir dir;
  test::rewrite_gguf(
      test::mmproj_f16(), dir / "m.gguf",
      {[](auto& meta) { test::drop_meta(meta, "clip.vision.embedding_length"); }, nullptr});
  expect_one_line_error(ask(test::text_bf16(), dir / "m.gguf"),
                        "missing required key 'clip.vision.embedding_length'");
}

TEST(GgufBadInput, TextModelGivenAsMmproj) {
  expect_one_line_error(ask(test::text_bf16(), test::text_q8()),
                        "is a text model GGUF (architecture 'llama'), not a vision projector");
}

TEST(GgufBadInput, MmprojGivenAsTextModel) {
  expect_one_line_error(ask(test::mmproj_f16(), test::text_bf16()),
                        "is a vision projector (mmproj) GGUF, not a text model");
}

// A projector made for a wider text model (as the 500M's 960 against the 256M's 576).
TEST(GgufBadInput, MmprojWidthDoesNotMatchTextModel) {
  TempDir dir;
  test::rewrite_gguf(
      test::mmproj_f16(), dir / "wide.gguf",
      {[](auto& meta) { test::set_meta(meta, "clip.vision.projection_dim", GgufValue::u32(128)); },
       [](const TensorView& t, std::vector<int64_t>& shape) {
         if (t.name == "mm.model.fc.weight") shape[0] = 128;
         return true;
       }});
  expect_one_line_error(ask(test::text_bf16(), dir / "wide.gguf"),
                        "projects images to 128 features but the text model");
}

// More ways in: a tensor of the wrong shape, an extra tensor, a HF folder with --mmproj, a text
// GGUF without its projector.
TEST(GgufBadInput, WrongShapeExtraTensorAndMissingProjector) {
  TempDir dir;
  test::rewrite_gguf(test::mmproj_f16(), dir / "shape.gguf",
                     {nullptr, [](const TensorView& t, std::vector<int64_t>& shape) {
                        if (t.name == "v.blk.1.ffn_up.weight") shape[0] = 96;
                        return true;
                      }});
  expect_one_line_error(
      ask(test::text_bf16(), dir / "shape.gguf"),
      "tensor 'v.blk.1.ffn_up.weight' has dimensions {64, 96}, expected {64, 128}");
  test::rewrite_gguf(test::mmproj_f16(), dir / "less.gguf",
                     {nullptr, [](const TensorView& t, std::vector<int64_t>&) {
                        return t.name != "v.post_ln.bias";
                      }});
  expect_one_line_error(ask(test::text_bf16(), dir / "less.gguf"),
                        "lacks the tensor 'v.post_ln.bias'");
  expect_one_line_error(ask(test::tiny_model(), test::mmproj_f16()),
                        "--mmproj goes with a GGUF text model");
  expect_one_line_error(test::run_cli({"ask", "-m", test::text_bf16(), "-p", "Hi"}),
                        "give its vision projector with --mmproj");
}

}  // namespace
}  // namespace smolvlm
