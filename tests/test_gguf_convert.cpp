// `smolvlm convert` against llama.cpp's own converter, and `smolvlm ask` on GGUF pairs, run as a
// user runs them. The fixture folder was converted by llama.cpp from a folder named "tiny", which
// sets general.name; the tests convert through a link of that name to compare whole files.
#include <gtest/gtest.h>

#include <filesystem>

#include "cli_runner.h"
#include "gguf_test_support.h"

namespace smolvlm {
namespace {

namespace fs = std::filesystem;
using test::run_cli;
using test::TempDir;

// Compares one of our files with llama.cpp's: metadata (every difference listed), tensor names,
// types and shapes in order, tensor bytes, and finally the whole file.
void expect_same_as_llama_cpp(const std::string& ours_path, const std::string& theirs_path) {
  SCOPED_TRACE(ours_path + " vs " + theirs_path);
  const GgufFile ours(ours_path), theirs(theirs_path);
  const std::vector<std::string> diff = test::metadata_diff(ours, theirs);
  for (const std::string& d : diff) std::printf("  metadata difference: %s\n", d.c_str());
  EXPECT_TRUE(diff.empty());
  ASSERT_EQ(ours.tensors().size(), theirs.tensors().size());
  size_t differing_bytes = 0, total = 0;
  for (size_t i = 0; i < ours.tensors().size(); ++i) {
    const TensorView &a = ours.tensors()[i], &b = theirs.tensors()[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.dtype, b.dtype) << a.name;
    EXPECT_EQ(a.shape, b.shape) << a.name;
    if (a.nbytes != b.nbytes) {
      ADD_FAILURE() << a.name << ": " << a.nbytes << " bytes vs " << b.nbytes;
      continue;
    }
    for (size_t k = 0; k < a.nbytes; ++k) differing_bytes += a.data[k] != b.data[k];
    total += a.nbytes;
  }
  const bool identical = test::read_bytes(ours_path) == test::read_bytes(theirs_path);
  std::printf(
      "  %s: %zu tensors, %zu data bytes, %zu differ; %zu metadata differences; whole file %s\n",
      fs::path(ours_path).filename().c_str(), ours.tensors().size(), total, differing_bytes,
      diff.size(), identical ? "byte-identical" : "DIFFERS");
  EXPECT_EQ(differing_bytes, 0u);
  EXPECT_TRUE(identical);
}

struct Converted {
  TempDir dir;
  std::string out() const { return dir / "out"; }
  test::CliResult result;
  Converted(const std::string& link_name, const std::vector<std::string>& flags) {
    fs::create_directory_symlink(fs::absolute(test::tiny_model()), dir / link_name);
    std::vector<std::string> args = {"convert", dir / link_name, "-o", out()};
    args.insert(args.end(), flags.begin(), flags.end());
    result = run_cli(args);
  }
};

TEST(Convert, Q8_0PairIsByteIdenticalToLlamaCpps) {
  const Converted c("tiny", {"--type", "q8_0", "--vision-type", "q8_0"});
  ASSERT_EQ(c.result.status, 0) << c.result.err;
  EXPECT_NE(c.result.err.find("100%"), std::string::npos) << "progress bar: " << c.result.err;
  EXPECT_NE(c.result.out.find("tiny-Q8_0.gguf"), std::string::npos) << c.result.out;
  expect_same_as_llama_cpp(c.out() + "/tiny-Q8_0.gguf", test::text_q8());
  expect_same_as_llama_cpp(c.out() + "/mmproj-tiny-Q8_0.gguf", test::mmproj_q8());
}

TEST(Convert, Bf16F16F32MatchLlamaCpps) {
  const Converted a("tiny", {"--type", "bf16", "--vision-type", "f16"});
  ASSERT_EQ(a.result.status, 0) << a.result.err;
  expect_same_as_llama_cpp(a.out() + "/tiny-BF16.gguf", test::text_bf16());
  expect_same_as_llama_cpp(a.out() + "/mmproj-tiny-F16.gguf", test::mmproj_f16());
  const Converted b("tiny", {"--vision-type", "f32"});
  ASSERT_EQ(b.result.status, 0) << b.result.err;
  expect_same_as_llama_cpp(b.out() + "/mmproj-tiny-F32.gguf", test::mmproj_f32());
}

nlohmann::json ask_json(std::vector<std::string> model_args, std::vector<std::string> args) {
  std::vector<std::string> all = {"ask"};
  all.insert(all.end(), model_args.begin(), model_args.end());
  for (const char* a : {"-n", "12", "--json"}) all.push_back(a);
  all.insert(all.end(), args.begin(), args.end());
  const test::CliResult r = run_cli(all);
  EXPECT_EQ(r.status, 0) << r.err;
  return r.status == 0 ? nlohmann::json::parse(r.out) : nlohmann::json::object();
}

std::vector<int32_t> golden_greedy(const std::string& name, size_t n) {
  auto ids = test::parse_int_list(test::golden_json()["cases"][name]["greedy_new_ids"]);
  ids.resize(n);
  return ids;
}

// The GGUF pair alone (no HF folder) runs the whole pipeline: tokenizer, chat template, pictures.
TEST(GgufCli, Bf16PairMatchesGolden) {
  const std::vector<std::string> pair = {"-m", test::text_bf16(), "--mmproj", test::mmproj_f32()};
  EXPECT_EQ(ask_json(pair, {"-p", "What is the capital of France?"})["tokens"],
            golden_greedy("text_only", 12));
  const auto& c = test::golden_json()["cases"]["image_split"]["messages"][0]["content"];
  EXPECT_EQ(ask_json(pair, {"-i", test::tiny_model() + "/images/img_b.png", "-p",
                            c[1]["text"].get<std::string>()})["tokens"],
            golden_greedy("image_split", 12));
}

// Default names and types, then the folder form (-m OUT_DIR) and the text file with its mmproj
// found beside it: both give what llama.cpp's Q8_0 + F16 pair gives.
TEST(Convert, DefaultsAndTheFolderForm) {
  TempDir dir;
  const test::CliResult r = run_cli({"convert", test::tiny_model(), "-o", dir.path()});
  ASSERT_EQ(r.status, 0) << r.err;
  const std::string text = dir / "tiny-smolvlm2-Q8_0.gguf",
                    mmproj = dir / "mmproj-tiny-smolvlm2-F16.gguf";
  ASSERT_TRUE(fs::exists(text) && fs::exists(mmproj)) << r.out;
  EXPECT_EQ(GgufFile(text).get_string("general.name"), "Tiny Smolvlm2");
  const std::vector<std::string> q = {"-p", "Describe.", "-i",
                                      test::tiny_model() + "/images/img_a.png"};
  const auto want = ask_json({"-m", test::text_q8(), "--mmproj", test::mmproj_f16()}, q)["tokens"];
  EXPECT_EQ(ask_json({"-m", dir.path()}, q)["tokens"], want);
  EXPECT_EQ(ask_json({"-m", text}, q)["tokens"], want);
}

// general.name / basename / finetune / size_label follow gguf-py's heuristics on the folder name;
// for this 10M-parameter model the "256M" in the name is too far off to be a size label.
TEST(Convert, NamesLikeLlamaCpp) {
  const Converted c("SmolVLM2-256M-Video-Instruct", {});
  ASSERT_EQ(c.result.status, 0) << c.result.err;
  const GgufFile text(c.out() + "/SmolVLM2-256M-Video-Instruct-Q8_0.gguf");
  EXPECT_EQ(text.get_string("general.name"), "SmolVLM2 256M Video Instruct");
  EXPECT_EQ(text.get_string("general.basename"), "SmolVLM2");
  EXPECT_EQ(text.get_string("general.finetune"), "256m-Video-Instruct");
  EXPECT_EQ(text.get_string("general.size_label"), "10M");
  const GgufFile mm(c.out() + "/mmproj-SmolVLM2-256M-Video-Instruct-F16.gguf");
  EXPECT_EQ(mm.get_string("general.size_label"), "182K");
  EXPECT_EQ(mm.get_string("general.type"), "mmproj");
}

TEST(Convert, BadCommandLines) {
  TempDir dir;
  EXPECT_EQ(run_cli({"convert", test::tiny_model()}).status, 2);  // no -o
  EXPECT_EQ(run_cli({"convert", test::tiny_model(), "-o", dir.path(), "--type", "q4_k"}).status, 2);
  EXPECT_EQ(run_cli({"convert", "-o", dir.path()}).status, 2);
  const test::CliResult r = run_cli({"convert", "/nonexistent/model", "-o", dir.path()});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
  EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.err;
  EXPECT_EQ(run_cli({"convert", "--help"}).status, 0);
}

}  // namespace
}  // namespace smolvlm
