// The Scheduler (continuous batching, prefix reuse, picture-feature cache) must answer every
// request exactly as Engine::generate answers it alone, whatever else runs beside it.
#include <gtest/gtest.h>
#include <smolvlm/serving.h>
#include <smolvlm/smolvlm.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <iterator>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gguf_test_support.h"
#include "test_support.h"

namespace smolvlm {
namespace {

const std::string kImages = test::tiny_model() + "/images/";

Engine& engine() {
  static const std::unique_ptr<Engine> e = [] {
    LoadOptions o;
    o.threads = 2;
    return Engine::load(test::tiny_model(), o);
  }();
  return *e;
}

// One tile a picture: these suites also run under ThreadSanitizer (smolvlm_concurrency_tests),
// where a split picture's 13 tiles would take minutes. The split path is the same code.
GenerationOptions greedy(int n) {
  GenerationOptions o;
  o.max_new_tokens = n;
  o.split_images = false;
  return o;
}

std::string file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

Conversation ask_text(const std::string& text) { return {{"user", {Content::text(text)}}}; }
Conversation ask_picture(const std::string& image, const std::string& text) {
  return {{"user", {Content::image_bytes(file_bytes(kImages + image)), Content::text(text)}}};
}

TEST(Scheduler, OneRequestAnswersAsGenerate) {
  Scheduler scheduler(engine(), {.slots = 2});
  for (const Conversation& c : {ask_text("What is the capital of France?"),
                                ask_picture("img_a.png", "Describe the image.")}) {
    const Result want = engine().generate(c, greedy(20));
    std::string streamed;
    const Result got = scheduler.complete(c, greedy(20), [&](std::string_view p) {
      streamed += p;
      return true;
    });
    EXPECT_EQ(got.tokens, want.tokens);
    EXPECT_EQ(got.text, want.text);
    EXPECT_EQ(streamed, want.text);
    EXPECT_EQ(got.metrics.prompt_tokens, want.metrics.prompt_tokens);
    EXPECT_EQ(got.stopped_by_eos, want.stopped_by_eos);
  }
}

// Many clients at once, more than the slots: every answer equals its own reference, and decode
// steps carried several sequences at a time.
TEST(Scheduler, ConcurrentRequestsAnswerAsAloneAndShareDecodeSteps) {
  const std::vector<Conversation> jobs = {ask_text("What is the capital of France?"),
                                          ask_picture("img_a.png", "Describe the image."),
                                          ask_text("Tell me a story."),
                                          ask_picture("img_b.png", "What colour is it?"),
                                          ask_picture("img_a.png", "Any text in it?"),
                                          ask_text("Hi")};
  std::vector<std::vector<int32_t>> want;
  for (const auto& c : jobs) want.push_back(engine().generate(c, greedy(16)).tokens);

  Scheduler scheduler(engine(), {.slots = 4, .queue = 16});
  constexpr int kClients = 6;
  std::vector<std::vector<std::vector<int32_t>>> got(kClients);
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (size_t k = 0; k < jobs.size(); ++k) {
        const size_t j = (k + static_cast<size_t>(c)) % jobs.size();
        got[static_cast<size_t>(c)].push_back(scheduler.complete(jobs[j], greedy(16)).tokens);
      }
    });
  }
  for (auto& t : clients) t.join();
  for (int c = 0; c < kClients; ++c) {
    for (size_t k = 0; k < jobs.size(); ++k) {
      const size_t j = (k + static_cast<size_t>(c)) % jobs.size();
      EXPECT_EQ(got[static_cast<size_t>(c)][k], want[j]) << "client " << c << " job " << j;
    }
  }
  const SchedulerStats st = scheduler.stats();
  EXPECT_EQ(st.requests, kClients * static_cast<int64_t>(jobs.size()));
  EXPECT_EQ(st.busy_slots, 0);
  EXPECT_GT(st.decode_steps, 0);
  EXPECT_GT(static_cast<double>(st.decode_rows) / static_cast<double>(st.decode_steps), 1.5)
      << st.decode_rows << " rows in " << st.decode_steps << " steps";
  EXPECT_GT(st.media_cache_hits, 0);
}

// The same with w8a8 weights (Q8_0 text GGUF): batched rows take the multi-row integer GEMM,
// a lone request the single-row one; both must give the same greedy answers.
TEST(Scheduler, Q8WeightsAnswerAsAloneWhenBatched) {
  LoadOptions lo;
  lo.threads = 2;
  lo.mmproj = test::mmproj_f16();
  const auto q8 = Engine::load(test::text_q8(), lo);
  const std::vector<Conversation> jobs = {ask_text("What is the capital of France?"),
                                          ask_picture("img_a.png", "Describe the image."),
                                          ask_text("Tell me a story."), ask_text("Hi there")};
  std::vector<std::vector<int32_t>> want;
  for (const auto& c : jobs) want.push_back(q8->generate(c, greedy(16)).tokens);
  Scheduler scheduler(*q8, {.slots = 4});
  std::vector<std::vector<int32_t>> got(jobs.size());
  std::vector<std::thread> clients;
  for (size_t j = 0; j < jobs.size(); ++j)
    clients.emplace_back([&, j] { got[j] = scheduler.complete(jobs[j], greedy(16)).tokens; });
  for (auto& t : clients) t.join();
  for (size_t j = 0; j < jobs.size(); ++j) EXPECT_EQ(got[j], want[j]) << "job " << j;
}

