// Scheduler: first version, one request at a time on the Engine (the interface is final; the
// batched slots replace this body).
#include <smolvlm/serving.h>

#include <condition_variable>
#include <mutex>

namespace smolvlm {

struct Scheduler::Impl {
  Engine& engine;
  SchedulerOptions options;
  mutable std::mutex mu;
  std::condition_variable cv;
  bool running = false, stopping = false;
  int waiting = 0;
  std::atomic<bool> cancel_all{false};
  SchedulerStats totals;
  Impl(Engine& e, const SchedulerOptions& o) : engine(e), options(o) {}
};

Scheduler::Scheduler(Engine& engine, const SchedulerOptions& options)
    : impl_(std::make_unique<Impl>(engine, options)) {
  if (options.slots < 1) throw Error("the scheduler needs at least one slot");
  if (options.queue < 0) throw Error("the queue length must not be negative");
  impl_->totals.slots = options.slots;
}

Scheduler::~Scheduler() {
  shutdown();
  std::unique_lock lock(impl_->mu);
  impl_->cv.wait(lock, [&] { return !impl_->running && impl_->waiting == 0; });
}

Result Scheduler::complete(const Conversation& conversation, const GenerationOptions& options,
                           const TextCallback& on_text) {
  Impl& s = *impl_;
  {
    std::unique_lock lock(s.mu);
    if (s.stopping) throw BusyError("the server is shutting down");
    if (s.running && s.waiting >= s.options.queue) throw BusyError("all slots are busy");
    ++s.waiting;
    s.cv.wait(lock, [&] { return !s.running || s.stopping; });
    --s.waiting;
    if (s.stopping) {
      s.cv.notify_all();
      throw BusyError("the server is shutting down");
    }
    s.running = true;
  }
  GenerationOptions o = options;
  const std::atomic<bool>* caller_cancel = options.cancel;
  o.cancel = nullptr;
  auto guarded = [&](std::string_view piece) {
    if (s.cancel_all.load() || (caller_cancel && caller_cancel->load())) return false;
    return on_text ? on_text(piece) : true;
  };
  Result r;
  try {
    r = s.engine.generate(conversation, o, guarded);
  } catch (...) {
    std::lock_guard lock(s.mu);
    s.running = false;
    ++s.totals.requests;
    s.cv.notify_all();
    throw;
  }
  std::lock_guard lock(s.mu);
  s.running = false;
  ++s.totals.requests;
  s.totals.prompt_tokens += r.metrics.prompt_tokens;
  s.totals.generated_tokens += r.metrics.generated_tokens;
  s.totals.decode_ms += r.metrics.decode_ms;
  s.cv.notify_all();
  return r;
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard lock(impl_->mu);
  SchedulerStats st = impl_->totals;
  st.busy_slots = impl_->running ? 1 : 0;
  st.queued = impl_->waiting;
  return st;
}

void Scheduler::shutdown() {
  std::lock_guard lock(impl_->mu);
  impl_->stopping = true;
  impl_->cancel_all = true;
  impl_->cv.notify_all();
}

}  // namespace smolvlm
