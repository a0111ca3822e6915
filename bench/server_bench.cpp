// Speed of an OpenAI-compatible server (smolvlm serve, or llama.cpp's llama-server for a side by
// side): it talks to the server at --url and prints, as a table or JSON (--json):
//   - time to first token of one streamed request about a picture (cold, nothing cached);
//   - a follow-up question about the same picture (the dialogue so far + a new turn): its TTFT;
//   - decode tokens/s of one stream, and the aggregate of 4 parallel streams;
//   - with --ask "smolvlm ask -m MODEL ...": the same first request through `smolvlm ask --json`
//     (vision + prefill ms, no HTTP), in the same run.
// bench/server_bench.sh starts both servers on the same GGUF pair and runs this against each.
//
//   build/smolvlm_server_bench --url http://127.0.0.1:8080 --image P.png [-n 64] [--json]
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "server/request.h"

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    std::fprintf(stderr, "server_bench: cannot read '%s'\n", path.c_str());
    std::exit(1);
  }
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

struct Timed {
  double ttft_ms = 0, total_ms = 0;
  int tokens = 0;  // completion tokens (usage), or content chunks when the server gives none
  std::string text;
  double decode_tok_s() const {
    const double ms = total_ms - ttft_ms;
    return ms > 0 && tokens > 1 ? (tokens - 1) * 1000.0 / ms : 0;
  }
};

struct Target {
  std::string host;
  int port = 0;
};

Target parse_url(const std::string& url) {
  const std::string prefix = "http://";
  if (url.rfind(prefix, 0) != 0) {
    std::fprintf(stderr, "server_bench: --url must be http://HOST:PORT\n");
    std::exit(2);
  }
  const std::string rest = url.substr(prefix.size());
  const size_t colon = rest.find(':');
  if (colon == std::string::npos) return {rest, 80};
  return {rest.substr(0, colon), std::atoi(rest.c_str() + colon + 1)};
}

// One streamed request; the clock starts before the request is sent.
Timed stream(const Target& t, const json& messages, int max_tokens, Clock::time_point* first) {
  httplib::Client c(t.host, t.port);
  c.set_read_timeout(600, 0);
  json body = {{"model", "bench"},         {"messages", messages},
               {"max_tokens", max_tokens}, {"temperature", 0},
               {"stream", true},           {"stream_options", {{"include_usage", true}}}};
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/chat/completions";
  req.set_header("Content-Type", "application/json");
  req.body = body.dump();
  Timed r;
  std::string buffer;
  int chunks = 0;
  const auto t0 = Clock::now();
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    buffer.append(data, n);
    size_t end;
    while ((end = buffer.find("\n\n")) != std::string::npos) {
      const std::string event = buffer.substr(0, end);
      buffer.erase(0, end + 2);
      if (event.rfind("data: ", 0) != 0 || event == "data: [DONE]") continue;
      const json j = json::parse(event.substr(6), nullptr, false);
      if (j.is_discarded()) continue;
      if (j.contains("usage") && j["usage"].is_object()) {
        r.tokens = j["usage"].value("completion_tokens", 0);
      }
      if (j.contains("choices") && !j["choices"].empty() &&
          j["choices"][0]["delta"].contains("content") &&
          j["choices"][0]["delta"]["content"].is_string()) {
        const std::string piece = j["choices"][0]["delta"]["content"];
        if (piece.empty()) continue;
        if (chunks++ == 0) {
          r.ttft_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
          if (first) *first = Clock::now();
        }
        r.text += piece;
      }
    }
    return true;
  };
  httplib::Response res;
  httplib::Error error;
  if (!c.send(req, res, error) || res.status != 200) {
    std::fprintf(stderr, "server_bench: request failed (HTTP %d, %s)\n", res.status,
                 httplib::to_string(error).c_str());
    std::exit(1);
  }
  r.total_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  if (r.tokens == 0) r.tokens = chunks;
  return r;
}

json picture_turn(const std::string& uri, const std::string& question) {
  return {{"role", "user"},
          {"content",
           {{{"type", "image_url"}, {"image_url", {{"url", uri}}}},
            {{"type", "text"}, {"text", question}}}}};
}

}  // namespace