// A follow-up resends the dialogue: the picture is not encoded again and only the new turn runs.
TEST(Scheduler, FollowUpReusesThePictureAndThePrefix) {
  Scheduler scheduler(engine(), {.slots = 2});
  Conversation c = ask_picture("img_b.png", "Describe the image.");
  const Result first = scheduler.complete(c, greedy(12));
  EXPECT_GT(first.metrics.vision_ms, 0);
  EXPECT_EQ(first.metrics.media_cache_hits, 0);
  c.push_back({"assistant", {Content::text(first.text)}});
  c.push_back({"user", {Content::text("And the colours?")}});
  const Result want = engine().generate(c, greedy(12));
  const Result second = scheduler.complete(c, greedy(12));
  EXPECT_EQ(second.tokens, want.tokens);
  EXPECT_EQ(second.metrics.media_cache_hits, 1);
  EXPECT_EQ(second.metrics.vision_ms, 0);
  EXPECT_GT(second.metrics.cached_tokens, first.metrics.prompt_tokens / 2)
      << "the slot's cache should hold the first turn";
}

// on_text blocks the worker until released: the tests below control what is in flight.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false, entered = false;
  void wait() {
    std::unique_lock l(mu);
    entered = true;
    cv.notify_all();
    cv.wait(l, [&] { return open; });
  }
  void wait_entered() {
    std::unique_lock l(mu);
    cv.wait(l, [&] { return entered; });
  }
  void release() {
    std::lock_guard l(mu);
    open = true;
    cv.notify_all();
  }
};

TEST(Scheduler, FullQueueIsBusyAndCancelFreesTheSlot) {
  Scheduler scheduler(engine(), {.slots = 1, .queue = 0});
  Gate gate;
  std::atomic<bool> cancel{false};
  GenerationOptions o = greedy(200);
  o.cancel = &cancel;
  Result held;
  std::thread first([&] {
    held = scheduler.complete(ask_text("Tell me a long story."), o, [&](std::string_view) {
      gate.wait();
      return true;
    });
  });
  gate.wait_entered();
  EXPECT_EQ(scheduler.stats().busy_slots, 1);
  EXPECT_THROW(scheduler.complete(ask_text("Hi"), greedy(4)), BusyError);
  cancel = true;
  gate.release();
  first.join();
  EXPECT_TRUE(held.cancelled);
  EXPECT_LE(held.tokens.size(), 2u);
  EXPECT_EQ(scheduler.stats().busy_slots, 0);
  EXPECT_EQ(scheduler.complete(ask_text("Hi"), greedy(4)).tokens,
            engine().generate(ask_text("Hi"), greedy(4)).tokens);
}

TEST(Scheduler, StreamingCallbackFalseStopsWithinAStep) {
  Scheduler scheduler(engine(), {.slots = 2});
  int pieces = 0;
  const Result r = scheduler.complete(ask_text("Tell me a story."), greedy(50),
                                      [&](std::string_view) { return ++pieces < 3; });
  EXPECT_TRUE(r.cancelled);
  EXPECT_EQ(pieces, 3);
  EXPECT_EQ(scheduler.stats().busy_slots, 0);
}

TEST(Scheduler, BadRequestsFailAloneAndTheSchedulerGoesOn) {
  Scheduler scheduler(engine(), {.slots = 2});
  EXPECT_THROW(scheduler.complete({{"robot", {Content::text("x")}}}), Error);
  EXPECT_THROW(scheduler.complete({}), Error);
  EXPECT_THROW(scheduler.complete({{"user", {Content::image_bytes("not a picture")}}}), Error);
  std::string huge;
  for (int i = 0; i < 5000; ++i) huge += "word ";
  Scheduler small(engine(), {.slots = 1, .context = 256});
  EXPECT_THROW(small.complete(ask_text(huge), greedy(4)), Error);
  EXPECT_EQ(scheduler.complete(ask_text("Hi"), greedy(4)).tokens,
            engine().generate(ask_text("Hi"), greedy(4)).tokens);
}

TEST(Scheduler, AfterShutdownRequestsAreRefused) {
  Scheduler scheduler(engine(), {.slots = 1});
  scheduler.shutdown();
  EXPECT_THROW(scheduler.complete(ask_text("Hi"), greedy(4)), BusyError);
}

}  // namespace
}  // namespace smolvlm
