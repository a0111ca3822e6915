// HttpServer: the routes, auth, limits, SSE streaming and metrics (see server.h).
#include "server/server.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "server/client_connection.h"
#include "server/openai_format.h"
#include "server/text_stream.h"
#include "server/webui_assets.h"
#include "util/input_text.h"

namespace smolvlm::server {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// Equal strings in time that depends on their lengths only, not on where they differ.
bool same_key(const std::string& given, const std::string& expected) {
  unsigned diff = given.size() == expected.size() ? 0u : 1u;
  const size_t n = expected.size();
  for (size_t i = 0; i < given.size(); ++i) {
    diff |=
        static_cast<unsigned char>(given[i]) ^ static_cast<unsigned char>(n ? expected[i % n] : 0);
  }
  return diff == 0;
}

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(dump(body), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& message,
                const std::string& type, const std::string& param = {},
                const std::string& code = {}) {
  send_json(res, status, error_body(message, type, param, code));
}

// What an exception from parsing or from the scheduler means for the client.
struct Failure {
  int status = 500;
  std::string message, type = "server_error", param, code;
};

Failure classify(std::exception_ptr error, bool stopping) {
  Failure f;
  try {
    std::rethrow_exception(error);
  } catch (const RequestError& e) {
    f = {e.status(), e.what(), e.type(), e.param(), e.code()};
  } catch (const BusyError& e) {
    if (stopping) {
      f = {503, e.what(), "unavailable_error", {}, "shutting_down"};
    } else {
      f = {429, e.what(), "rate_limit_error", {}, "server_busy"};
    }
  } catch (const ContextLengthError& e) {
    f = {400, e.what(), "invalid_request_error", "messages", "context_length_exceeded"};
  } catch (const Error& e) {
    f = {400, e.what(), "invalid_request_error", {}, {}};
  } catch (const std::bad_alloc&) {
    f = {500, "out of memory", "server_error", {}, {}};
  } catch (const std::exception& e) {
    f = {500, std::string("internal error: ") + e.what(), "server_error", {}, {}};
  }
  return f;
}

uint64_t fresh_seed() {
  static std::mutex mu;
  static std::random_device device;
  std::lock_guard lock(mu);
  return static_cast<uint64_t>(device()) << 32 | device();
}

void send_failure(httplib::Response& res, const Failure& f) {
  send_error(res, f.status, f.message, f.type, f.param, f.code);
  if (f.status == 429) res.set_header("Retry-After", "1");
}

// httplib's connection threads: started only when every one is busy (up to `max`), and the one
// that came free last takes the next connection. Threads (their stacks, their malloc caches)
// thus grow with the peak number of connections, not with the number of requests served, as
// with httplib's fixed pool, whose tasks wander over all of its threads.
class HttpThreads : public httplib::TaskQueue {
 public:
  explicit HttpThreads(size_t max) : max_(max) {}
  ~HttpThreads() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    std::lock_guard lock(mu_);
    if (closing_) return;
    tasks_.push_back(std::move(fn));
    if (!idle_.empty()) {
      Worker* w = idle_.back();  // the most recently used thread: its memory is warm
      idle_.pop_back();
      w->wake = true;
      w->cv.notify_one();
    } else if (workers_.size() < max_) {
      workers_.push_back(std::make_unique<Worker>());
      Worker* w = workers_.back().get();
      w->thread = std::thread([this, w] { loop(*w); });
    }  // else the connection waits for a thread to come free
  }

  void shutdown() override {
    {
      std::lock_guard lock(mu_);
      if (closing_) return;
      closing_ = true;
      for (auto& w : workers_) w->cv.notify_one();
    }
    for (auto& w : workers_) {
      if (w->thread.joinable()) w->thread.join();
    }
  }

