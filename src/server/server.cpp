// HttpServer's life cycle (see server.h): the transport set up with the server's limits, the
// model attached, the graceful stop. The routes are in routes.cpp, the answer path in answer.cpp,
// connections and HTTP itself in http_transport.cpp.
#include "server/server.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <functional>

#include "server/openai_format.h"
#include "server/server_state.h"
#include "server/webui_assets.h"
#include "util/input_text.h"

namespace smolvlm::server {

HttpServer::HttpServer(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  Impl& s = *impl_;
  for (std::string& origin : s.options.cors_origins) {
    origin = normalize_cors_origin(origin);
    s.any_origin = s.any_origin || origin == "*";
  }
  TransportOptions t;
  t.host = s.options.host;
  t.port = s.options.port;
  t.max_connection_threads = s.options.http_threads;
  t.read_timeout_s = s.options.read_timeout_s;
  t.keep_alive_timeout_s = s.options.keep_alive_timeout_s;
  t.max_body_bytes = s.options.max_body_bytes;
  HttpHandlers handlers;
  handlers.request = [&s](HttpExchange& x) {
    try {
      s.route(x);
    } catch (...) {
      if (!x.answered()) send_error(x, 500, "internal error", "server_error");
    }
  };
  handlers.refuse = [&s](HttpExchange& x, int status, const std::string& message,
                         const std::string& code) { s.refuse(x, status, message, code); };
  handlers.answered = [&s](int status) {
    std::lock_guard lock(s.metrics_mu);
    ++s.responses_by_status[status];
  };
  s.transport = std::make_unique<HttpTransport>(std::move(t), std::move(handlers));
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

int HttpServer::bind() { return impl_->transport->bind(); }

void HttpServer::start() { impl_->transport->start(); }

void HttpServer::attach(Engine& engine, Scheduler& scheduler) {
  impl_->engine = &engine;
  impl_->load_time = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
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
  s.transport->stop();
}

int HttpServer::port() const { return impl_->transport->port(); }

std::string HttpServer::url() const {
  return "http://" + impl_->options.host + ":" + std::to_string(port());
}

void HttpServer::add_static(const std::string& path, std::string body, std::string content_type) {
  std::lock_guard lock(impl_->static_mu);
  char etag[24];
  std::snprintf(etag, sizeof etag, "\"%016zx\"", std::hash<std::string>{}(body));
  impl_->assets[path] = {std::move(body), std::move(content_type), etag};
}

}  // namespace smolvlm::server
