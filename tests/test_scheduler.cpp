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

// ---------------------------------------------------------------- submit: no thread waits

// What a submitted request's callbacks saw, filled from the scheduler's thread.
struct Outcome {
  std::mutex mu;
  std::condition_variable cv;
  std::string pieces;
  int done_calls = 0;
  bool piece_after_done = false;
  Result result;
  std::exception_ptr error;

  TextCallback on_text() {
    return [this](std::string_view p) {
      std::lock_guard l(mu);
      if (done_calls > 0) piece_after_done = true;
      pieces += p;
      return true;
    };
  }
  DoneCallback on_done(std::vector<int>* order = nullptr, std::mutex* order_mu = nullptr,
                       int id = 0) {
    return [=, this](Result r, std::exception_ptr e) {
      if (order) {
        std::lock_guard l(*order_mu);
        order->push_back(id);
      }
      std::lock_guard l(mu);
      ++done_calls;
      result = std::move(r);
      error = e;
      cv.notify_all();
    };
  }
  void wait() {
    std::unique_lock l(mu);
    cv.wait(l, [&] { return done_calls > 0; });
  }
};

// The exception a DoneCallback was given, rethrown so EXPECT_THROW can read its type.
void rethrow(const Outcome& o) {
  if (o.error) std::rethrow_exception(o.error);
}

int thread_count() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  }
  return -1;
}

// submit returns at once; the pieces come in order before on_done, which runs once with the
// same answer Engine::generate gives.
TEST(SchedulerSubmit, ReturnsAtOncePiecesThenOneDone) {
  const Conversation c = ask_picture("img_a.png", "Describe the image.");
  Outcome held, o;
  {
    Scheduler scheduler(engine(), {.slots = 1, .queue = 4});
    Gate gate;
    scheduler.submit(
        ask_text("Tell me a long story."), greedy(20),
        [&](std::string_view) {
          gate.wait();
          return true;
        },
        held.on_done());
    gate.wait_entered();  // the worker is inside the first request's on_text
    scheduler.submit(c, greedy(20), o.on_text(), o.on_done());  // returns with the worker held
    {
      std::lock_guard l(o.mu);
      EXPECT_EQ(o.done_calls, 0);
    }
    gate.release();
    o.wait();
  }  // the destructor waits for the requests in flight: every on_done has run
  const Result want = engine().generate(c, greedy(20));
  std::lock_guard l(o.mu);
  EXPECT_EQ(o.done_calls, 1);
  EXPECT_EQ(held.done_calls, 1);
  EXPECT_FALSE(o.piece_after_done);
  ASSERT_FALSE(o.error);
  EXPECT_EQ(o.result.tokens, want.tokens);
  EXPECT_EQ(o.result.text, want.text);
  EXPECT_EQ(o.pieces, want.text);
}