 private:
  struct Worker {
    std::condition_variable cv;
    bool wake = false;
    std::thread thread;
  };
  void loop(Worker& w) {
    std::unique_lock lock(mu_);
    for (;;) {
      if (!tasks_.empty()) {
        std::function<void()> fn = std::move(tasks_.front());
        tasks_.pop_front();
        lock.unlock();
        fn();
        lock.lock();
        continue;
      }
      if (closing_) return;
      w.wake = false;
      idle_.push_back(&w);
      w.cv.wait(lock, [&] { return w.wake || closing_; });
      if (!w.wake) return;  // closing: idle_ is not used any more
    }
  }
  const size_t max_;
  std::mutex mu_;
  std::deque<std::function<void()>> tasks_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<Worker*> idle_;
  bool closing_ = false;
};

// Threads that call Scheduler::complete (and wait there: the Scheduler's worker runs the engine),
// created as needed up to a cap and then reused: a live thread keeps its stack and its malloc
// arena, so the memory reaches a plateau, where a thread per request (exited threads' stacks stay
// in glibc's cache) or httplib's pooled threads would spread the answers' memory ever wider.
class AnswerThreads {
 public:
  explicit AnswerThreads(size_t cap) : cap_(cap) {}
  ~AnswerThreads() {
    std::unique_lock lock(mu_);
    closing_ = true;
    cv_.notify_all();
    done_cv_.wait(lock, [&] { return alive_ == 0; });
  }
  // False when all `cap` threads are busy (every slot and queue place is taken: a 429).
  bool run(std::function<void()> task) {
    std::lock_guard lock(mu_);
    if (idle_ > 0) {
      tasks_.push_back(std::move(task));
      --idle_;
      cv_.notify_one();
      return true;
    }
    if (alive_ >= cap_) return false;
    ++alive_;
    std::thread([this, first = std::move(task)]() mutable { loop(std::move(first)); }).detach();
    return true;
  }

 private:
  void loop(std::function<void()> task) {
    for (;;) {
      task();
      task = nullptr;
      std::unique_lock lock(mu_);
      if (closing_) break;
      ++idle_;
      cv_.wait(lock, [&] { return closing_ || !tasks_.empty(); });
      if (tasks_.empty()) {
        --idle_;
        break;
      }
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    std::lock_guard lock(mu_);
    --alive_;
    done_cv_.notify_all();
  }
  const size_t cap_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  std::deque<std::function<void()>> tasks_;
  size_t idle_ = 0, alive_ = 0;
  bool closing_ = false;
};

std::string joined(const std::deque<std::string>& pieces) {
  std::string all;
  for (const std::string& p : pieces) all += p;
  return all;
}

// One answer: the scheduler's thread produces text, the HTTP thread sends it (streaming) or
// waits for all of it.
struct StreamJob {
  ChatRequest request;
  TempFiles temp_files;
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
  void wait_done() {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return done; });
  }
  explicit StreamJob() = default;
};

}  // namespace

struct HttpServer::Impl {
  ServerOptions options;
  httplib::Server http;
  std::thread listener;
  int port = -1;
  std::atomic<Engine*> engine{nullptr};
  std::atomic<Scheduler*> scheduler{nullptr};
  std::atomic<bool> stopping{false};
  std::mutex stop_mu;  // one stop() at a time
  bool stopped = false;

  std::mutex flight_mu;
  std::condition_variable flight_cv;
  int in_flight = 0;

  std::mutex metrics_mu;
  std::map<int, int64_t> responses_by_status;
  int64_t load_time = 0;

  std::mutex static_mu;
  struct Asset {
    std::string body, content_type, etag;
  };
  std::map<std::string, Asset> assets;  // by path

  std::unique_ptr<AnswerThreads> answer_threads;

  explicit Impl(ServerOptions o) : options(std::move(o)) {}

  void enter() {
    std::lock_guard lock(flight_mu);
    ++in_flight;
  }
  void leave() {
    std::lock_guard lock(flight_mu);
    --in_flight;
    flight_cv.notify_all();
  }
  bool wait_idle(std::chrono::milliseconds limit) {
    std::unique_lock lock(flight_mu);
    return flight_cv.wait_for(lock, limit, [&] { return in_flight == 0; });
  }

