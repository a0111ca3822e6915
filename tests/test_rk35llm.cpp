// The seed-compatible RK35llm class and VLM_NPU: programs of the seed's shape run unchanged, and
// the class keeps the seed's semantics (picture where <image> is, history, silence, <clear>).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <smolvlm/RK35llm.h>
#include <smolvlm/smolvlm.h>
#include <unistd.h>

#include "cli_runner.h"

namespace smolvlm {
namespace {

using test::run_cli;
using Ms = test::CliProcess::Ms;

const std::string kImages = test::tiny_model() + "/images/";

// The golden greedy answer of transformers for img_b + "Describe the image." begins so.
const std::string kGoldenStart = " surreal bic silic";

template <typename F>
std::string capture_stdout(F&& f) {
  test::TempDir d;
  std::fflush(stdout);
  const int saved = dup(1);
  const int fd = open((d / "out").c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0600);
  dup2(fd, 1);
  f();
  std::fflush(stdout);
  dup2(saved, 1);
  close(saved);
  close(fd);
  return read_text_file(d / "out");
}

size_t count(const std::string& s, const std::string& needle) {
  size_t n = 0;
  for (size_t p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) ++n;
  return n;
}

void expect_seed_session(const std::string& program) {
  const auto m = test::tiny_model();
  const auto r = run_cli({kImages + "img_b.png", m, m, "12"},
                         "<image>Describe the image.\n<clear>\nexit\n", {}, Ms(120000), program);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("model " + m), std::string::npos) << r.out;  // SetInfo(true)
  EXPECT_NE(r.out.find("User: " + kGoldenStart), std::string::npos) << r.out;
  EXPECT_EQ(count(r.out, "User: "), 3u) << r.out;
  EXPECT_NE(r.out.find("image 13 tiles, encoded"), std::string::npos) << r.out;
  EXPECT_EQ(r.err, "");

  // End of input without "exit" ends the program instead of looping on empty questions.
  const auto eof = run_cli({kImages + "img_b.png", m, m, "4"}, "Hello\n", {}, Ms(120000), program);
  EXPECT_EQ(eof.status, 0) << eof.err;
  EXPECT_EQ(count(eof.out, "User: "), 2u) << eof.out;

  const auto usage = run_cli({}, "", {}, Ms(60000), program);
  EXPECT_EQ(usage.status, 255);
  EXPECT_NE(usage.err.find("Usage: "), std::string::npos);
}

TEST(Rk35Seed, ProgramOfTheSeedShapeRunsUnchangedWithOpenCv) {
#ifdef SMOLVLM_SEED_MAIN_PATH
  expect_seed_session(SMOLVLM_SEED_MAIN_PATH);
#else
  GTEST_SKIP() << "OpenCV not found at configure time: the cv::Mat program is not built";
#endif
}

TEST(Rk35Seed, ProgramOfTheSeedShapeRunsWithoutOpenCv) {
  expect_seed_session(SMOLVLM_SEED_MAIN_NO_OPENCV_PATH);
}

TEST(Rk35VlmNpu, SessionUsageAndErrors) {
  const auto m = test::tiny_model();
  auto r = run_cli({kImages + "img_b.png", m, m, "12", "4096"},
                   "<image>Describe the image.\nexit\n", {}, Ms(120000), SMOLVLM_VLM_NPU_PATH);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("User: " + kGoldenStart), std::string::npos) << r.out;

  r = run_cli({}, "", {}, Ms(60000), SMOLVLM_VLM_NPU_PATH);
  EXPECT_EQ(r.status, 2);  // a usage error, as every other one
  EXPECT_NE(r.err.find("Usage: "), std::string::npos);
  EXPECT_NE(r.err.find("Picture VisionModel LLMModel [NewTokens] [ContextLength]"),
            std::string::npos);

  r = run_cli({kImages + "missing.png", m, m}, "", {}, Ms(60000), SMOLVLM_VLM_NPU_PATH);
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(count(r.err, "\n"), 1u) << r.err;
  EXPECT_NE(r.err.find("cannot open image"), std::string::npos) << r.err;

  r = run_cli({kImages + "img_a.png", m + "/nope", m + "/nope"}, "", {}, Ms(60000),
              SMOLVLM_VLM_NPU_PATH);
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(count(r.err, "\n"), 1u) << r.err;

  r = run_cli({kImages + "img_a.png", m, m, "lots"}, "", {}, Ms(60000), SMOLVLM_VLM_NPU_PATH);
  EXPECT_EQ(r.status, 2);
}

class Rk35llmClass : public ::testing::Test {
 protected:
  void SetUp() override {
    model_.SetSilence(true);
    ASSERT_TRUE(model_.LoadModel(test::tiny_model(), test::tiny_model(), 12, 4096));
  }
  RK35llm model_;
};

