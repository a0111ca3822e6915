// Load test of `smolvlm serve`: N concurrent clients x M requests each, mixing text, pictures,
// repeated pictures, two pictures, multi-turn follow-ups, streamed and whole answers, and ~10% of
// streamed requests whose client hangs up mid-answer. It starts the server itself (the CLI as a
// child, on a free port) and checks:
//   - every completed answer equals its own sequential greedy reference (Engine::generate here),
//     so no answer got another's tokens;
//   - every request got exactly one answer (or was hung up), and the server counted as many;
//   - the server's RSS after the last request is within 10% of its RSS after the first 40;
// then prints p50/p99 latency. Exit status 0 when all holds.
//
//   build/smolvlm_server_load --smolvlm build/smolvlm -m tests/fixtures/tiny-smolvlm2
//                             --clients 8 --requests 5
#include <httplib.h>
#include <signal.h>
#include <smolvlm/smolvlm.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "server/request.h"

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Args {
  std::string smolvlm = "build/smolvlm", model, images;
  int clients = 8, requests = 5, hangup_percent = 10, max_tokens = 16, parallel = 4, warmup = 40;
  int threads = 0, http_threads = 0;
  bool rss_check = true;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "smolvlm_server_load: %s\n"
               "usage: smolvlm_server_load -m MODEL [--smolvlm PATH] [--images DIR] [--clients N]\n"
               "       [--requests M] [--hangup-percent P] [--max-tokens T] [--parallel S]\n"
               "       [--warmup W] [-t THREADS] [--http-threads H] [--no-rss-check]\n",
               why);
  std::exit(2);
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// One kind of request: the JSON messages, the same conversation for the engine, the answer.
struct Scenario {
  std::string name;
  json messages;
  smolvlm::Conversation conversation;
  std::string reference;
};

struct Picture {
  std::string path, uri;
};

std::vector<Scenario> make_scenarios(smolvlm::Engine& engine, const std::vector<Picture>& pics,
                                     int max_tokens) {
  using smolvlm::Content;
  std::vector<Scenario> out;
  auto text = [](const std::string& t) { return json{{"type", "text"}, {"text", t}}; };
  auto image = [](const Picture& p) {
    return json{{"type", "image_url"}, {"image_url", {{"url", p.uri}}}};
  };
  const char* questions[] = {"Describe the image.", "What colour is it?", "Count the shapes."};
  for (const char* q : {"Tell me a story.", "What is the capital of France?", "Say hello."}) {
    out.push_back({std::string("text: ") + q,
                   {{{"role", "user"}, {"content", q}}},
                   {{"user", {Content::text(q)}}},
                   {}});
  }
  for (size_t i = 0; i < pics.size(); ++i) {
    // The same picture with different questions: repeated pictures (the feature cache's case).
    for (int k = 0; k < (i == 0 ? 3 : 1); ++k) {
      out.push_back({"picture " + std::to_string(i) + ": " + questions[k],
                     {{{"role", "user"}, {"content", {image(pics[i]), text(questions[k])}}}},
                     {{"user", {Content::image_file(pics[i].path), Content::text(questions[k])}}},
                     {}});
    }
  }
  if (pics.size() >= 2) {
    out.push_back(
        {"two pictures",
         {{{"role", "user"}, {"content", {image(pics[0]), image(pics[1]), text("Compare them.")}}}},
         {{"user",
           {Content::image_file(pics[0].path), Content::image_file(pics[1].path),
            Content::text("Compare them.")}}},
         {}});
  }
  smolvlm::GenerationOptions o;
  o.max_new_tokens = max_tokens;
  for (Scenario& s : out) s.reference = engine.generate(s.conversation, o).text;
  // Multi-turn follow-ups on the first answers (what a chat client sends for turn two).
  const size_t firsts = out.size();
  for (size_t i = 0; i < firsts; i += 2) {
    Scenario f = out[i];
    f.name += " + follow-up";
    f.messages.push_back({{"role", "assistant"}, {"content", f.reference}});
    f.messages.push_back({{"role", "user"}, {"content", "Tell me more."}});
    f.conversation.push_back({"assistant", {Content::text(f.reference)}});
    f.conversation.push_back({"user", {Content::text("Tell me more.")}});
    f.reference = engine.generate(f.conversation, o).text;
    out.push_back(std::move(f));
  }
  return out;
}