  bool is_public(const std::string& path) const {
    return path == "/health" || (path.rfind("/v1/", 0) != 0 && path != "/metrics");
  }

  bool any_origin = false;  // cors_origins holds "*"

  // CORS, before anything else: the answer's headers for the request's origin, and the preflight
  // (a browser's OPTIONS, which carries no API key) answered here. True when it was a preflight.
  bool cors(const httplib::Request& req, httplib::Response& res) {
    const std::string origin = req.get_header_value("Origin");
    bool allowed = false;
    if (!origin.empty() && !options.cors_origins.empty()) {
      std::string lower = origin;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      allowed = any_origin || std::find(options.cors_origins.begin(), options.cors_origins.end(),
                                        lower) != options.cors_origins.end();
    }
    if (allowed) {
      res.set_header("Access-Control-Allow-Origin", any_origin ? "*" : origin);
      // Scripts may read these besides the always-readable ones.
      res.set_header("Access-Control-Expose-Headers", "x-request-id, Retry-After");
    }
    // The answer depends on the Origin header: caches must keep one per origin.
    if (!options.cors_origins.empty() && !any_origin) res.set_header("Vary", "Origin");
    if (req.method != "OPTIONS") return false;
    if (req.has_header("Content-Length") || req.has_header("Transfer-Encoding")) {
      res.set_header("Connection", "close");  // a body we do not read must not be the next request
    }
    const bool preflight = !origin.empty() && req.has_header("Access-Control-Request-Method");
    if (preflight && !allowed) {
      send_error(res, 403,
                 "the origin " + quote_input(origin) +
                     " may not call this server from a browser (start it with --cors-origin "
                     "ORIGIN to allow one)",
                 "permission_error", {}, "origin_not_allowed");
      return true;
    }
    res.status = 204;
    res.set_header("Allow", "GET, POST, OPTIONS");
    if (preflight) {
      res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      // The headers the page asked for (SDKs add their own x-... ones) when they are header
      // names; Authorization and Content-Type in any case.
      const std::string asked = req.get_header_value("Access-Control-Request-Headers");
      const bool names =
          asked.size() <= 1024 && asked.find_first_not_of(
                                      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWX"
                                      "YZ0123456789-_, ") == std::string::npos;
      res.set_header("Access-Control-Allow-Headers",
                     names && !asked.empty() ? "Authorization, Content-Type, " + asked
                                             : std::string("Authorization, Content-Type"));
      res.set_header("Access-Control-Max-Age", "600");
    }
    return true;
  }

  httplib::Server::HandlerResponse pre_route(const httplib::Request& req, httplib::Response& res) {
    using HR = httplib::Server::HandlerResponse;
    if (cors(req, res)) return HR::Handled;
    if (stopping && req.path != "/health") {
      send_error(res, 503, "the server is shutting down", "unavailable_error", {}, "shutting_down");
      return HR::Handled;
    }
    if (!options.api_key.empty() && !is_public(req.path)) {
      const std::string auth = req.get_header_value("Authorization");
      const std::string prefix = "Bearer ";
      const bool ok = auth.size() > prefix.size() && auth.compare(0, prefix.size(), prefix) == 0 &&
                      same_key(auth.substr(prefix.size()), options.api_key);
      if (!ok) {
        send_error(res, 401, "missing or wrong API key (Authorization: Bearer KEY)",
                   "authentication_error", {}, "invalid_api_key");
        return HR::Handled;
      }
    }
    // Refused by its declared size before a byte of it is read.
    if (req.has_header("Content-Length")) {
      const std::string text = req.get_header_value("Content-Length");
      char* end = nullptr;
      const unsigned long long length = std::strtoull(text.c_str(), &end, 10);
      if (text.empty() || *end != '\0') {
        send_error(res, 400, "malformed Content-Length", "invalid_request_error");
        res.set_header("Connection", "close");
        return HR::Handled;
      }
      if (length > options.max_body_bytes) {
        send_error(res, 413,
                   "the body is larger than --max-body (" + std::to_string(options.max_body_bytes) +
                       " bytes)",
                   "invalid_request_error", {}, "body_too_large");
        res.set_header("Connection", "close");
        return HR::Handled;
      }
    }
    return HR::Unhandled;
  }

