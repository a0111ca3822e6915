// `smolvlm ask` end to end, as a user runs it: the generated ids must be transformers' greedy ids.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "cli_runner.h"

namespace smolvlm {
namespace {

using test::run_cli;

const std::string kImages = test::tiny_model() + "/images/";

std::vector<int32_t> golden_greedy(const std::string& name, size_t n) {
  auto ids = test::parse_int_list(test::golden_json()["cases"][name]["greedy_new_ids"]);
  ids.resize(n);
  return ids;
}

nlohmann::json ask_json(std::vector<std::string> args) {
  std::vector<std::string> all = {"ask", "-m", test::tiny_model(), "-n", "12", "--json"};
  all.insert(all.end(), args.begin(), args.end());
  const test::CliResult r = run_cli(all);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  return nlohmann::json::parse(r.out);
}

TEST(CliAsk, TextOnlyMatchesGolden) {
  const auto j = ask_json({"-p", "What is the capital of France?"});
  EXPECT_EQ(j["tokens"].get<std::vector<int32_t>>(), golden_greedy("text_only", 12));
  EXPECT_EQ(j["prompt_tokens"], 15);
  EXPECT_EQ(j["tiles"], 0);
  for (const char* k : {"load_ms", "vision_ms", "prefill_ms", "decode_ms", "decode_tokens_per_s"}) {
    EXPECT_TRUE(j["timings"].contains(k)) << k;
  }
}

TEST(CliAsk, SplitImageMatchesGolden) {
  const auto j = ask_json({"-i", kImages + "img_b.png", "-p", "Describe the image."});
  EXPECT_EQ(j["tokens"].get<std::vector<int32_t>>(), golden_greedy("image_split", 12));
  EXPECT_EQ(j["tiles"], 13);
}

TEST(CliAsk, NoSplitMatchesGolden) {
  const auto j =
      ask_json({"--no-split", "-i", kImages + "img_a.png", "-p", "<image>Describe the image."});
  EXPECT_EQ(j["tokens"].get<std::vector<int32_t>>(), golden_greedy("image_nosplit", 12));
  EXPECT_EQ(j["tiles"], 1);
}

TEST(CliAsk, UnmarkedImagesGoBeforeTheText) {
  const auto j = ask_json({"-i", kImages + "img_a.png", "-i", kImages + "img_d.png", "-p",
                           "Compare these two images."});
  EXPECT_EQ(j["tokens"].get<std::vector<int32_t>>(), golden_greedy("two_images", 12));
  EXPECT_EQ(j["tiles"], 26);
}

TEST(CliAsk, MessagesFileMultiTurnMatchesGolden) {
  test::TempDir d;
  std::ofstream(d / "chat.json") << R"([
    {"role": "user", "content": [{"type": "image", "path": ")" +
                                        kImages + R"(img_a.png"},
                                 {"type": "text", "text": "Describe the image."}]},
    {"role": "assistant", "content": [{"type": "text", "text": "A red square on a blue field."}]},
    {"role": "user", "content": [{"type": "text", "text": "What color is the square?"}]}])";
  const auto j = ask_json({"--messages", d / "chat.json"});
  EXPECT_EQ(j["tokens"].get<std::vector<int32_t>>(), golden_greedy("multi_turn", 12));
}

TEST(CliAsk, StreamsPlainTextByDefault) {
  const auto r = run_cli(
      {"ask", "-m", test::tiny_model(), "-n", "24", "-p", "What is the capital of France?"});
  ASSERT_EQ(r.status, 0) << r.err;
  // The golden text decoded with special tokens dropped (24 ids contain two reserved specials).
  EXPECT_EQ(r.out.rfind(" blossom", 0), 0u) << r.out;
  EXPECT_EQ(r.out.find("<|reserved"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.back(), '\n');
}

TEST(CliAsk, SamplingIsSeededAndRepeatable) {
  const std::vector<std::string> args = {
      "--temp",           "0.8", "--top-k", "40", "--top-p", "0.9",
      "--repeat-penalty", "1.1", "--seed",  "7",  "-p",      "Hi"};
  const auto a = ask_json(args), b = ask_json(args);
  EXPECT_EQ(a["tokens"], b["tokens"]);
  EXPECT_EQ(a["tokens"].size(), 12u);
}

TEST(CliAsk, MaxTilesCapsTheGrid) {
  const auto j =
      ask_json({"--max-tiles", "4", "-i", kImages + "img_b.png", "-p", "Describe the image."});
  EXPECT_LE(j["tiles"].get<int>(), 5);  // at most 4 tiles + the global one
  EXPECT_GE(j["tiles"].get<int>(), 1);
}

// bf16 vision arithmetic (where the CPU has it; float32 elsewhere): the first answer token is
// still transformers' (bf16 moves the image features by ~1e-2, not the decision).
TEST(CliAsk, VisionPrecisionBf16KeepsTheFirstToken) {
  const auto j = ask_json(
      {"--vision-precision", "bf16", "-i", kImages + "img_b.png", "-p", "Describe the image."});
  const auto ids = j["tokens"].get<std::vector<int32_t>>();
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids[0], golden_greedy("image_split", 1)[0]);
}

// auto (the default) is accepted by name; anything else is a one-line error and exit status 1.
TEST(CliAsk, VisionPrecisionAutoAndUnknownValue) {
  const auto j = ask_json(
      {"--vision-precision", "auto", "-i", kImages + "img_b.png", "-p", "Describe the image."});
  ASSERT_FALSE(j["tokens"].empty());
  EXPECT_EQ(j["tokens"][0].get<int32_t>(), golden_greedy("image_split", 1)[0]);
  const auto r = run_cli({"ask", "-m", test::tiny_model(), "--vision-precision", "fp8", "-i",
                          kImages + "img_b.png", "-p", "Hi"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("unknown vision precision 'fp8' (auto, f32 or bf16)"), std::string::npos)
      << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(CliAsk, HelpExitsZero) {
  const auto r = run_cli({"ask", "--help"});
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("usage: smolvlm ask"), std::string::npos);
}

}  // namespace
}  // namespace smolvlm