// The server as a child process; its port read from its "ready on" line.
struct ServerProcess {
  pid_t pid = -1;
  int port = 0;
  ServerProcess(const Args& a) {
    int out[2];
    if (pipe(out) != 0) usage("pipe failed");
    const std::string parallel = std::to_string(a.parallel);
    const std::string queue = std::to_string(a.clients * 4 + 16);
    std::vector<std::string> args = {a.smolvlm, "serve",      "-m",     a.model,   "--port",
                                     "0",       "--parallel", parallel, "--queue", queue};
    if (a.threads > 0) {
      args.push_back("-t");
      args.push_back(std::to_string(a.threads));
    }
    if (a.http_threads > 0) {
      args.push_back("--http-threads");
      args.push_back(std::to_string(a.http_threads));
    }
    std::vector<char*> argv;
    for (auto& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    pid = fork();
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);  // the server dies with this program, however it ends
      dup2(out[1], 1);
      close(out[0]);
      close(out[1]);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(out[1]);
    std::string text;
    char buf[4096];
    const std::string marker = "ready on http://127.0.0.1:";
    const auto deadline = Clock::now() + std::chrono::seconds(120);
    while (text.find(marker) == std::string::npos ||
           text.find('\n', text.find(marker)) == std::string::npos) {
      const ssize_t n = read(out[0], buf, sizeof buf);
      if (n <= 0 || Clock::now() > deadline) {
        std::fprintf(stderr, "smolvlm_server_load: the server did not start:\n%s\n", text.c_str());
        std::exit(1);
      }
      text.append(buf, static_cast<size_t>(n));
    }
    port = std::atoi(text.c_str() + text.find(marker) + marker.size());
    // Keep draining its output so it never blocks on a full pipe.
    std::thread([fd = out[0]] {
      char b[4096];
      while (read(fd, b, sizeof b) > 0) {
      }
      close(fd);
    }).detach();
  }
  int64_t rss_kb() const {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(f, line)) {
      if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6);
    }
    return -1;
  }
  int stop() {
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
};

struct Outcome {
  bool ok = false, hung_up = false;
  std::string text, error;
  double ms = 0;
};

Outcome send_request(int port, const Scenario& s, int max_tokens, bool stream, bool hang_up) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(120, 0);
  json body = {{"messages", s.messages}, {"max_tokens", max_tokens}, {"stream", stream}};
  Outcome o;
  const auto t0 = Clock::now();
  if (!stream) {
    auto res = c.Post("/v1/chat/completions", body.dump(), "application/json");
    o.ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (!res) {
      o.error = "no response";
    } else if (res->status != 200) {
      o.error = "HTTP " + std::to_string(res->status) + ": " + res->body;
    } else {
      o.text = json::parse(res->body)["choices"][0]["message"]["content"].get<std::string>();
      o.ok = true;
    }
    return o;
  }
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/chat/completions";
  req.set_header("Content-Type", "application/json");
  req.body = body.dump();
  std::string raw;
  bool done = false;
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    raw.append(data, n);
    // Hang up once some content has come (mid-answer).
    if (hang_up && raw.find("\"content\":\"") != std::string::npos &&
        raw.find("\"content\":\"\"") != raw.rfind("\"content\":\"")) {
      o.hung_up = true;
      return false;
    }
    return true;
  };
  httplib::Response res;
  httplib::Error error;
  c.send(req, res, error);
  o.ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  if (o.hung_up) return o;
  if (res.status != 200) {
    o.error = "HTTP " + std::to_string(res.status) + " " + res.body;
    return o;
  }
  size_t pos = 0;
  while (true) {
    const size_t end = raw.find("\n\n", pos);
    if (end == std::string::npos) break;
    const std::string event = raw.substr(pos, end - pos);
    pos = end + 2;
    if (event.rfind("data: ", 0) != 0) continue;
    if (event == "data: [DONE]") {
      if (done) o.error = "[DONE] twice";
      done = true;
      continue;
    }
    const json j = json::parse(event.substr(6));
    if (j.contains("error")) o.error = j.dump();
    if (j.contains("choices") && !j["choices"].empty() &&
        j["choices"][0]["delta"].contains("content")) {
      o.text += j["choices"][0]["delta"]["content"].get<std::string>();
    }
  }
  if (!done && o.error.empty()) o.error = "the stream ended without [DONE]";
  o.ok = o.error.empty();
  return o;
}