  void health(httplib::Response& res) {
    if (stopping) {
      json body = error_body("the server is shutting down", "unavailable_error");
      body["status"] = "stopping";
      send_json(res, 503, body);
    } else if (!scheduler.load()) {
      json body = error_body("loading the model", "unavailable_error");
      body["status"] = "loading";
      send_json(res, 503, body);
    } else {
      send_json(res, 200, {{"status", "ok"}});
    }
  }

  bool ready(httplib::Response& res) {
    if (scheduler.load()) return true;
    send_error(res, 503, "the model is still loading", "unavailable_error", {}, "loading");
    return false;
  }

  json model_json() {
    const ModelInfo info = engine.load()->info();
    return {{"id", options.model_name},
            {"object", "model"},
            {"created", load_time},
            {"owned_by", "smolvlm"},
            {"meta",
             {{"parameters", info.parameters},
              {"context", info.context},
              {"vocab", info.vocab},
              {"text_layers", info.text_layers},
              {"tile_size", info.tile_size}}}};
  }

  void models(httplib::Response& res) {
    if (!ready(res)) return;
    send_json(res, 200, {{"object", "list"}, {"data", json::array({model_json()})}});
  }

  // GET /v1/models/{id}: the one model, or OpenAI's 404 for any other id.
  void model(const std::string& id, httplib::Response& res) {
    if (!ready(res)) return;
    if (id != options.model_name) {
      send_error(res, 404,
                 "the model " + quote_input(id) + " does not exist (this server has '" +
                     options.model_name + "')",
                 "invalid_request_error", "model", "model_not_found");
      return;
    }
    send_json(res, 200, model_json());
  }

  void metrics(httplib::Response& res) {
    std::string out;
    auto line = [&](const std::string& name, const std::string& help, const std::string& type,
                    double value) {
      out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
      char buf[64];
      std::snprintf(buf, sizeof buf, " %.17g\n", value);
      out += name + buf;
    };
    {
      std::lock_guard lock(metrics_mu);
      out += "# HELP smolvlm_http_responses_total HTTP responses by status code\n";
      out += "# TYPE smolvlm_http_responses_total counter\n";
      for (const auto& [status, n] : responses_by_status) {
        out += "smolvlm_http_responses_total{status=\"" + std::to_string(status) + "\"} " +
               std::to_string(n) + "\n";
      }
    }
    {
      std::lock_guard lock(flight_mu);
      line("smolvlm_http_requests_in_flight", "completions being answered now", "gauge", in_flight);
    }
    if (Scheduler* s = scheduler.load()) {
      const SchedulerStats st = s->stats();
      line("smolvlm_slots", "conversations decoded together", "gauge", st.slots);
      line("smolvlm_busy_slots", "slots answering now", "gauge", st.busy_slots);
      line("smolvlm_queue_depth", "requests waiting for a slot", "gauge", st.queued);
      line("smolvlm_requests_total", "answers completed, failed or cancelled", "counter",
           static_cast<double>(st.requests));
      line("smolvlm_prompt_tokens_total", "prompt tokens", "counter",
           static_cast<double>(st.prompt_tokens));
      line("smolvlm_cached_prompt_tokens_total", "prompt tokens reused from a KV cache", "counter",
           static_cast<double>(st.cached_tokens));
      line("smolvlm_generated_tokens_total", "tokens generated", "counter",
           static_cast<double>(st.generated_tokens));
      // The feature cache holds videos too; its metrics keep their first names (dashboards).
      line("smolvlm_image_cache_hits_total", "pictures and videos whose features were reused",
           "counter", static_cast<double>(st.media_cache_hits));
      line("smolvlm_image_cache_misses_total", "pictures and videos encoded", "counter",
           static_cast<double>(st.media_cache_misses));
      line("smolvlm_image_cache_bytes", "picture and video features held", "gauge",
           static_cast<double>(st.media_cache_bytes));
      line("smolvlm_decode_tokens_per_second", "generated tokens per second of decoding", "gauge",
           st.decode_ms > 0 ? st.generated_tokens * 1000.0 / st.decode_ms : 0.0);
    }
    res.status = 200;
    res.set_content(out, "text/plain; version=0.0.4");
  }