// With one slot, waiting requests are admitted, and so end, in the order they were submitted.
TEST(SchedulerSubmit, WaitingRequestsRunInSubmitOrder) {
  Scheduler scheduler(engine(), {.slots = 1, .queue = 8});
  std::mutex order_mu;
  std::vector<int> order;
  std::vector<std::unique_ptr<Outcome>> outcomes;
  for (int i = 0; i < 5; ++i) {
    outcomes.push_back(std::make_unique<Outcome>());
    scheduler.submit(ask_text(i % 2 ? "Hi" : "What is the capital of France?"), greedy(4), nullptr,
                     outcomes.back()->on_done(&order, &order_mu, i));
  }
  for (auto& o : outcomes) o->wait();
  std::lock_guard l(order_mu);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

// Many requests in flight from one thread: no thread is started for any of them, each on_done
// runs once, and each answer is its own.
TEST(SchedulerSubmit, ManyInFlightWithoutAThreadEach) {
  const std::vector<Conversation> jobs = {ask_text("What is the capital of France?"),
                                          ask_picture("img_a.png", "Describe the image."),
                                          ask_text("Tell me a story."), ask_text("Hi")};
  std::vector<std::vector<int32_t>> want;
  for (const auto& c : jobs) want.push_back(engine().generate(c, greedy(8)).tokens);
  constexpr int kRequests = 24;
  Scheduler scheduler(engine(), {.slots = 4, .queue = kRequests});
  const int threads_before = thread_count();
  std::vector<std::unique_ptr<Outcome>> outcomes;
  for (int i = 0; i < kRequests; ++i) {
    outcomes.push_back(std::make_unique<Outcome>());
    scheduler.submit(jobs[static_cast<size_t>(i) % jobs.size()], greedy(8),
                     outcomes.back()->on_text(), outcomes.back()->on_done());
  }
  const int threads_in_flight = thread_count();
  for (auto& o : outcomes) o->wait();
  EXPECT_EQ(threads_in_flight, threads_before);
  for (int i = 0; i < kRequests; ++i) {
    Outcome& o = *outcomes[static_cast<size_t>(i)];
    std::lock_guard l(o.mu);
    EXPECT_EQ(o.done_calls, 1) << "request " << i;
    ASSERT_FALSE(o.error) << "request " << i;
    EXPECT_EQ(o.result.tokens, want[static_cast<size_t>(i) % jobs.size()]) << "request " << i;
    EXPECT_EQ(o.pieces, o.result.text) << "request " << i;
  }
  EXPECT_EQ(scheduler.stats().requests, kRequests);
}

// A full queue refuses at submit (BusyError, on_done never runs); a cancelled request ends
// with `cancelled` set, whether it was running or still waiting (then without any piece).
TEST(SchedulerSubmit, BusyAtOnceAndCancelRunningOrWaiting) {
  Scheduler scheduler(engine(), {.slots = 1, .queue = 1});
  Gate gate;
  std::atomic<bool> cancel_running{false}, cancel_waiting{false};
  GenerationOptions running_options = greedy(200), waiting_options = greedy(20);
  running_options.cancel = &cancel_running;
  waiting_options.cancel = &cancel_waiting;
  Outcome running, waiting, refused;
  scheduler.submit(
      ask_text("Tell me a long story."), running_options,
      [&](std::string_view) {
        gate.wait();
        return true;
      },
      running.on_done());
  gate.wait_entered();
  scheduler.submit(ask_text("Hi"), waiting_options, waiting.on_text(), waiting.on_done());
  EXPECT_THROW(scheduler.submit(ask_text("Hi"), greedy(4), nullptr, refused.on_done()), BusyError);
  cancel_waiting = true;
  cancel_running = true;
  gate.release();
  running.wait();
  waiting.wait();
  {
    std::lock_guard l(running.mu);
    ASSERT_FALSE(running.error);
    EXPECT_TRUE(running.result.cancelled);
    EXPECT_LE(running.result.tokens.size(), 2u);
  }
  {
    std::lock_guard l(waiting.mu);
    ASSERT_FALSE(waiting.error);
    EXPECT_TRUE(waiting.result.cancelled);
    EXPECT_TRUE(waiting.result.tokens.empty());
    EXPECT_TRUE(waiting.pieces.empty());
  }
  EXPECT_EQ(refused.done_calls, 0);
  EXPECT_EQ(scheduler.stats().busy_slots, 0);
}

// Errors reach on_done with their type: a prompt too long is a ContextLengthError, a bad
// picture an Error, a request still waiting at shutdown a BusyError; on_text's own exception
// comes back as it was thrown.
TEST(SchedulerSubmit, ErrorsReachOnDoneTyped) {
  std::string huge;
  for (int i = 0; i < 5000; ++i) huge += "word ";
  Scheduler small(engine(), {.slots = 1, .context = 256});
  Outcome too_long, bad_picture, threw;
  small.submit(ask_text(huge), greedy(4), nullptr, too_long.on_done());
  small.submit({{"user", {Content::image_bytes("not a picture")}}}, greedy(4), nullptr,
               bad_picture.on_done());
  small.submit(
      ask_text("Hi"), greedy(4),
      [](std::string_view) -> bool { throw std::runtime_error("the client went away"); },
      threw.on_done());
  too_long.wait();
  bad_picture.wait();
  threw.wait();
  EXPECT_THROW(rethrow(too_long), ContextLengthError);
  EXPECT_THROW(rethrow(bad_picture), Error);
  EXPECT_THROW(rethrow(threw), std::runtime_error);

  Scheduler scheduler(engine(), {.slots = 1, .queue = 2});
  Gate gate;
  Outcome running, waiting;
  scheduler.submit(
      ask_text("Tell me a long story."), greedy(200),
      [&](std::string_view) {
        gate.wait();
        return true;
      },
      running.on_done());
  gate.wait_entered();
  scheduler.submit(ask_text("Hi"), greedy(4), nullptr, waiting.on_done());
  scheduler.shutdown();
  gate.release();
  running.wait();
  waiting.wait();
  EXPECT_TRUE(running.result.cancelled);
  EXPECT_THROW(rethrow(waiting), BusyError);
  Outcome late;
  EXPECT_THROW(scheduler.submit(ask_text("Hi"), greedy(4), nullptr, late.on_done()), BusyError);
  EXPECT_EQ(late.done_calls, 0);
}

}  // namespace
}  // namespace smolvlm
