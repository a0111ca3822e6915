// The answer path of POST /v1/chat/completions: the body read and parsed, the answer started,
// then sent whole or as Server-Sent Events, one event per piece of text as it is made.
//
// An answer is driven by two callbacks, on_text (a piece) and on_done (the result or the
// error), which the Scheduler calls from its own thread (Scheduler::submit, in start_answer():
// the one place that knows how the answer is produced); the connection's thread sends them.
#include <deque>
#include <random>
#include <utility>

#include "server/openai_format.h"
#include "server/server_state.h"
#include "server/text_stream.h"

namespace smolvlm::server {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// What an exception from parsing or from the scheduler means for the client: by its type.
struct Failure {
  int status = 500;
  std::string message, type = "server_error", param, code;
};

Failure classify(std::exception_ptr error, bool stopping) {
  try {
    std::rethrow_exception(error);
  } catch (const RequestError& e) {
    return {e.status(), e.what(), e.type(), e.param(), e.code()};
  } catch (const BusyError& e) {
    if (stopping) return {503, e.what(), "unavailable_error", {}, "shutting_down"};
    return {429, e.what(), "rate_limit_error", {}, "server_busy"};
  } catch (const ContextLengthError& e) {
    return {400, e.what(), "invalid_request_error", "messages", "context_length_exceeded"};
  } catch (const Error& e) {
    return {400, e.what(), "invalid_request_error", {}, {}};
  } catch (const std::bad_alloc&) {
    return {500, "out of memory", "server_error", {}, {}};
  } catch (const std::exception& e) {
    return {500, std::string("internal error: ") + e.what(), "server_error", {}, {}};
  }
}

const Failure kShuttingDown{
    503, "the server is shutting down", "unavailable_error", {}, "shutting_down"};

void send_failure(HttpExchange& x, const Failure& f) {
  if (f.status == 429) x.add_header("Retry-After", "1");
  send_error(x, f.status, f.message, f.type, f.param, f.code);
}

uint64_t fresh_seed() {
  static std::mutex mu;
  static std::random_device device;
  std::lock_guard lock(mu);
  return static_cast<uint64_t>(device()) << 32 | device();
}

// One answer: pieces of text come (on_text) and then its end (on_done), from whichever thread
// makes it; the HTTP thread sends them.
struct Answer {
  ChatRequest request;
  TempFiles temp_files;
  std::unique_ptr<StopFilter> filter;
  std::mutex mu;
  std::condition_variable cv;
  // Filtered text not yet sent, one piece per token that showed text: a stream sends each as
  // its own event (as OpenAI and llama-server do), however far behind the writer is.
  std::deque<std::string> pending;
  bool started = false;  // the first piece came (the request was accepted)
  bool done = false;
  std::exception_ptr error;
  Result result;
  bool stopped_by_string = false;
  std::atomic<bool> cancel{false};  // the client went away

  // A piece of the answer; false: stop making it (the client left, or a stop string matched).
  bool on_text(std::string_view piece) {
    if (cancel) return false;
    std::string shown = filter->push(piece);
    std::lock_guard lock(mu);
    started = true;
    if (!shown.empty()) pending.push_back(std::move(shown));
    cv.notify_all();
    return !filter->stopped();
  }
  // The end of the answer: its result, or why it failed.
  void on_done(Result r, std::exception_ptr e) {
    std::lock_guard lock(mu);
    if (std::string tail = filter->finish(); !tail.empty()) pending.push_back(std::move(tail));
    stopped_by_string = filter->stopped();
    result = std::move(r);
    error = e;
    done = true;
    cv.notify_all();
  }
  void wait_done() {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return done; });
  }
  // Refused or cancelled with nothing to show: an error answer, not a result.
  bool failed() const { return error || (result.cancelled && !stopped_by_string); }
};

// Starts making the answer on the Scheduler's thread: no thread here waits for it, the HTTP
// thread only sends what on_text and on_done leave in `a`. Throws BusyError (429) when every slot
// is busy and the queue is full. The conversation (pictures included) moves to the Scheduler:
// nothing here reads it again.
void start_answer(Scheduler& scheduler, const std::shared_ptr<Answer>& a) {
  scheduler.submit(
      std::move(a->request.conversation), a->request.options,
      [a](std::string_view piece) { return a->on_text(piece); },
      [a](Result r, std::exception_ptr error) { a->on_done(std::move(r), error); });
}

std::string joined(const std::deque<std::string>& pieces) {
  std::string all;
  for (const std::string& p : pieces) all += p;
  return all;
}

// The whole answer, once made. Nothing is written before, so a client that hangs up is seen on
// its socket: looked at every few milliseconds, well within a decode step.
void send_whole(HttpExchange& x, Answer& a, const CompletionId& id, bool stopping) {
  {
    std::unique_lock lock(a.mu);
    while (!a.cv.wait_for(lock, std::chrono::milliseconds(10), [&] { return a.done; })) {
      if (!a.cancel && x.client_gone()) a.cancel = true;
    }
  }
  if (a.error) {
    send_failure(x, classify(a.error, stopping));
  } else if (a.failed()) {
    send_failure(x, kShuttingDown);
  } else {
    send_json(x, 200, completion_json(id, joined(a.pending), a.result, a.stopped_by_string));
  }
}

