// HttpServer's insides, shared by its three parts: server.cpp (life cycle), routes.cpp (routes,
// CORS, auth, health, models, metrics, the web page) and answer.cpp (the answer path).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "server/http_transport.h"
#include "server/server.h"

namespace smolvlm::server {

// An OpenAI error answer: status, {"error": {...}}.
void send_error(HttpExchange& x, int status, const std::string& message, const std::string& type,
                const std::string& param = {}, const std::string& code = {});
void send_json(HttpExchange& x, int status, const nlohmann::json& body);

struct HttpServer::Impl {
  ServerOptions options;
  std::unique_ptr<HttpTransport> transport;
  std::atomic<Engine*> engine{nullptr};
  std::atomic<Scheduler*> scheduler{nullptr};
  std::atomic<bool> stopping{false};
  std::mutex stop_mu;  // one stop() at a time
  bool stopped = false;
  bool any_origin = false;  // cors_origins holds "*"

  std::mutex flight_mu;
  std::condition_variable flight_cv;
  int in_flight = 0;  // completions being answered

  std::mutex metrics_mu;
  std::map<int, int64_t> responses_by_status;
  int64_t load_time = 0;

  struct Asset {
    std::string body, content_type, etag;
  };
  std::mutex static_mu;
  std::map<std::string, Asset> assets;  // by path

  explicit Impl(ServerOptions o) : options(std::move(o)) {}

  void enter();
  void leave();
  bool wait_idle(std::chrono::milliseconds limit);

  // routes.cpp
  void route(HttpExchange& x);
  void refuse(HttpExchange& x, int status, const std::string& message, const std::string& code);
  bool cors(HttpExchange& x, bool headers_only = false);  // true when it answered (a preflight)
  void health(HttpExchange& x);
  bool ready(HttpExchange& x);
  nlohmann::json model_json();
  void models(HttpExchange& x);
  void model(HttpExchange& x, const std::string& id);
  void metrics(HttpExchange& x);
  void asset(HttpExchange& x);

  // answer.cpp
  void complete(HttpExchange& x);
};

}  // namespace smolvlm::server
