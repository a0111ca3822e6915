// Each Engine owns its compute context (threads + kernel path): two Engines in one process run
// at the same time and give the answers each gives alone; two Chats of one Engine on two threads
// take turns on its pool and also answer as they do alone. Run under ThreadSanitizer in CI
// (scripts/run-tests.sh, the tsan build of these suites).
#include <gtest/gtest.h>
#include <smolvlm/smolvlm.h>

#include <string>
#include <thread>
#include <vector>

#include "kernels/kernel_path.h"
#include "test_support.h"

namespace smolvlm {
namespace {

const std::string kImages = test::tiny_model() + "/images/";

// One tile a picture: these suites also run under ThreadSanitizer, where a split picture's 13
// tiles would take minutes.
GenerationOptions greedy(int n) {
  GenerationOptions o;
  o.max_new_tokens = n;
  o.split_images = false;
  return o;
}

Conversation picture_question(const std::string& image, const std::string& text) {
  return {{"user", {Content::image_file(kImages + image), Content::text(text)}}};
}

struct Job {
  Conversation conversation;
  std::vector<int32_t> alone;  // the ids this job gives when nothing else runs
};

TEST(ComputeContext, TwoEnginesRunAtOnceAndAnswerAsAlone) {
  LoadOptions a_opts, b_opts;
  a_opts.threads = 2;
  b_opts.threads = 1;
  b_opts.kernels = "generic";  // a different path too: nothing global is left to share
  const auto a = Engine::load(test::tiny_model(), a_opts);
  const auto b = Engine::load(test::tiny_model(), b_opts);
  EXPECT_EQ(a->info().threads, 2);
  EXPECT_EQ(b->info().threads, 1);
  EXPECT_EQ(b->info().kernels, "generic");
  EXPECT_EQ(a->info().kernels, kernels::default_path().name);

  std::vector<Job> a_jobs = {{picture_question("img_a.png", "Describe the image."), {}},
                             {{{"user", {Content::text("What is the capital of France?")}}}, {}}};
  std::vector<Job> b_jobs = {{picture_question("img_b.png", "What colour is it?"), {}},
                             {picture_question("img_a.png", "Describe the image."), {}}};
  for (auto& j : a_jobs) j.alone = a->generate(j.conversation, greedy(10)).tokens;
  for (auto& j : b_jobs) j.alone = b->generate(j.conversation, greedy(10)).tokens;
  // Different paths and thread counts may round differently; the same job on both engines is
  // not compared. Each engine is compared with itself alone.

  constexpr int kRounds = 2;
  std::vector<std::vector<int32_t>> a_got, b_got;
  std::thread ta([&] {
    for (int r = 0; r < kRounds; ++r)
      for (const auto& j : a_jobs) a_got.push_back(a->generate(j.conversation, greedy(10)).tokens);
  });
  std::thread tb([&] {
    for (int r = 0; r < kRounds; ++r)
      for (const auto& j : b_jobs) b_got.push_back(b->generate(j.conversation, greedy(10)).tokens);
  });
  ta.join();
  tb.join();
  ASSERT_EQ(a_got.size(), a_jobs.size() * kRounds);
  ASSERT_EQ(b_got.size(), b_jobs.size() * kRounds);
  for (size_t i = 0; i < a_got.size(); ++i) EXPECT_EQ(a_got[i], a_jobs[i % a_jobs.size()].alone);
  for (size_t i = 0; i < b_got.size(); ++i) EXPECT_EQ(b_got[i], b_jobs[i % b_jobs.size()].alone);
}

TEST(ComputeContext, TwoChatsOfOneEngineOnTwoThreads) {
  LoadOptions o;
  o.threads = 2;
  const auto engine = Engine::load(test::tiny_model(), o);
  auto dialogue = [&](const std::string& image) {
    Chat chat = engine->chat();
    chat.set_image_file(kImages + image);
    std::vector<int32_t> ids = chat.ask("Describe the image.", greedy(10)).tokens;
    const std::vector<int32_t> more = chat.ask("And the colours?", greedy(10)).tokens;
    ids.insert(ids.end(), more.begin(), more.end());
    return ids;
  };
  const std::vector<int32_t> alone_a = dialogue("img_a.png"), alone_b = dialogue("img_b.png");
  std::vector<int32_t> got_a, got_b;
  std::thread ta([&] { got_a = dialogue("img_a.png"); });
  std::thread tb([&] { got_b = dialogue("img_b.png"); });
  ta.join();
  tb.join();
  EXPECT_EQ(got_a, alone_a);
  EXPECT_EQ(got_b, alone_b);
}

TEST(ComputeContext, UnknownKernelPathIsAOneLineError) {
  LoadOptions o;
  o.kernels = "no-such-path";
  try {
    Engine::load(test::tiny_model(), o);
    FAIL() << "loaded with an unknown kernel path";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no-such-path"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace smolvlm
