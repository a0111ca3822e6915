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

const char kServeHelp[] =
    "usage: smolvlm serve -m MODEL [options]\n"
    "\n"
    "Serves OpenAI's chat-completions API (POST /v1/chat/completions, streaming or not), with\n"
    "GET /v1/models, /health and /metrics, until SIGINT or SIGTERM.\n"
    "\n"
    "  -m, --model DIR          a Hugging Face SmolVLM2 folder, a text GGUF (with --mmproj) or a\n"
    "                           folder with both GGUFs (as for ask)\n"
    "      --mmproj FILE        the vision projector GGUF that goes with a text GGUF\n"
    "      --vision-precision P f32 (default) or bf16\n"
    "      --host ADDR          the address to listen on (default 127.0.0.1)\n"
    "      --port N             the port (default 8080; 0 picks a free one and prints it)\n"
    "      --parallel N         conversations answered at once, each with its own KV cache\n"
    "                           (default 4)\n"
    "      --queue Q            requests that may wait for a slot; more get 429 (default 16)\n"
    "      --api-key KEY        require 'Authorization: Bearer KEY' (also SMOLVLM_API_KEY);\n"
    "                           /health stays public\n"
    "  -c, --context N          tokens each conversation may hold (default: the model's)\n"
    "  -t, --threads N          worker threads (default: all cores)\n"
    "      --image-cache MB     picture features kept for reuse (default 256)\n"
    "      --max-body MB        the largest request body (default 20)\n"
    "      --max-images N       pictures per request (default 16)\n"
    "      --max-picture-pixels N  refuse pictures of more pixels, from their header\n"
    "                           (default 178956970, Pillow's decompression-bomb limit)\n"
    "  -n, --max-tokens N       answer length when a request names none (default 1024)\n"
    "      --allow-remote-images  fetch http(s):// picture URLs (off by default)\n"
    "      --allow-local-images DIR  accept paths of pictures and videos inside DIR\n"
    "      --alias NAME         the model id /v1/models lists (default: the model's folder name)\n"
    "      --http-threads N     connections served at once (default 256)\n"
    "      --read-timeout S     seconds a client may take to send its request (default 10)\n"
    "      --cors-origin ORIGIN let web pages of ORIGIN (scheme://host[:port], or * for any)\n"
    "                           call the API from a browser; repeatable (default: none)\n"
    "      --no-webui           nothing at GET / (the place of the web page)\n";

std::mutex g_stop_mu;
std::condition_variable g_stop_cv;
bool g_stop = false;
int g_signal = 0;

}  // namespace

int run_serve(int argc, char** argv) {
  std::string model_dir;
  LoadOptions load;
  load.cache_dir = cache_dir_from_environment();
  SchedulerOptions sched;
  server::ServerOptions http;
  if (const char* key = std::getenv("SMOLVLM_API_KEY")) http.api_key = key;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kServeHelp, stdout);
      return 0;
    } else if (a == "-m" || a == "--model") {
      model_dir = flag_value(argc, argv, i);
    } else if (a == "--mmproj") {
      load.mmproj = flag_value(argc, argv, i);
    } else if (a == "--vision-precision") {
      load.vision_precision = parse_vision_precision(flag_value(argc, argv, i));
    } else if (a == "--host") {
      http.host = flag_value(argc, argv, i);
    } else if (a == "--port") {
      http.port = parse_int(a, flag_value(argc, argv, i), 0, 65535);
    } else if (a == "--parallel") {
      sched.slots = parse_int(a, flag_value(argc, argv, i), 1, 256);
    } else if (a == "--queue") {
      sched.queue = parse_int(a, flag_value(argc, argv, i), 0, 1 << 16);
    } else if (a == "--api-key") {
      http.api_key = flag_value(argc, argv, i);
    } else if (a == "-c" || a == "--context") {
      load.context = parse_int(a, flag_value(argc, argv, i), 16, 1 << 20);
    } else if (a == "-t" || a == "--threads") {
      load.threads = parse_int(a, flag_value(argc, argv, i), 1, 256);
    } else if (a == "--image-cache") {
      sched.media_cache_bytes =
          static_cast<int64_t>(parse_int(a, flag_value(argc, argv, i), 0, 1 << 20)) << 20;
    } else if (a == "--max-body") {
      http.max_body_bytes = static_cast<size_t>(parse_int(a, flag_value(argc, argv, i), 1, 1 << 12))
                            << 20;
    } else if (parse_picture_flag(argc, argv, i)) {
    } else if (a == "--max-images") {
      http.policy.max_pictures = parse_int(a, flag_value(argc, argv, i), 0, 1024);
    } else if (a == "-n" || a == "--max-tokens") {
      http.policy.default_max_tokens = parse_int(a, flag_value(argc, argv, i), 1, 1 << 20);
    } else if (a == "--allow-remote-images") {
      http.policy.allow_remote_images = true;
    } else if (a == "--allow-local-images") {
      const std::string dir = flag_value(argc, argv, i);
      std::error_code ec;
      if (!std::filesystem::is_directory(dir, ec)) {
        throw Error("--allow-local-images: " + quote_input(dir) + " is not a folder");
      }
      http.policy.local_media_dir = std::filesystem::canonical(dir, ec).string();
    } else if (a == "--alias") {
      http.model_name = flag_value(argc, argv, i);
    } else if (a == "--http-threads") {
      http.http_threads = parse_int(a, flag_value(argc, argv, i), 4, 4096);
    } else if (a == "--read-timeout") {
      http.read_timeout_s = parse_int(a, flag_value(argc, argv, i), 1, 3600);
    } else if (a == "--cors-origin") {
      http.cors_origins.push_back(server::normalize_cors_origin(flag_value(argc, argv, i)));
    } else if (a == "--no-webui") {
      http.webui = false;
    } else {
      throw UsageError("unknown option " + quote_input(a));
    }
  }
  if (model_dir.empty()) throw UsageError("-m MODEL is required");
  http.policy.max_remote_bytes = http.max_body_bytes;
  http.answer_threads = sched.slots + sched.queue + 4;  // the scheduler decides 429 first
  bool named = false;
  for (int i = 1; i < argc; ++i) named = named || std::string(argv[i]) == "--alias";
  if (!named) {
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
  auto engine = Engine::load(model_dir, load);
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
