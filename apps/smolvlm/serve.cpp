// smolvlm serve: an OpenAI-compatible HTTP server (src/server) over one loaded model.
#include <malloc.h>
#include <pthread.h>
#include <smolvlm/serving.h>
#include <smolvlm/smolvlm.h>

#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>

#include "cli.h"
#include "server/server.h"
#include "util/input_text.h"

namespace smolvlm::cli {

namespace {

const char kServeUsage[] =
    "usage: smolvlm serve -m MODEL [options]\n"
    "\n"
    "Serves OpenAI's chat-completions API (POST /v1/chat/completions, streaming or not), with\n"
    "GET /v1/models, /health and /metrics, until SIGINT or SIGTERM.\n"
    "\n";

std::mutex g_stop_mu;
std::condition_variable g_stop_cv;
bool g_stop = false;
int g_signal = 0;

// What serve's command line sets.
struct ServeSettings {
  LoadFlags load;
  SchedulerOptions sched;
  server::ServerOptions http;
  bool named = false;  // --alias given
};

// serve's flags: the load flags, then the server's own.
FlagTable serve_flags(ServeSettings& s) {
  FlagTable flags;
  add_load_flags(flags, s.load);
  flags["-c"].help = "tokens each conversation may hold (default: the model's)";
  flags.add({"--host"}, "ADDR", "the address to listen on (default 127.0.0.1)",
            [&](const std::string&, const std::string& v) { s.http.host = v; });
  flags.add(
      {"--port"}, "N", "the port (default 8080; 0 picks a free one and prints it)",
      [&](const std::string& a, const std::string& v) { s.http.port = parse_int(a, v, 0, 65535); });
  flags.add(
      {"--parallel"}, "N",
      "conversations answered at once, each with its own KV cache\n(default 4)",
      [&](const std::string& a, const std::string& v) { s.sched.slots = parse_int(a, v, 1, 256); });
  flags.add({"--queue"}, "Q", "requests that may wait for a slot; more get 429 (default 16)",
            [&](const std::string& a, const std::string& v) {
              s.sched.queue = parse_int(a, v, 0, 1 << 16);
            });
  flags.add({"--api-key"}, "KEY",
            "require 'Authorization: Bearer KEY' (also SMOLVLM_API_KEY);\n/health stays public",
            [&](const std::string&, const std::string& v) { s.http.api_key = v; });
  flags.add({"--image-cache"}, "MB", "picture features kept for reuse (default 256)",
            [&](const std::string& a, const std::string& v) {
              s.sched.media_cache_bytes = static_cast<int64_t>(parse_int(a, v, 0, 1 << 20)) << 20;
            });
  flags.add({"--max-body"}, "MB", "the largest request body (default 20)",
            [&](const std::string& a, const std::string& v) {
              s.http.max_body_bytes = static_cast<size_t>(parse_int(a, v, 1, 1 << 12)) << 20;
            });
  flags.add({"--max-images"}, "N", "pictures per request (default 16)",
            [&](const std::string& a, const std::string& v) {
              s.http.policy.max_pictures = parse_int(a, v, 0, 1024);
            });
  flags.add({"-n", "--max-tokens"}, "N", "answer length when a request names none (default 1024)",
            [&](const std::string& a, const std::string& v) {
              s.http.policy.default_max_tokens = parse_int(a, v, 1, 1 << 20);
            });
  flags.add(
      {"--allow-remote-images"}, "", "fetch http(s):// picture URLs (off by default)",
      [&](const std::string&, const std::string&) { s.http.policy.allow_remote_images = true; });
  flags.add({"--allow-local-images"}, "DIR", "accept paths of pictures and videos inside DIR",
            [&](const std::string&, const std::string& dir) {
              std::error_code ec;
              if (!std::filesystem::is_directory(dir, ec)) {
                throw Error("--allow-local-images: " + quote_input(dir) + " is not a folder");
              }
              s.http.policy.local_media_dir = std::filesystem::canonical(dir, ec).string();
            });
  flags.add({"--alias"}, "NAME", "the model id /v1/models lists (default: the model's folder name)",
            [&](const std::string&, const std::string& v) {
              s.http.model_name = v;
              s.named = true;
            });
  flags.add({"--http-threads"}, "N", "connections served at once (default 256)",
            [&](const std::string& a, const std::string& v) {
              s.http.http_threads = parse_int(a, v, 4, 4096);
            });
  flags.add({"--read-timeout"}, "S", "seconds a client may take to send its request (default 10)",
            [&](const std::string& a, const std::string& v) {
              s.http.read_timeout_s = parse_int(a, v, 1, 3600);
            });
  flags.add({"--cors-origin"}, "ORIGIN",
            "let web pages of ORIGIN (scheme://host[:port], or * for any)\n"
            "call the API from a browser; repeatable (default: none)",
            [&](const std::string&, const std::string& v) {
              s.http.cors_origins.push_back(server::normalize_cors_origin(v));
            });
  flags.add({"--no-webui"}, "", "nothing at GET / (the place of the web page)",
            [&](const std::string&, const std::string&) { s.http.webui = false; });
  return flags;
}

}  // namespace

int run_serve(int argc, char** argv) {
  ServeSettings settings;
  if (const char* key = std::getenv("SMOLVLM_API_KEY")) settings.http.api_key = key;
  const FlagTable flags = serve_flags(settings);
  if (!flags.parse(argc, argv)) {
    std::fputs((kServeUsage + flags.help()).c_str(), stdout);
    return 0;
  }
  const LoadFlags& load = settings.load;
  const SchedulerOptions& sched = settings.sched;
  server::ServerOptions& http = settings.http;
  if (load.model.empty()) throw UsageError("-m MODEL is required");
  const std::string& model_dir = load.model;
  http.policy.max_remote_bytes = http.max_body_bytes;
  if (!settings.named) {
    const std::filesystem::path p(model_dir);
    http.model_name = (p.has_filename() ? p.filename() : p.parent_path().filename()).string();
    if (http.model_name.empty()) http.model_name = "smolvlm";
  }

  // glibc's malloc, tuned for a long-running server with many HTTP threads: few arenas (each
  // thread that allocates would otherwise get one of up to 8 per core, each keeping its own
  // fragmented peak) and a fixed mmap threshold (big buffers, a request's KV cache or picture
  // tiles, go back to the system when freed instead of raising the threshold).
  mallopt(M_ARENA_MAX, 2);
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);