double metric(int port, const std::string& name) {
  httplib::Client c("127.0.0.1", port);
  auto res = c.Get("/metrics");
  if (!res) return -1;
  std::istringstream in(res->body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + " ", 0) == 0) return std::atof(line.c_str() + name.size() + 1);
  }
  return -1;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string f = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage((f + " needs a value").c_str());
      return argv[++i];
    };
    auto number = [&] {
      const std::string v = value();
      char* end = nullptr;
      const long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || n < 0 || n > 1000000) usage((f + ": bad number").c_str());
      return static_cast<int>(n);
    };
    if (f == "--smolvlm") {
      a.smolvlm = value();
    } else if (f == "-m" || f == "--model") {
      a.model = value();
    } else if (f == "--images") {
      a.images = value();
    } else if (f == "--clients") {
      a.clients = std::max(1, number());
    } else if (f == "--requests") {
      a.requests = std::max(1, number());
    } else if (f == "--hangup-percent") {
      a.hangup_percent = number();
    } else if (f == "--max-tokens") {
      a.max_tokens = std::max(2, number());
    } else if (f == "--parallel") {
      a.parallel = std::max(1, number());
    } else if (f == "--warmup") {
      a.warmup = number();
    } else if (f == "-t" || f == "--threads") {
      a.threads = number();
    } else if (f == "--no-rss-check") {
      a.rss_check = false;  // for sanitizer builds, whose allocators keep freed memory
    } else if (f == "--http-threads") {
      a.http_threads = number();
    } else {
      usage(("unknown option " + f).c_str());
    }
  }
  if (a.model.empty()) usage("-m MODEL is required");
  if (a.images.empty()) a.images = a.model + "/images";
  std::vector<Picture> pics;
  for (const char* name : {"img_a.png", "img_b.png", "img_c.png", "img_d.png"}) {
    const std::string p = a.images + "/" + name;
    if (std::filesystem::exists(p))
      pics.push_back({p, "data:image/png;base64," + smolvlm::server::encode_base64(read_file(p))});
  }
  signal(SIGPIPE, SIG_IGN);

  smolvlm::LoadOptions load;
  load.threads = a.threads;
  auto engine = smolvlm::Engine::load(a.model, load);
  const std::vector<Scenario> scenarios = make_scenarios(*engine, pics, a.max_tokens);
  engine.reset();
  std::printf("%zu scenarios (%zu pictures), references computed\n", scenarios.size(), pics.size());

  ServerProcess server(a);
  std::printf("server pid %d on port %d; %d clients x %d requests\n", server.pid, server.port,
              a.clients, a.requests);
  std::fflush(stdout);

  std::mutex mu;
  std::vector<double> latencies;
  std::vector<std::string> failures;
  std::atomic<int> finished{0}, hung_up{0}, completed{0};
  std::atomic<int64_t> rss_after_warmup{-1};
  auto client = [&](int c) {
    for (int k = 0; k < a.requests; ++k) {
      const uint32_t h = static_cast<uint32_t>(c * 2654435761u + k * 40503u);
      const Scenario& s = scenarios[(c * 7 + k * 3) % scenarios.size()];
      const bool stream = (c + k) % 2 == 0;
      const bool hang_up = stream && (h >> 8) % 100 < static_cast<uint32_t>(a.hangup_percent);
      const Outcome o = send_request(server.port, s, a.max_tokens, stream, hang_up);
      {
        std::lock_guard lock(mu);
        if (o.hung_up) {
          ++hung_up;
        } else if (!o.ok) {
          failures.push_back(s.name + ": " + o.error);
        } else if (o.text != s.reference) {
          failures.push_back(s.name + (stream ? " (streamed)" : "") + ": got '" + o.text +
                             "', expected '" + s.reference + "'");
        } else {
          ++completed;
          latencies.push_back(o.ms);
        }
      }
      if (++finished == a.warmup) rss_after_warmup = server.rss_kb();
    }
  };
  const auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < a.clients; ++c) threads.emplace_back(client, c);
  for (auto& t : threads) t.join();
  const double wall_s = std::chrono::duration<double>(Clock::now() - t0).count();

  // Hung-up answers are cancelled at their next token; wait until the server has counted all.
  const int total = a.clients * a.requests;
  double counted = -1;
  for (int i = 0; i < 200; ++i) {
    counted = metric(server.port, "smolvlm_requests_total");
    if (counted >= total && metric(server.port, "smolvlm_busy_slots") == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  const int64_t rss_end = server.rss_kb();
  const int status = server.stop();

  bool ok = failures.empty();
  for (const std::string& f : failures) std::printf("FAIL %s\n", f.c_str());
  if (completed + hung_up != total) {
    std::printf("FAIL %d completed + %d hung up != %d requests\n", completed.load(), hung_up.load(),
                total);
    ok = false;
  }
  if (counted != total) {
    std::printf("FAIL the server counted %.0f answers for %d requests\n", counted, total);
    ok = false;
  }
  if (a.rss_check && rss_after_warmup > 0 && rss_end > rss_after_warmup * 11 / 10) {
    std::printf("FAIL RSS grew from %lld kB (after %d requests) to %lld kB\n",
                static_cast<long long>(rss_after_warmup.load()), a.warmup,
                static_cast<long long>(rss_end));
    ok = false;
  }
  if (status != 0) {
    std::printf("FAIL the server exited with status %d on SIGTERM\n", status);
    ok = false;
  }
  std::printf(
      "%d requests: %d answered (all equal to their references), %d hung up mid-stream; "
      "%.1f s, %.1f requests/s\n"
      "latency p50 %.1f ms, p99 %.1f ms; server RSS %lld kB after %d requests, %lld kB at the "
      "end\n%s\n",
      total, completed.load(), hung_up.load(), wall_s, total / wall_s, percentile(latencies, 0.50),
      percentile(latencies, 0.99), static_cast<long long>(rss_after_warmup.load()), a.warmup,
      static_cast<long long>(rss_end), ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
