// Scheduler: many conversations on one Engine. One worker thread owns the model's compute: between
// decode steps it admits waiting requests into free slots (render, encode pictures through the
// feature cache, prefill what the slot's KV cache does not already hold, first token), then runs
// one decoder pass with a row for every active slot (Decoder::forward over their sequences) and
// streams each slot's new piece. Slots keep their KV cache after a request, so a follow-up that
// resends the dialogue computes only its new turn.
#include <smolvlm/serving.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <future>
#include <list>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "chat/answer_loop.h"
#include "chat/conversation_prompt.h"
#include "chat/engine_impl.h"
#include "formats/file_hash.h"
#include "util/sha256.h"

namespace smolvlm {

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// Picture features by a hash of the picture and the tile settings; least recently used out first
// once the features exceed the byte limit. Features still shown by a running request stay alive
// through their MediaPtr even when evicted.
class MediaCache {
 public:
  explicit MediaCache(int64_t limit) : limit_(limit) {}

  MediaPtr find(const std::string& key) {
    const auto it = index_.find(key);
    if (it == index_.end()) {
      ++misses_;
      return nullptr;
    }
    ++hits_;
    lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->second;
  }

  void put(const std::string& key, MediaPtr media) {
    if (limit_ <= 0 || index_.count(key)) return;
    bytes_ += static_cast<int64_t>(media->bytes());
    lru_.emplace_front(key, std::move(media));
    index_[key] = lru_.begin();
    while (bytes_ > limit_ && !lru_.empty()) {
      bytes_ -= static_cast<int64_t>(lru_.back().second->bytes());
      index_.erase(lru_.back().first);
      lru_.pop_back();
    }
  }

  int64_t hits() const { return hits_; }
  int64_t misses() const { return misses_; }
  int64_t bytes() const { return bytes_; }

 private:
  int64_t limit_, bytes_ = 0, hits_ = 0, misses_ = 0;
  std::list<std::pair<std::string, MediaPtr>> lru_;
  std::unordered_map<std::string, std::list<std::pair<std::string, MediaPtr>>::iterator> index_;
};

// A submitted request, owned by exactly one place at a time (the queue, a slot, or the code ending
// it), so that its on_done runs once.
struct Request {
  Conversation conversation;
  GenerationOptions options;
  TextCallback on_text;
  DoneCallback on_done;
  Result result;
  std::exception_ptr error;
};
using RequestPtr = std::unique_ptr<Request>;

struct Slot {
  std::unique_ptr<Sequence> sequence;  // kept after a request, for the next one's prefix
  RequestPtr request;                  // null while the slot is free
  std::unique_ptr<AnswerStream> answer;
  int32_t next = -1;  // the token to run at the next step
  uint64_t last_used = 0;
};

std::string settings_key(const GenerationOptions& o) {
  return (o.split_images ? "/split/" : "/whole/") + std::to_string(o.max_tiles);
}

}  // namespace

struct Scheduler::Impl {
  const Model& model;
  const kernels::Compute& cx;
  double load_ms;
  SchedulerOptions options;
  int context;

  mutable std::mutex mu;
  std::condition_variable cv;
  std::deque<RequestPtr> queue;  // guarded by mu
  int busy = 0;                  // slots with a request; guarded by mu
  bool stopping = false;         // guarded by mu
  SchedulerStats totals;         // guarded by mu
  std::atomic<bool> stop_now{false};

  // Touched by the worker only.
  std::vector<Slot> slots;
  // The decode step's buffers (the worker thread's alone): sized once for the busiest step.
  DecoderScratch step_scratch;
  std::vector<float> step_input, step_logits;
  MediaCache media_cache;
  uint64_t clock = 0;

  std::thread worker;

  Impl(Engine::Impl& e, const SchedulerOptions& o)
      : model(*e.model),
        cx(*e.compute),
        load_ms(e.load_ms),
        options(o),
        context(o.context > 0 ? std::min(o.context, e.context) : e.context),
        media_cache(o.media_cache_bytes) {
    slots.resize(static_cast<size_t>(o.slots));
    for (Slot& s : slots) s.sequence = std::make_unique<Sequence>(model, context);
  }