  void complete(const httplib::Request& req, httplib::Response& res,
                const httplib::ContentReader& reader);
  void stream(std::shared_ptr<StreamJob> job, const CompletionId& id, httplib::Response& res);
};

void HttpServer::Impl::complete(const httplib::Request& req, httplib::Response& res,
                                const httplib::ContentReader& reader) {
  // The answer's id, also on every response to this request (errors too), so a client's log
  // line and the server's answer can be matched.
  CompletionId id = new_completion_id(options.model_name);
  res.set_header("x-request-id", id.id);
  if (!ready(res)) return;
  std::string body;
  bool too_large = false;
  const bool read = reader([&](const char* data, size_t length) {
    if (body.size() + length > options.max_body_bytes) {
      too_large = true;
      return false;
    }
    body.append(data, length);
    return true;
  });
  if (too_large) {
    send_error(res, 413, "the body is larger than --max-body", "invalid_request_error", {},
               "body_too_large");
    res.set_header("Connection", "close");
    return;
  }
  if (!read) {
    // The body did not arrive within the read timeout (or the client left).
    send_error(res, 408, "the request body came too slowly", "invalid_request_error", {},
               "request_timeout");
    res.set_header("Connection", "close");
    return;
  }
  auto job = std::make_shared<StreamJob>();
  try {
    job->request = parse_chat_request(body, options.policy, job->temp_files);
  } catch (...) {
    send_failure(res, classify(std::current_exception(), stopping));
    return;
  }
  if (job->request.model.empty()) job->request.model = options.model_name;
  id.model = job->request.model;
  // Without a seed each request samples differently (a "regenerate" gives a new answer), as
  // OpenAI's API does; with one, the answer repeats.
  if (!job->request.seeded) job->request.options.seed = fresh_seed();
  // Seen at every decode step, and by a request still waiting for a slot.
  job->request.options.cancel = &job->cancel;
  body.clear();
  body.shrink_to_fit();
  enter();
  StreamJob* j = job.get();
  // The answer is computed on an answer thread, for both kinds of answer: the HTTP thread stays
  // free to notice a client that leaves, and memory stays with a few reused threads.
  Scheduler* sched_ptr = scheduler.load();
  const bool accepted = answer_threads->run([job, sched_ptr] {
    StreamJob* w = job.get();
    StopFilter filter(w->request.stop);
    auto on_text = [&](std::string_view piece) {
      if (w->cancel) return false;
      std::string shown = filter.push(piece);
      std::lock_guard lock(w->mu);
      w->started = true;
      if (!shown.empty()) w->pending.push_back(std::move(shown));
      w->cv.notify_all();
      return !filter.stopped();
    };
    Result r;
    std::exception_ptr error;
    try {
      r = sched_ptr->complete(w->request.conversation, w->request.options, on_text);
    } catch (...) {
      error = std::current_exception();
    }
    std::lock_guard lock(w->mu);
    if (std::string tail = filter.finish(); !tail.empty()) w->pending.push_back(std::move(tail));
    w->stopped_by_string = filter.stopped();
    w->result = std::move(r);
    w->error = error;
    w->done = true;
    w->cv.notify_all();
  });
  if (!accepted) {
    leave();
    send_error(res, 429, "all answer threads are busy", "rate_limit_error", {}, "server_busy");
    res.set_header("Retry-After", "1");
    return;
  }
  if (!j->request.stream) {
    // Nothing is written until the answer is whole, so a client that hangs up is seen on its
    // socket: looked at every few milliseconds, well within a decode step.
    const ClientConnection client(req.remote_addr, req.remote_port, req.local_addr, req.local_port);
    {
      std::unique_lock lock(j->mu);
      while (!j->cv.wait_for(lock, std::chrono::milliseconds(10), [&] { return j->done; })) {
        if (!j->cancel && client.gone()) j->cancel = true;
      }
    }
    leave();
    if (j->error) {
      send_failure(res, classify(j->error, stopping));
    } else if (j->result.cancelled && !j->stopped_by_string) {
      send_error(res, 503, "the server is shutting down", "unavailable_error", {}, "shutting_down");
    } else {
      send_json(res, 200, completion_json(id, joined(j->pending), j->result, j->stopped_by_string));
    }
    return;
  }
  {
    std::unique_lock lock(j->mu);
    j->cv.wait(lock, [&] { return j->started || j->done; });
    if (j->done && (j->error || (j->result.cancelled && !j->stopped_by_string))) {
      // Refused before the first token: an ordinary error response, with its status.
      const std::exception_ptr error = j->error;
      lock.unlock();
      leave();
      if (error) {
        send_failure(res, classify(error, stopping));
      } else {
        send_error(res, 503, "the server is shutting down", "unavailable_error", {},
                   "shutting_down");
      }
      return;
    }
  }
  stream(std::move(job), id, res);
}