int main(int argc, char** argv) {
  std::string url = "http://127.0.0.1:8080", image, ask;
  int max_tokens = 64;
  bool as_json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "server_bench: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--url") {
      url = value();
    } else if (a == "--image") {
      image = value();
    } else if (a == "-n") {
      max_tokens = std::max(2, std::atoi(value().c_str()));
    } else if (a == "--ask") {
      ask = value();
    } else if (a == "--json") {
      as_json = true;
    } else {
      std::fprintf(stderr,
                   "usage: smolvlm_server_bench --url http://HOST:PORT --image P.png [-n N] "
                   "[--ask 'smolvlm ask -m MODEL'] [--json]\n");
      return 2;
    }
  }
  if (image.empty()) {
    std::fprintf(stderr, "server_bench: --image is required\n");
    return 2;
  }
  const Target target = parse_url(url);
  const std::string bytes = read_file(image);
  const bool jpeg = bytes.compare(0, 3, "\xFF\xD8\xFF") == 0;
  const std::string uri = std::string(jpeg ? "data:image/jpeg;base64," : "data:image/png;base64,") +
                          smolvlm::server::encode_base64(bytes);

  json out;
  // 1. The first request about the picture (cold).
  const json first_messages = json::array({picture_turn(uri, "Describe the image.")});
  const Timed first = stream(target, first_messages, max_tokens, nullptr);
  out["first_ttft_ms"] = first.ttft_ms;
  out["one_stream_decode_tok_s"] = first.decode_tok_s();
  out["first_tokens"] = first.tokens;
  // 2. A follow-up about the same picture: the dialogue so far plus a new question.
  json follow = first_messages;
  follow.push_back({{"role", "assistant"}, {"content", first.text}});
  follow.push_back({{"role", "user"}, {"content", "What colours does it have?"}});
  const Timed second = stream(target, follow, max_tokens, nullptr);
  out["follow_up_ttft_ms"] = second.ttft_ms;
  // 3. Four parallel streams (text only, different questions): aggregate decode speed, from the
  //    first first-token to the last stream's end.
  const char* questions[] = {"Tell me a story about a cat.", "Explain how rain forms.",
                             "List ten fruits and their colours.", "Describe a busy city street."};
  std::vector<Timed> results(4);
  std::vector<Clock::time_point> firsts(4);
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&, k] {
      results[k] = stream(target, json::array({{{"role", "user"}, {"content", questions[k]}}}),
                          max_tokens, &firsts[k]);
    });
  }
  const auto t_start = Clock::now();
  for (auto& t : threads) t.join();
  const auto t_end = Clock::now();
  const auto decode_start = *std::min_element(firsts.begin(), firsts.end());
  int tokens = 0;
  for (const Timed& r : results) tokens += std::max(0, r.tokens - 1);
  const double decode_s = std::chrono::duration<double>(t_end - decode_start).count();
  out["four_streams_decode_tok_s"] = decode_s > 0 ? tokens / decode_s : 0;
  out["four_streams_wall_s"] = std::chrono::duration<double>(t_end - t_start).count();
  // 4. The same first request through `smolvlm ask --json` (no HTTP, a fresh process).
  if (!ask.empty()) {
    const std::string cmd = ask + " -i '" + image + "' -p 'Describe the image.' -n " +
                            std::to_string(max_tokens) + " --json";
    FILE* p = popen(cmd.c_str(), "r");
    std::string text;
    char buf[4096];
    size_t n;
    while (p && (n = fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, n);
    if (p) pclose(p);
    const json a = json::parse(text, nullptr, false);
    if (a.is_object() && a.contains("timings")) {
      out["ask_ttft_ms"] =
          a["timings"]["vision_ms"].get<double>() + a["timings"]["prefill_ms"].get<double>();
      out["ask_decode_tok_s"] = a["timings"]["decode_tokens_per_s"];
      out["ask_same_text"] = a["text"] == first.text;
    } else {
      std::fprintf(stderr, "server_bench: '%s' gave no JSON\n", cmd.c_str());
    }
  }
  if (as_json) {
    std::puts(out.dump(2).c_str());
    return 0;
  }
  std::printf("server %s, picture %s, %d tokens per answer\n", url.c_str(), image.c_str(),
              max_tokens);
  std::printf("  first request TTFT          %9.1f ms\n", out["first_ttft_ms"].get<double>());
  std::printf("  follow-up, same picture     %9.1f ms\n", out["follow_up_ttft_ms"].get<double>());
  std::printf("  decode, 1 stream            %9.1f tok/s\n",
              out["one_stream_decode_tok_s"].get<double>());
  std::printf("  decode, 4 streams (sum)     %9.1f tok/s\n",
              out["four_streams_decode_tok_s"].get<double>());
  if (out.contains("ask_ttft_ms")) {
    std::printf("  smolvlm ask: vision+prefill %9.1f ms, decode %.1f tok/s, same text: %s\n",
                out["ask_ttft_ms"].get<double>(), out["ask_decode_tok_s"].get<double>(),
                out["ask_same_text"].get<bool>() ? "yes" : "no");
  }
  return 0;
}