TEST_F(Rk35llmClass, FollowsTheChatApiWithThePictureOnlyWhereAsked) {
  ASSERT_TRUE(model_.LoadImage(kImages + "img_b.png"));
  const std::string a1 = model_.Ask("Hello");
  const std::string a2 = model_.Ask("<image>Describe the image.");

  auto engine = Engine::load(test::tiny_model());
  ChatOptions o;
  o.image_first = false;
  Chat chat = engine->chat(o);
  chat.set_image_file(kImages + "img_b.png");
  GenerationOptions g;
  g.max_new_tokens = 12;
  EXPECT_EQ(a1, chat.ask("Hello", g).text);
  const Result r2 = chat.ask("<image>Describe the image.", g);
  EXPECT_EQ(a2, r2.text);
  EXPECT_EQ(r2.metrics.image_tiles, 13);
  EXPECT_NE(a1, a2);
}

TEST_F(Rk35llmClass, HistoryClearAndSilence) {
  ASSERT_TRUE(model_.LoadImage(kImages + "img_b.png"));
  const std::string first = model_.Ask("<image>Describe the image.");
  EXPECT_EQ(first.rfind(kGoldenStart, 0), 0u) << first;
  const std::string second = model_.Ask("<image>Describe the image.");
  EXPECT_NE(second, first);  // the dialogue is remembered, so the prompt differs
  EXPECT_EQ(model_.Ask("<clear>"), "");
  EXPECT_EQ(model_.Ask("<image>Describe the image."), first);

  model_.SetHistory(false);
  EXPECT_EQ(model_.Ask("<image>Describe the image."), first);
  EXPECT_EQ(model_.Ask("<image>Describe the image."), first);

  // Silent: nothing printed. Not silent: the printed text is the returned answer.
  std::string answer;
  EXPECT_EQ(capture_stdout([&] { answer = model_.Ask("Hi"); }), "");
  EXPECT_FALSE(answer.empty());
  model_.SetSilence(false);
  const std::string printed = capture_stdout([&] { answer = model_.Ask("Hi"); });
  EXPECT_EQ(printed, answer);
}

TEST_F(Rk35llmClass, FailuresReturnFalseOrEmpty) {
  EXPECT_FALSE(model_.LoadImage(kImages + "missing.png"));
  EXPECT_EQ(model_.Ask("<image>What is it?"), "");  // no picture loaded
  RK35llm other;
  EXPECT_EQ(other.Ask("Hi"), "");
  EXPECT_FALSE(other.LoadImage(kImages + "img_a.png"));
  EXPECT_FALSE(other.LoadModel(test::tiny_model() + "/nope", test::tiny_model() + "/nope"));
  EXPECT_FALSE(other.LoadModel(test::tiny_model(), test::fixtures() + "/images"));
  EXPECT_FALSE(other.LoadModel(test::tiny_model(), test::tiny_model(), 0));
  // The folder named twice, or through a file inside it.
  EXPECT_TRUE(other.LoadModel(test::tiny_model() + "/config.json", test::tiny_model(), 4, 512));
}

#ifndef SMOLVLM_RK35LLM_NO_OPENCV
TEST_F(Rk35llmClass, CvMatPicturesAreCopiedAndMatchTheFileDecoder) {
  cv::Mat bgr = cv::imread(kImages + "img_b.png");
  ASSERT_FALSE(bgr.empty());
  const cv::Mat before = bgr.clone();
  ASSERT_TRUE(model_.LoadImage(bgr));
  EXPECT_EQ(cv::norm(bgr, before, cv::NORM_INF), 0.0);  // the caller's picture is untouched
  EXPECT_EQ(model_.Ask("<image>Describe the image.").rfind(kGoldenStart, 0), 0u);

  // A region of interest (rows with a stride) and grey / BGRA pictures are taken too.
  cv::Mat big(bgr.rows + 10, bgr.cols + 20, CV_8UC3, cv::Scalar(1, 2, 3));
  bgr.copyTo(big(cv::Rect(5, 5, bgr.cols, bgr.rows)));
  model_.SetHistory(false);
  ASSERT_TRUE(model_.LoadImage(big(cv::Rect(5, 5, bgr.cols, bgr.rows))));
  EXPECT_EQ(model_.Ask("<image>Describe the image.").rfind(kGoldenStart, 0), 0u);
  cv::Mat grey, bgra;
  cv::cvtColor(bgr, grey, cv::COLOR_BGR2GRAY);
  cv::cvtColor(bgr, bgra, cv::COLOR_BGR2BGRA);
  EXPECT_TRUE(model_.LoadImage(grey));
  EXPECT_TRUE(model_.LoadImage(bgra));
  EXPECT_EQ(model_.Ask("<image>Describe the image.").rfind(kGoldenStart, 0), 0u);  // opaque BGRA
  EXPECT_FALSE(model_.LoadImage(cv::Mat()));
  EXPECT_FALSE(model_.LoadImage(cv::Mat(4, 4, CV_32FC3)));
}
#endif

}  // namespace
}  // namespace smolvlm