  // ---------------------------------------------------------------------------- the worker

  void run() {
    std::unique_lock lock(mu);
    for (;;) {
      cv.wait(lock, [&] {
        return stopping || busy > 0 || (!queue.empty() && busy < options.slots) ||
               any_cancelled_waiting();
      });
      std::vector<RequestPtr> ended = take_cancelled_waiting();
      if (stopping) {
        for (RequestPtr& r : queue) {
          r->error = std::make_exception_ptr(BusyError("the server is shutting down"));
          ended.push_back(std::move(r));
        }
        queue.clear();
      }
      if (!ended.empty()) {
        totals.requests += static_cast<int64_t>(ended.size());
        lock.unlock();
        for (RequestPtr& r : ended) deliver(*r);
        lock.lock();
      }
      if (stopping && busy == 0) return;
      while (!queue.empty() && busy < options.slots && !stopping) {
        RequestPtr r = std::move(queue.front());
        queue.pop_front();
        ++busy;
        lock.unlock();
        admit(std::move(r));
        lock.lock();
      }
      if (busy == 0) continue;
      lock.unlock();
      step();
      lock.lock();
    }
  }

  // Called with mu held. A waiting request is only ever behind busy slots, so the worker is
  // stepping and looks at the queue between steps: a cancel is seen within one decode step.
  bool any_cancelled_waiting() const {
    return std::any_of(queue.begin(), queue.end(), [](const RequestPtr& r) {
      return r->options.cancel && r->options.cancel->load();
    });
  }

  // Called with mu held: the waiting requests whose cancel is set, out of the queue.
  std::vector<RequestPtr> take_cancelled_waiting() {
    std::vector<RequestPtr> cancelled;
    for (auto it = queue.begin(); it != queue.end();) {
      if ((*it)->options.cancel && (*it)->options.cancel->load()) {
        (*it)->result.cancelled = true;
        cancelled.push_back(std::move(*it));
        it = queue.erase(it);
      } else {
        ++it;
      }
    }
    return cancelled;
  }

  // Hands the answer or the error to on_done. Called without mu: on_done may submit again.
  static void deliver(Request& r) {
    if (!r.on_done) return;
    try {
      r.on_done(std::move(r.result), r.error);
    } catch (...) {  // the contract says on_done does not throw; the other requests go on
    }
  }

  // Ends a request that held a slot (already emptied): counts it, then delivers it.
  void end(RequestPtr r) {
    {
      std::lock_guard lock(mu);
      --busy;
      ++totals.requests;
      if (!r->error) {
        totals.prompt_tokens += r->result.metrics.prompt_tokens;
        totals.cached_tokens += r->result.metrics.cached_tokens;
        totals.generated_tokens += r->result.metrics.generated_tokens;
      }
    }
    deliver(*r);
  }

  void fail(RequestPtr r, std::exception_ptr e) {
    r->error = std::move(e);
    end(std::move(r));
  }

  MediaPtr media_for(const Content& c, const GenerationOptions& o, Metrics& m) {
    if (c.kind == Content::Kind::VideoFile) {
      // Keyed by the file's bytes and the sampling: a follow-up about the same video encodes
      // nothing.
      const std::string key = "video:" + sha256_file(c.value) + "/" + std::to_string(o.video_fps) +
                              "/" + std::to_string(o.video_max_frames) + settings_key(o);
      if (MediaPtr hit = media_cache.find(key)) {
        ++m.media_cache_hits;
        return hit;
      }
      MediaPtr media = encode_video_file(model, cx, c.value, o, processor_for(model, o), m);
      media_cache.put(key, media);
      return media;
    }
    std::string key;
    Image decoded;
    Sha256 h;
    if (c.kind == Content::Kind::ImageBytes) {
      h.update(c.value.data(), c.value.size());
      key = "bytes:" + h.hex_digest();
    } else {
      // Pixels: decoded here (a file may change between requests; its pixels are what count).
      decoded = content_picture(c);
      const int32_t dims[2] = {decoded.width, decoded.height};
      h.update(dims, sizeof dims);
      h.update(decoded.rgb.data(), decoded.rgb.size());
      key = "pixels:" + h.hex_digest();
    }
    key += settings_key(o);
    if (MediaPtr hit = media_cache.find(key)) {
      ++m.media_cache_hits;
      return hit;
    }
    if (c.kind == Content::Kind::ImageBytes) decoded = content_picture(c);
    MediaPtr media = encode_picture(model, cx, decoded, processor_for(model, o), &m.vision_ms);
    media_cache.put(key, media);
    return media;
  }

