// The HTTP server of `smolvlm serve`: OpenAI's chat-completions API (and /v1/models, /health,
// /metrics) over its own HTTP transport (http_transport.h), answering through a Scheduler. It
// listens before the model is loaded (/health says 503 until attach()), so a supervisor can watch
// the loading. The interface of the smolvlm_server library, declared for apps/smolvlm/serve.cpp.
//
//   smolvlm::server::HttpServer http({.host = "127.0.0.1", .port = 0});
//   int port = http.bind();  // 0: a free port
//   http.start();            // serves on its own thread
//   auto engine = Engine::load(...);
//   Scheduler scheduler(*engine, {...});
//   http.attach(*engine, scheduler);
//   ...
//   http.stop();             // 503 to new requests, in-flight ones finished or cancelled
#pragma once

#include <smolvlm/serving.h>
#include <smolvlm/smolvlm.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "server/request.h"

namespace smolvlm::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                           // 0: any free port (bind() says which)
  std::string api_key;                       // non-empty: "Authorization: Bearer KEY" required
  size_t max_body_bytes = size_t{20} << 20;  // larger bodies get 413 before they are read
  RequestPolicy policy;                      // pictures from URLs and files, limits
  std::string model_name = "smolvlm";        // the id /v1/models lists
  bool webui = true;                         // false: nothing at GET / (404)
  int http_threads = 256;   // connections served at once; idle ones hold a thread until timeout
  int read_timeout_s = 10;  // a client sending slower than this gets 408
  int keep_alive_timeout_s = 5;  // an idle keep-alive connection is closed after this
  int shutdown_grace_ms = 1500;  // stop(): in-flight answers may finish for this long, then
                                 // they are cancelled
  // Web pages of these origins ("scheme://host[:port]", or "*": any) may call the API from a
  // browser (CORS). Empty: only the server's own page, as browsers do by default.
  std::vector<std::string> cors_origins;
};

// A --cors-origin value as compared with browsers' Origin headers: "*", or scheme://host[:port]
// in lower case without a trailing '/'. Throws smolvlm::Error (one line, naming the value) for
// anything else, "null" included (any sandboxed page or file:// sends it).
std::string normalize_cors_origin(const std::string& origin);

class HttpServer {
 public:
  explicit HttpServer(ServerOptions options);
  ~HttpServer();  // stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds host:port; returns the port (the chosen one for port 0). Throws smolvlm::Error.
  int bind();
  // Serves on a background thread (after bind()).
  void start();
  // The model is ready: completions are answered, /health turns 200. Both must outlive stop().
  void attach(Engine& engine, Scheduler& scheduler);
  // Stops taking requests (503), lets in-flight answers finish for shutdown_grace_ms, cancels the
  // rest, then closes the listening socket and joins the HTTP threads. Idempotent.
  void stop();
  // The first two steps of stop() only: no new requests, none left in flight. The HTTP threads
  // still run (a process that exits next need not wait for idle keep-alive connections).
  void drain();

  int port() const;
  std::string url() const;  // http://host:port

  // The hook for static assets (the web page): GET `path` answers `body`.
  void add_static(const std::string& path, std::string body, std::string content_type);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace smolvlm::server