void HttpServer::Impl::stream(std::shared_ptr<StreamJob> job, const CompletionId& id,
                              httplib::Response& res) {
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");  // proxies: do not buffer the stream
  const bool usage = job->request.include_usage;
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, job, id, usage](size_t /*offset*/, httplib::DataSink& sink) {
        StreamJob& j = *job;
        auto send = [&](const std::string& event) {
          if (sink.write(event.data(), event.size())) return true;
          j.cancel = true;  // the client is gone: free its slot at the next token
          return false;
        };
        if (!send(sse_event(chunk_json(id, {{"role", "assistant"}, {"content", ""}}, {}, usage)))) {
          return false;
        }
        auto last_write = Clock::now();
        for (;;) {
          std::deque<std::string> pieces;
          bool done = false;
          {
            std::unique_lock lock(j.mu);
            j.cv.wait_for(lock, std::chrono::milliseconds(100),
                          [&] { return j.done || !j.pending.empty(); });
            pieces.swap(j.pending);
            done = j.done;
          }
          for (const std::string& text : pieces) {
            if (!send(sse_event(chunk_json(id, {{"content", text}}, {}, usage)))) return false;
            last_write = Clock::now();
          }
          if (pieces.empty() && !done && Clock::now() - last_write > std::chrono::seconds(1)) {
            // An SSE comment while nothing comes (a long prefill): finds clients that left.
            if (!send(": waiting\n\n")) return false;
            last_write = Clock::now();
          }
          if (done) break;
        }
        if (j.error || (j.result.cancelled && !j.stopped_by_string)) {
          const Failure f = j.error ? classify(j.error, stopping)
                                    : Failure{503,
                                              "the server is shutting down",
                                              "unavailable_error",
                                              {},
                                              "shutting_down"};
          send(sse_event(error_body(f.message, f.type, f.param, f.code)));
        } else {
          json last =
              chunk_json(id, json::object(), finish_reason(j.result, j.stopped_by_string), usage);
          last["timings"] = timings_json(j.result);
          if (!send(sse_event(last))) return false;
          if (usage && !send(sse_event(usage_chunk_json(id, j.result)))) return false;
        }
        if (!send("data: [DONE]\n\n")) return false;
        sink.done();
        return true;
      },
      [this, job](bool /*success*/) {
        job->cancel = true;  // a no-op when the answer is complete
        job->wait_done();
        leave();
      });
}