  // The free slot whose cache holds the longest prefix of the prompt (ties: least recently used).
  Slot& choose_slot(const RenderedPrompt& prompt, size_t& reuse) {
    Slot* best = nullptr;
    reuse = 0;
    for (Slot& s : slots) {
      if (s.request) continue;
      const size_t p = s.sequence->reusable(prompt);
      if (!best || p > reuse || (p == reuse && s.last_used < best->last_used)) {
        best = &s;
        reuse = p;
      }
    }
    return *best;  // admit() runs only while a slot is free
  }

  void admit(RequestPtr request) {
    Request& r = *request;
    Slot* slot = nullptr;
    try {
      if (r.options.max_new_tokens < 0) throw Error("max new tokens must not be negative");
      Metrics& m = r.result.metrics;
      m.load_ms = load_ms;
      // Before any picture is decoded or encoded: a prompt that cannot fit is refused at once.
      check_prompt_fits(model, r.conversation, processor_for(model, r.options), context);
      std::vector<MediaPtr> media;
      const std::vector<PromptMessage> messages = prompt_messages(
          r.conversation, [&](const Content& c) { return media_for(c, r.options, m); }, media);
      {
        std::lock_guard lock(mu);
        totals.media_cache_hits = media_cache.hits();
        totals.media_cache_misses = media_cache.misses();
        totals.media_cache_bytes = media_cache.bytes();
      }
      const RenderedPrompt prompt = render_prompt(model, messages, media);
      const int n_prompt = static_cast<int>(prompt.size());
      m.prompt_tokens = n_prompt;
      m.image_tiles = prompt.n_tiles;
      if (n_prompt >= context) {
        throw ContextLengthError("the prompt has " + std::to_string(n_prompt) +
                                 " tokens, more than the context of " + std::to_string(context) +
                                 " allows");
      }
      size_t reuse = 0;
      slot = &choose_slot(prompt, reuse);
      slot->request = std::move(request);
      slot->last_used = ++clock;
      const auto t = Clock::now();
      m.cached_tokens = static_cast<int>(slot->sequence->prefill(cx, prompt));
      m.prefill_ms = ms_since(t);
      slot->answer =
          std::make_unique<AnswerStream>(model, prompt.ids, r.options, r.on_text, r.result);
      advance(*slot, slot->sequence->logits());
    } catch (...) {
      fail(slot ? reset(*slot) : std::move(request), std::current_exception());
    }
  }

  // Samples the slot's next token from `logits`; finishes the request when the answer is over.
  void advance(Slot& s, float* logits) {
    const std::optional<int32_t> id = s.answer->next(logits, s.sequence->has_room());
    if (id) {
      s.next = *id;
    } else {
      finish(s);
    }
  }

  // Frees the slot after a failure (its cache may hold half a prompt): returns its request.
  RequestPtr reset(Slot& s) {
    s.sequence->clear();
    s.answer.reset();
    s.next = -1;
    return std::move(s.request);
  }

  void finish(Slot& s) {
    s.answer->finish();
    s.answer.reset();
    s.next = -1;
    end(std::move(s.request));
  }