  // SIGINT and SIGTERM go to one thread (sigwait); every other thread, the HTTP ones included,
  // starts with them blocked.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);  // a client that hangs up is an error return, not a signal
  std::thread signal_waiter([&stop_signals] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    std::lock_guard lock(g_stop_mu);
    g_stop = true;
    g_signal = sig;
    g_stop_cv.notify_all();
  });
  signal_waiter.detach();

  server::HttpServer server(http);
  server.bind();
  server.start();
  std::printf("smolvlm serve: listening on %s (loading the model)\n", server.url().c_str());
  std::fflush(stdout);
  auto engine = Engine::load(model_dir, load.options);
  Scheduler scheduler(*engine, sched);
  server.attach(*engine, scheduler);
  std::printf("smolvlm serve: ready on %s (model '%s', %d slots, %s)\n", server.url().c_str(),
              http.model_name.c_str(), sched.slots, engine->info().summary().c_str());
  std::fflush(stdout);

  {
    std::unique_lock lock(g_stop_mu);
    g_stop_cv.wait(lock, [] { return g_stop; });
  }
  std::printf("smolvlm serve: %s, stopping\n", g_signal == SIGTERM ? "SIGTERM" : "SIGINT");
  std::fflush(stdout);
  server.drain();  // no new requests; the ones in flight finished or cancelled
  const SchedulerStats st = scheduler.stats();
  std::printf("smolvlm serve: stopped after %lld answers (%lld tokens generated)\n",
              static_cast<long long>(st.requests), static_cast<long long>(st.generated_tokens));
  std::fflush(stdout);
  std::fflush(stderr);
  // Nothing is in flight; idle keep-alive connections would hold the HTTP threads for their
  // timeout, so the process ends here rather than joining them.
  std::_Exit(0);
}

}  // namespace smolvlm::cli