HttpServer::HttpServer(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  Impl& s = *impl_;
  for (std::string& origin : s.options.cors_origins) {
    origin = normalize_cors_origin(origin);
    s.any_origin = s.any_origin || origin == "*";
  }
  httplib::Server& h = s.http;
  const int threads = std::max(4, s.options.http_threads);
  h.new_task_queue = [threads] { return new HttpThreads(static_cast<size_t>(threads)); };
  h.set_tcp_nodelay(true);
  h.set_read_timeout(s.options.read_timeout_s, 0);
  h.set_write_timeout(10, 0);
  h.set_keep_alive_timeout(s.options.keep_alive_timeout_s);
  h.set_keep_alive_max_count(1000);
  h.set_payload_max_length(s.options.max_body_bytes);
  h.set_pre_routing_handler(
      [&s](const httplib::Request& req, httplib::Response& res) { return s.pre_route(req, res); });
  h.set_logger([&s](const httplib::Request&, const httplib::Response& res) {
    std::lock_guard lock(s.metrics_mu);
    ++s.responses_by_status[res.status];
  });
  h.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    send_error(res, 500, "internal error", "server_error");
  });
  h.set_error_handler(
      httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        if (res.status == 404) {
          send_error(res, 404, "no such endpoint: " + req.path, "not_found_error");
        } else if (res.status == 413) {
          send_error(res, 413, "the body is larger than --max-body", "invalid_request_error", {},
                     "body_too_large");
        } else if (res.status == 408) {
          send_error(res, 408, "the request came too slowly", "invalid_request_error", {},
                     "request_timeout");
        } else {
          const int status = res.status;
          send_error(res, status, "the request was refused (HTTP " + std::to_string(status) + ")",
                     status >= 500 ? "server_error" : "invalid_request_error");
        }
        return httplib::Server::HandlerResponse::Handled;
      }));

  h.Get("/health", [&s](const httplib::Request&, httplib::Response& res) { s.health(res); });
  h.Get("/v1/models", [&s](const httplib::Request&, httplib::Response& res) { s.models(res); });
  h.Get(R"(/v1/models/(.+))", [&s](const httplib::Request& req, httplib::Response& res) {
    s.model(req.matches[1].str(), res);
  });
  h.Get("/metrics", [&s](const httplib::Request&, httplib::Response& res) { s.metrics(res); });
  h.Post("/v1/chat/completions",
         [&s](const httplib::Request& req, httplib::Response& res,
              const httplib::ContentReader& reader) { s.complete(req, res, reader); });
  // The other methods on the known paths: 405 with the one allowed.
  auto refuse = [](const std::string& allowed) {
    return [allowed](const httplib::Request& req, httplib::Response& res) {
      send_error(res, 405, req.method + " is not allowed here (use " + allowed + ")",
                 "invalid_request_error", {}, "method_not_allowed");
      res.set_header("Allow", allowed);
    };
  };
  for (const char* path : {"/health", "/v1/models", R"(/v1/models/(.+))", "/metrics"}) {
    h.Post(path, refuse("GET"));
    h.Put(path, refuse("GET"));
    h.Delete(path, refuse("GET"));
    h.Patch(path, refuse("GET"));
  }
  h.Get("/v1/chat/completions", refuse("POST"));
  h.Put("/v1/chat/completions", refuse("POST"));
  h.Delete("/v1/chat/completions", refuse("POST"));
  h.Patch("/v1/chat/completions", refuse("POST"));
  // Static assets last: any other GET is one of them or 404.
  h.Get("/.*", [&s](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(s.static_mu);
    const auto it = s.assets.find(req.path);
    if (it == s.assets.end()) {
      send_error(res, 404, "no such endpoint: " + req.path, "not_found_error");
      return;
    }
    // The page runs only its own script and talks only to this server.
    res.set_header("Content-Security-Policy",
                   "default-src 'self'; script-src 'self'; style-src 'self'; "
                   "img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; "
                   "form-action 'self'; frame-ancestors 'none'");
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("Referrer-Policy", "no-referrer");
    // Revalidated every time (a new binary brings a new page), answered 304 when unchanged.
    res.set_header("Cache-Control", "no-cache");
    res.set_header("ETag", it->second.etag);
    if (req.get_header_value("If-None-Match") == it->second.etag) {
      res.status = 304;
      return;
    }
    res.status = 200;
    res.set_content(it->second.body, it->second.content_type.c_str());
  });
  if (s.options.webui) {
    for (const WebAsset& asset : webui_assets()) {
      add_static(asset.path, std::string(asset.body), asset.content_type);
    }
    // What the page must know before it sends: how large a request may be, whether to ask for
    // a key.
    add_static("/webui-config.json",
               dump({{"max_body_bytes", s.options.max_body_bytes},
                     {"api_key_required", !s.options.api_key.empty()}}),
               "application/json");
  }
}