  // One batched decode step over the active slots.
  void step() {
    std::vector<Slot*> active;
    for (Slot& s : slots) {
      if (s.request && s.next >= 0) active.push_back(&s);
    }
    if (active.empty()) return;
    if (stop_now.load()) {
      for (Slot* s : active) {
        s->request->result.cancelled = true;
        try {
          finish(*s);
        } catch (...) {  // on_text threw on the last piece
          fail(reset(*s), std::current_exception());
        }
      }
      return;
    }
    const size_t n = active.size(), hidden = static_cast<size_t>(model.config.text.hidden),
                 vocab = static_cast<size_t>(model.config.text.vocab);
    std::vector<float>& x = step_input;
    std::vector<float>& logits = step_logits;
    std::vector<SequenceRows> rows(n);
    x.resize(n * hidden);
    logits.resize(n * vocab);
    for (size_t i = 0; i < n; ++i) {
      model.decoder.embed(&active[i]->next, 1, x.data() + i * hidden);
      rows[i] = active[i]->sequence->next_row();
    }
    const auto t = Clock::now();
    try {
      model.decoder.forward(cx, x.data(), rows, step_scratch, logits.data());
    } catch (...) {
      for (Slot* s : active) fail(reset(*s), std::current_exception());
      return;
    }
    {
      std::lock_guard lock(mu);
      totals.decode_ms += ms_since(t);
      ++totals.decode_steps;
      totals.decode_rows += static_cast<int64_t>(n);
    }
    for (size_t i = 0; i < n; ++i) {
      Slot& s = *active[i];
      s.sequence->pushed_by_batch(s.next);
      try {
        advance(s, logits.data() + i * vocab);
      } catch (...) {  // on_text threw: that request fails, the others go on
        fail(reset(s), std::current_exception());
      }
    }
  }
};
Scheduler::Scheduler(Engine& engine, const SchedulerOptions& options) {
  if (options.slots < 1) throw Error("the scheduler needs at least one slot");
  if (options.queue < 0) throw Error("the queue length must not be negative");
  if (options.context < 0) throw Error("context length must be positive");
  impl_ = std::make_unique<Impl>(*engine.impl_, options);
  impl_->totals.slots = options.slots;
  impl_->worker = std::thread([this] { impl_->run(); });
}

Scheduler::~Scheduler() {
  shutdown();
  if (impl_->worker.joinable()) impl_->worker.join();
}

void Scheduler::submit(Conversation conversation, GenerationOptions options, TextCallback on_text,
                       DoneCallback on_done) {
  Impl& s = *impl_;
  auto r = std::make_unique<Request>(Request{std::move(conversation),
                                             std::move(options),
                                             std::move(on_text),
                                             std::move(on_done),
                                             {},
                                             nullptr});
  std::lock_guard lock(s.mu);
  if (s.stopping) throw BusyError("the server is shutting down");
  const int in_flight = s.busy + static_cast<int>(s.queue.size());
  if (in_flight >= s.options.slots + s.options.queue)
    throw BusyError("all " + std::to_string(s.options.slots) + " slots are busy and " +
                    std::to_string(s.queue.size()) + " requests are waiting");
  s.queue.push_back(std::move(r));
  s.cv.notify_all();
}

Result Scheduler::complete(const Conversation& conversation, const GenerationOptions& options,
                           const TextCallback& on_text) {
  // Shared with on_done, which may still be returning from set_value when this call returns.
  auto answer = std::make_shared<std::promise<Result>>();
  std::future<Result> done = answer->get_future();
  TextCallback forward;  // calls the caller's own callback (its state, not a copy's)
  if (on_text) forward = [&on_text](std::string_view piece) { return on_text(piece); };
  submit(conversation, options, std::move(forward), [answer](Result r, std::exception_ptr e) {
    if (e) {
      answer->set_exception(std::move(e));
    } else {
      answer->set_value(std::move(r));
    }
  });
  return done.get();
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard lock(impl_->mu);
  SchedulerStats st = impl_->totals;
  st.busy_slots = impl_->busy;
  st.queued = static_cast<int>(impl_->queue.size());
  return st;
}

void Scheduler::shutdown() {
  std::lock_guard lock(impl_->mu);
  impl_->stopping = true;
  impl_->stop_now = true;
  impl_->cv.notify_all();
}

}  // namespace smolvlm