// The answer as Server-Sent Events, each piece flushed as it comes. A request refused before
// its first piece gets an ordinary error answer with its status.
void send_stream(HttpExchange& x, Answer& a, const CompletionId& id, bool stopping) {
  {
    std::unique_lock lock(a.mu);
    a.cv.wait(lock, [&] { return a.started || a.done; });
    if (a.done && a.failed()) {
      lock.unlock();
      send_failure(x, a.error ? classify(a.error, stopping) : kShuttingDown);
      return;
    }
  }
  const bool usage = a.request.include_usage;
  x.add_header("Cache-Control", "no-cache");
  x.add_header("X-Accel-Buffering", "no");  // proxies: do not buffer the stream
  auto send = [&](const std::string& event) {
    if (x.write(event)) return true;
    a.cancel = true;  // the client is gone: free its slot at the next token
    return false;
  };
  if (!x.start_stream(200, "text/event-stream") ||
      !send(sse_event(chunk_json(id, {{"role", "assistant"}, {"content", ""}}, {}, usage)))) {
    a.cancel = true;
    return;
  }
  auto last_write = Clock::now();
  for (;;) {
    std::deque<std::string> pieces;
    bool done = false;
    {
      std::unique_lock lock(a.mu);
      a.cv.wait_for(lock, std::chrono::milliseconds(100),
                    [&] { return a.done || !a.pending.empty(); });
      pieces.swap(a.pending);
      done = a.done;
    }
    for (const std::string& text : pieces) {
      if (!send(sse_event(chunk_json(id, {{"content", text}}, {}, usage)))) return;
      last_write = Clock::now();
    }
    if (pieces.empty() && !done && Clock::now() - last_write > std::chrono::seconds(1)) {
      // An SSE comment while nothing comes (a long prefill): finds clients that left.
      if (!send(": waiting\n\n")) return;
      last_write = Clock::now();
    }
    if (done) break;
  }
  if (a.failed()) {
    const Failure f = a.error ? classify(a.error, stopping) : kShuttingDown;
    send(sse_event(error_body(f.message, f.type, f.param, f.code)));
  } else {
    json last = chunk_json(id, json::object(), finish_reason(a.result, a.stopped_by_string), usage);
    last["timings"] = timings_json(a.result);
    if (!send(sse_event(last))) return;
    if (usage && !send(sse_event(usage_chunk_json(id, a.result)))) return;
  }
  if (send("data: [DONE]\n\n")) x.end_stream();
}

}  // namespace

void HttpServer::Impl::complete(HttpExchange& x) {
  // The answer's id, also on every response to this request (errors too), so a client's log
  // line and the server's answer can be matched.
  CompletionId id = new_completion_id(options.model_name);
  x.add_header("x-request-id", id.id);
  if (!ready(x)) return;
  std::string body;
  switch (x.read_body(body)) {
    case HttpExchange::Body::read:
      break;
    case HttpExchange::Body::too_large:
      return send_error(x, 413, "the body is larger than --max-body", "invalid_request_error", {},
                        "body_too_large");
    case HttpExchange::Body::too_slow:
      return send_error(x, 408, "the request body came too slowly", "invalid_request_error", {},
                        "request_timeout");
    case HttpExchange::Body::malformed:
      return send_error(x, 400, "malformed request body (chunked encoding)",
                        "invalid_request_error", {}, "bad_request");
    case HttpExchange::Body::gone:
      return send_error(x, 400, "the request body ended early", "invalid_request_error");
  }
  auto answer = std::make_shared<Answer>();
  try {
    answer->request = parse_chat_request(body, options.policy, answer->temp_files);
  } catch (...) {
    return send_failure(x, classify(std::current_exception(), stopping));
  }
  ChatRequest& request = answer->request;
  answer->filter = std::make_unique<StopFilter>(request.stop);
  if (request.model.empty()) request.model = options.model_name;
  id.model = request.model;
  // Without a seed each request samples differently (a "regenerate" gives a new answer), as
  // OpenAI's API does; with one, the answer repeats.
  if (!request.seeded) request.options.seed = fresh_seed();
  // Seen at every decode step, and by a request still waiting for a slot.
  request.options.cancel = &answer->cancel;
  body.clear();
  body.shrink_to_fit();
  enter();
  try {
    start_answer(*scheduler.load(), answer);
  } catch (...) {
    leave();
    return send_failure(x, classify(std::current_exception(), stopping));
  }
  if (request.stream) {
    send_stream(x, *answer, id, stopping);
  } else {
    send_whole(x, *answer, id, stopping);
  }
  answer->cancel = true;  // a no-op when the answer is complete
  answer->wait_done();
  leave();
}

}  // namespace smolvlm::server