HttpServer::~HttpServer() { stop(); }

std::string normalize_cors_origin(const std::string& origin) {
  if (origin == "*") return origin;
  std::string o = origin;
  for (char& c : o) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!o.empty() && o.back() == '/') o.pop_back();
  const size_t sep = o.find("://");
  const auto scheme_ok = [&] {
    if (sep == 0 || sep == std::string::npos || !std::isalpha(static_cast<unsigned char>(o[0])))
      return false;
    return o.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789+.-") >= sep;
  };
  const std::string host = sep == std::string::npos ? std::string() : o.substr(sep + 3);
  if (!scheme_ok() || host.empty() || host.find_first_of("/?#@ \t\r\n") != std::string::npos ||
      o.find_first_of("\x7f") != std::string::npos || std::any_of(o.begin(), o.end(), [](char c) {
        return static_cast<unsigned char>(c) < 0x20;
      })) {
    throw Error("--cors-origin: " + quote_input(origin) +
                " is not an origin (scheme://host[:port], as a browser sends it, or *)");
  }
  return o;
}

int HttpServer::bind() {
  Impl& s = *impl_;
  if (s.options.port == 0) {
    s.port = s.http.bind_to_any_port(s.options.host);
  } else {
    s.port = s.http.bind_to_port(s.options.host, s.options.port) ? s.options.port : -1;
  }
  if (s.port <= 0) {
    throw Error("cannot listen on " + s.options.host + ":" + std::to_string(s.options.port) +
                " (in use, or not an address of this machine)");
  }
  return s.port;
}

void HttpServer::start() {
  Impl& s = *impl_;
  if (s.port <= 0) bind();
  s.listener = std::thread([&s] { s.http.listen_after_bind(); });
}

void HttpServer::attach(Engine& engine, Scheduler& scheduler) {
  impl_->engine = &engine;
  impl_->load_time = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  impl_->answer_threads = std::make_unique<AnswerThreads>(
      static_cast<size_t>(std::max(1, impl_->options.answer_threads)));
  impl_->scheduler = &scheduler;
}

void HttpServer::drain() {
  Impl& s = *impl_;
  s.stopping = true;
  if (!s.wait_idle(std::chrono::milliseconds(s.options.shutdown_grace_ms))) {
    if (Scheduler* sched = s.scheduler.load()) sched->shutdown();
    s.wait_idle(std::chrono::milliseconds(2000));
  }
}

void HttpServer::stop() {
  Impl& s = *impl_;
  std::lock_guard lock(s.stop_mu);
  if (s.stopped) return;
  s.stopped = true;
  drain();
  s.http.stop();
  if (s.listener.joinable()) s.listener.join();
}

int HttpServer::port() const { return impl_->port; }

std::string HttpServer::url() const {
  return "http://" + impl_->options.host + ":" + std::to_string(impl_->port);
}

void HttpServer::add_static(const std::string& path, std::string body, std::string content_type) {
  std::lock_guard lock(impl_->static_mu);
  char etag[24];
  std::snprintf(etag, sizeof etag, "\"%016zx\"", std::hash<std::string>{}(body));
  impl_->assets[path] = {std::move(body), std::move(content_type), etag};
}

}  // namespace smolvlm::server
