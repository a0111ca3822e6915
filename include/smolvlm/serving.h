// Serving many conversations on one Engine at once (what `smolvlm serve` stands on).
//
//   smolvlm::Scheduler scheduler(*engine, {.slots = 4});
//   // from any number of threads, blocking:
//   smolvlm::Result r = scheduler.complete(conversation, options, on_text);
//   // or without a waiting thread: returns at once, on_done runs when the answer is over
//   scheduler.submit(conversation, options, on_text, [](smolvlm::Result r, std::exception_ptr e) {
//     if (e) { /* std::rethrow_exception(e) to read the smolvlm::Error */ } else { /* use r */ }
//   });
#pragma once

#include <smolvlm/smolvlm.h>

#include <cstdint>
#include <exception>
#include <functional>
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

// Thrown by Scheduler::submit and complete when every slot is busy and the queue is full (HTTP
// 429), or after shutdown() (HTTP 503); given to on_done for a request still waiting at shutdown().
class BusyError : public Error {
 public:
  using Error::Error;
};

// The end of a submitted request, called exactly once: `error` null and the answer in `result`
// (`cancelled` set when it was cancelled), or `error` set and `result` empty. The error is a
// smolvlm::Error or one of its kinds: ContextLengthError (the prompt does not fit), BusyError
// (shut down before it had a slot), Error (a bad request, the message says why), or what
// on_text threw.
using DoneCallback = std::function<void(Result result, std::exception_ptr error)>;

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
// Thread-safe: submit() and complete() may be called from any number of threads at once.
class Scheduler {
 public:
  explicit Scheduler(Engine& engine, const SchedulerOptions& options = {});
  ~Scheduler();  // shutdown(), then waits for the requests in flight
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues an answer to the conversation's last user turn and returns at once; no thread waits
  // for it. The answer is exactly what Engine::generate gives (the same ids for greedy decoding).
  // On the scheduler's own thread, on_text gets each new piece in order, then on_done runs
  // once, after the last piece; requests are admitted in the order they were submitted. Both
  // callbacks hold up every slot's decoding while they run: they hand the piece on and return
  // (neither may call complete(); on_done may submit). on_done must not throw (an exception
  // from it is dropped, so that the other requests go on).
  // options.cancel, or false from on_text, stops the answer within one decode step (a request
  // still waiting ends without any piece) and on_done gets the Result with `cancelled` set;
  // options.cancel must live until on_done. Throws BusyError, and never calls on_done, when
  // every slot is busy and the queue is full or after shutdown(); every other failure reaches
  // on_done (see DoneCallback).
  void submit(Conversation conversation, GenerationOptions options, TextCallback on_text,
              DoneCallback on_done);

  // submit() and wait: returns the Result, or throws on_done's error (BusyError at once when
  // it cannot be queued). on_text runs on the scheduler's thread, as for submit().
  Result complete(const Conversation& conversation, const GenerationOptions& options = {},
                  const TextCallback& on_text = nullptr);

  SchedulerStats stats() const;
  // Stops taking requests (submit and complete throw BusyError), cancels those in a slot and
  // ends those waiting with BusyError. Does not wait: the destructor does.
  void shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace smolvlm
