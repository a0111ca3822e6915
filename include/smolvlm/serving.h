// Serving many conversations on one Engine at once (what `smolvlm serve` stands on).
//
//   smolvlm::Scheduler scheduler(*engine, {.slots = 4});
//   // from any number of threads:
//   smolvlm::Result r = scheduler.complete(conversation, options, on_text);
#pragma once

#include <smolvlm/smolvlm.h>

#include <cstdint>
#include <memory>

namespace smolvlm {

struct SchedulerOptions {
  int slots = 4;   // conversations decoded together, each with its own KV cache
  int queue = 16;  // requests that may wait for a slot; one more is refused (BusyError)
  // Features of pictures and videos kept for reuse (LRU). image_cache_bytes: the old name.
  union {
    int64_t media_cache_bytes = int64_t{256} << 20;
    [[deprecated("use media_cache_bytes")]] int64_t image_cache_bytes;
  };
  int context = 0;  // tokens each slot holds; 0: the engine's context length
};

// Thrown by Scheduler::complete when every slot is busy and the queue is full (HTTP 429), or
// after shutdown() (HTTP 503).
class BusyError : public Error {
 public:
  using Error::Error;
};

struct SchedulerStats {
  int slots = 0, busy_slots = 0, queued = 0;
  int64_t requests = 0;  // completed, failed or cancelled since start
  int64_t prompt_tokens = 0, cached_tokens = 0, generated_tokens = 0;
  // The feature cache of pictures and videos (image_cache_*: the old names, the same numbers).
  union {
    int64_t media_cache_hits = 0;
    [[deprecated("use media_cache_hits")]] int64_t image_cache_hits;
  };
  union {
    int64_t media_cache_misses = 0;
    [[deprecated("use media_cache_misses")]] int64_t image_cache_misses;
  };
  union {
    int64_t media_cache_bytes = 0;
    [[deprecated("use media_cache_bytes")]] int64_t image_cache_bytes;
  };
  double decode_ms = 0;  // time spent in decode steps (tokens/s = generated_tokens / decode_ms)
  int64_t decode_steps = 0, decode_rows = 0;  // batched steps, and the sequences they carried
};

// Runs the requests of many clients on one Engine: continuous batching (the active slots decode
// in one forward pass per step; a new request joins at the next step), prompt-prefix reuse (a
// request goes to the slot whose KV cache holds the longest prefix of its prompt, and only the
// rest is computed), and an LRU cache of picture features keyed by the picture's bytes.
// Thread-safe: complete() may be called from any number of threads at once.
class Scheduler {
 public:
  explicit Scheduler(Engine& engine, const SchedulerOptions& options = {});
  ~Scheduler();  // shutdown(), then waits for the requests in flight
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Answers the conversation's last user turn exactly as Engine::generate would (the same ids for
  // greedy decoding), calling on_text from the scheduler's thread with each new piece; blocks until
  // the answer is done. options.cancel, or false from on_text, stops it within one decode step
  // and frees its slot. Throws smolvlm::Error for a bad request (the message says why),
  // BusyError when it cannot be queued.
  Result complete(const Conversation& conversation, const GenerationOptions& options = {},
                  const TextCallback& on_text = nullptr);

  SchedulerStats stats() const;
  // Stops taking requests (complete throws BusyError) and cancels those in flight.
  void shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace smolvlm
