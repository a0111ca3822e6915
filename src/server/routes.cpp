// HttpServer's routes: CORS, the API key, /health, /v1/models, /metrics, the web page, and the
// refusals (404, 405, 503 while stopping) in OpenAI's error shape.
#include <algorithm>
#include <cctype>
#include <cstdio>

#include "server/openai_format.h"
#include "server/server_state.h"
#include "util/input_text.h"

namespace smolvlm::server {

using nlohmann::json;

void send_json(HttpExchange& x, int status, const json& body) {
  x.respond(status, dump(body), "application/json");
}

void send_error(HttpExchange& x, int status, const std::string& message, const std::string& type,
                const std::string& param, const std::string& code) {
  send_json(x, status, error_body(message, type, param, code));
}

namespace {

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

bool is_public(const std::string& path) {
  return path == "/health" || (path.rfind("/v1/", 0) != 0 && path != "/metrics");
}

}  // namespace

void HttpServer::Impl::enter() {
  std::lock_guard lock(flight_mu);
  ++in_flight;
}

void HttpServer::Impl::leave() {
  std::lock_guard lock(flight_mu);
  --in_flight;
  flight_cv.notify_all();
}

bool HttpServer::Impl::wait_idle(std::chrono::milliseconds limit) {
  std::unique_lock lock(flight_mu);
  return flight_cv.wait_for(lock, limit, [&] { return in_flight == 0; });
}

// CORS, before anything else: the answer's headers for the request's origin, and (unless
// headers_only) the preflight, a browser's OPTIONS, which carries no API key, answered here.
// True when it answered.
bool HttpServer::Impl::cors(HttpExchange& x, bool headers_only) {
  const std::string origin = x.header("Origin");
  bool allowed = false;
  if (!origin.empty() && !options.cors_origins.empty()) {
    std::string lower = origin;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    allowed = any_origin || std::find(options.cors_origins.begin(), options.cors_origins.end(),
                                      lower) != options.cors_origins.end();
  }
  if (allowed) {
    x.add_header("Access-Control-Allow-Origin", any_origin ? "*" : origin);
    // Scripts may read these besides the always-readable ones.
    x.add_header("Access-Control-Expose-Headers", "x-request-id, Retry-After");
  }
  // The answer depends on the Origin header: caches must keep one per origin.
  if (!options.cors_origins.empty() && !any_origin) x.add_header("Vary", "Origin");
  if (headers_only || x.method() != "OPTIONS") return false;
  const bool preflight = !origin.empty() && x.has_header("Access-Control-Request-Method");
  if (preflight && !allowed) {
    send_error(x, 403,
               "the origin " + quote_input(origin) +
                   " may not call this server from a browser (start it with --cors-origin "
                   "ORIGIN to allow one)",
               "permission_error", {}, "origin_not_allowed");
    return true;
  }
  x.add_header("Allow", "GET, POST, OPTIONS");
  if (preflight) {
    x.add_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    // The headers the page asked for (SDKs add their own x-... ones) when they are header
    // names; Authorization and Content-Type in any case.
    const std::string asked = x.header("Access-Control-Request-Headers");
    const bool names =
        asked.size() <= 1024 && asked.find_first_not_of(
                                    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWX"
                                    "YZ0123456789-_, ") == std::string::npos;
    x.add_header("Access-Control-Allow-Headers", names && !asked.empty()
                                                     ? "Authorization, Content-Type, " + asked
                                                     : std::string("Authorization, Content-Type"));
    x.add_header("Access-Control-Max-Age", "600");
  }
  x.respond(204, {}, {});
  return true;
}

void HttpServer::Impl::refuse(HttpExchange& x, int status, const std::string& message,
                              const std::string& code) {
  cors(x, /*headers_only=*/true);  // a page of an allowed origin may read why
  send_error(x, status, message, status >= 500 ? "server_error" : "invalid_request_error", {},
             code);
}

void HttpServer::Impl::route(HttpExchange& x) {
  if (cors(x)) return;
  const std::string& path = x.path();
  if (stopping && path != "/health") {
    return send_error(x, 503, "the server is shutting down", "unavailable_error", {},
                      "shutting_down");
  }
  if (!options.api_key.empty() && !is_public(path)) {
    const std::string auth = x.header("Authorization");
    const std::string prefix = "Bearer ";
    const bool ok = auth.size() > prefix.size() && auth.compare(0, prefix.size(), prefix) == 0 &&
                    same_key(auth.substr(prefix.size()), options.api_key);
    if (!ok) {
      return send_error(x, 401, "missing or wrong API key (Authorization: Bearer KEY)",
                        "authentication_error", {}, "invalid_api_key");
    }
  }
  const std::string& method = x.method();
  const bool get = method == "GET" || method == "HEAD";
  const std::string model_prefix = "/v1/models/";
  const bool model_path = path.size() > model_prefix.size() && path.rfind(model_prefix, 0) == 0;
  const bool get_only =
      path == "/health" || path == "/v1/models" || path == "/metrics" || model_path;
  const bool post_only = path == "/v1/chat/completions";
  if ((get_only && !get) || (post_only && method != "POST")) {
    // The other methods on the known paths: 405 with the one allowed.
    const std::string allowed = get_only ? "GET" : "POST";
    x.add_header("Allow", allowed);
    return send_error(x, 405, method + " is not allowed here (use " + allowed + ")",
                      "invalid_request_error", {}, "method_not_allowed");
  }
  if (path == "/health") return health(x);
  if (path == "/v1/models") return models(x);
  if (model_path) return model(x, path.substr(model_prefix.size()));
  if (path == "/metrics") return metrics(x);
  if (post_only) return complete(x);
  if (get) return asset(x);
  send_error(x, 404, "no such endpoint: " + path, "not_found_error");
}

void HttpServer::Impl::health(HttpExchange& x) {
  if (stopping) {
    json body = error_body("the server is shutting down", "unavailable_error");
    body["status"] = "stopping";
    send_json(x, 503, body);
  } else if (!scheduler.load()) {
    json body = error_body("loading the model", "unavailable_error");
    body["status"] = "loading";
    send_json(x, 503, body);
  } else {
    send_json(x, 200, {{"status", "ok"}});
  }
}

bool HttpServer::Impl::ready(HttpExchange& x) {
  if (scheduler.load()) return true;
  send_error(x, 503, "the model is still loading", "unavailable_error", {}, "loading");
  return false;
}

json HttpServer::Impl::model_json() {
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

void HttpServer::Impl::models(HttpExchange& x) {
  if (!ready(x)) return;
  send_json(x, 200, {{"object", "list"}, {"data", json::array({model_json()})}});
}

// GET /v1/models/{id}: the one model, or OpenAI's 404 for any other id.
void HttpServer::Impl::model(HttpExchange& x, const std::string& id) {
  if (!ready(x)) return;
  if (id != options.model_name) {
    return send_error(x, 404,
                      "the model " + quote_input(id) + " does not exist (this server has '" +
                          options.model_name + "')",
                      "invalid_request_error", "model", "model_not_found");
  }
  send_json(x, 200, model_json());
}

void HttpServer::Impl::metrics(HttpExchange& x) {
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
  x.respond(200, std::move(out), "text/plain; version=0.0.4");
}

// Any other GET: one of the static assets (the web page), or 404.
void HttpServer::Impl::asset(HttpExchange& x) {
  std::unique_lock lock(static_mu);
  const auto it = assets.find(x.path());
  if (it == assets.end()) {
    lock.unlock();
    return send_error(x, 404, "no such endpoint: " + x.path(), "not_found_error");
  }
  const Asset a = it->second;
  lock.unlock();
  // The page runs only its own script and talks only to this server.
  x.add_header("Content-Security-Policy",
               "default-src 'self'; script-src 'self'; style-src 'self'; "
               "img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; "
               "form-action 'self'; frame-ancestors 'none'");
  x.add_header("X-Content-Type-Options", "nosniff");
  x.add_header("Referrer-Policy", "no-referrer");
  // Revalidated every time (a new binary brings a new page), answered 304 when unchanged.
  x.add_header("Cache-Control", "no-cache");
  x.add_header("ETag", a.etag);
  if (x.header("If-None-Match") == a.etag) return x.respond(304, {}, {});
  x.respond(200, a.body, a.content_type);
}

}  // namespace smolvlm::server
