// The HTTP API of `smolvlm serve`, against HttpServer objects on free ports (in this process) and
// the CLI as a child process, with httplib's client and raw sockets for the hostile cases.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <smolvlm/serving.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli_runner.h"
#include "formats/mapped_file.h"
#include "loader/model.h"
#include "raw_socket.h"
#include "server/server.h"
#include "test_support.h"

namespace smolvlm::server {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

std::string image_path(const std::string& name) { return test::tiny_model() + "/images/" + name; }
// A fixture picture as a 24-bit BMP (bottom-up BGR rows padded to 4 bytes): the same pixels.
std::string bmp_of(const std::string& name) {
  const Image im = Image::from_file(image_path(name));
  const size_t stride = (static_cast<size_t>(im.width) * 3 + 3) & ~size_t{3};
  std::string b(54 + stride * static_cast<size_t>(im.height), '\0');
  auto put = [&](size_t at, uint32_t v, int n) {
    for (int i = 0; i < n; ++i) b[at + i] = static_cast<char>((v >> (8 * i)) & 255);
  };
  b[0] = 'B';
  b[1] = 'M';
  put(2, static_cast<uint32_t>(b.size()), 4);
  put(10, 54, 4);
  put(14, 40, 4);
  put(18, static_cast<uint32_t>(im.width), 4);
  put(22, static_cast<uint32_t>(im.height), 4);
  put(26, 1, 2);
  put(28, 24, 2);
  for (int y = 0; y < im.height; ++y) {
    const size_t row = 54 + stride * static_cast<size_t>(im.height - 1 - y);
    for (int x = 0; x < im.width; ++x) {
      for (int c = 0; c < 3; ++c) b[row + 3 * x + c] = static_cast<char>(im.pixel(x, y)[2 - c]);
    }
  }
  return b;
}
std::string data_uri(const std::string& name) {
  return "data:image/png;base64," + encode_base64(read_text_file(image_path(name)));
}

json image_part(const std::string& url) {
  return {{"type", "image_url"}, {"image_url", {{"url", url}}}};
}
json text_part(const std::string& text) { return {{"type", "text"}, {"text", text}}; }

// A server on a free port over its own engine and scheduler.
struct Served {
  std::unique_ptr<Engine> engine;
  std::unique_ptr<Scheduler> scheduler;
  std::unique_ptr<HttpServer> http;
  int port = 0;
  Served(ServerOptions options, LoadOptions load = {}, SchedulerOptions sched = {}) {
    options.port = 0;
    http = std::make_unique<HttpServer>(options);
    port = http->bind();
    http->start();
    engine = Engine::load(test::tiny_model(), load);
    scheduler = std::make_unique<Scheduler>(*engine, sched);
    http->attach(*engine, *scheduler);
  }
  ~Served() { http->stop(); }
  httplib::Client client(const std::string& key = {}) const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(30, 0);
    if (!key.empty()) c.set_bearer_token_auth(key.c_str());
    return c;
  }
};

ServerOptions main_options() {
  ServerOptions o;
  o.model_name = "tiny";
  o.policy.max_pictures = 3;
  o.policy.local_media_dir = std::filesystem::canonical(test::tiny_model() + "/images").string();
  o.policy.allow_remote_images = true;
  o.keep_alive_timeout_s = 1;
  o.read_timeout_s = 1;
  return o;
}

Served& main_server() {
  static Served s(main_options());
  return s;
}

// The reference: the same conversation through Engine::generate on an engine of its own.
Result reference(const Conversation& conv, int max_new_tokens,
                 std::vector<std::string>* pieces = nullptr) {
  static std::unique_ptr<Engine> engine = Engine::load(test::tiny_model());
  GenerationOptions o;
  o.max_new_tokens = max_new_tokens;
  return engine->generate(conv, o, [&](std::string_view piece) {
    if (pieces && !piece.empty()) pieces->emplace_back(piece);
    return true;
  });
}

httplib::Result post(httplib::Client& c, const json& body) {
  return c.Post("/v1/chat/completions", body.dump(), "application/json");
}

// A streamed answer, parsed: every event's JSON, and whether [DONE] came last.
struct Stream {
  int status = 0;
  std::vector<json> events;
  bool done = false;
  std::string text;  // the deltas joined
  std::string raw;
};

Stream post_stream(int port, const json& body, const std::string& key = {}) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(30, 0);
  if (!key.empty()) c.set_bearer_token_auth(key.c_str());
  Stream s;
  auto res = c.Post("/v1/chat/completions", body.dump(), "application/json");
  if (!res) return s;
  s.status = res->status;
  s.raw = res->body;
  size_t pos = 0;
  while (true) {
    const size_t end = s.raw.find("\n\n", pos);
    if (end == std::string::npos) break;
    const std::string event = s.raw.substr(pos, end - pos);
    pos = end + 2;
    if (event.rfind("data: ", 0) != 0) continue;
    const std::string data = event.substr(6);
    if (data == "[DONE]") {
      s.done = true;
      continue;
    }
    EXPECT_FALSE(s.done) << "an event after [DONE]";
    s.events.push_back(json::parse(data));
    const json& e = s.events.back();
    if (e.contains("choices") && !e["choices"].empty() &&
        e["choices"][0]["delta"].contains("content")) {
      s.text += e["choices"][0]["delta"]["content"].get<std::string>();
    }
  }
  EXPECT_EQ(pos, s.raw.size()) << "a truncated event";
  return s;
}

json chat_body(const json& messages, int max_tokens) {
  return {{"model", "tiny"}, {"messages", messages}, {"max_tokens", max_tokens}};
}

// Raw socket helpers for the clients httplib's client will not imitate.
int connect_to(int port) { return test::connect_to(port, 5); }
void send_all(int fd, const std::string& text) {
  ASSERT_EQ(send(fd, text.data(), text.size(), MSG_NOSIGNAL), static_cast<ssize_t>(text.size()));
}
std::string read_some(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof buf, 0)) > 0) {
    out.append(buf, static_cast<size_t>(n));
    if (out.find("\r\n\r\n") != std::string::npos) break;
  }
  return out;
}

void expect_error(const httplib::Result& res, int status, const std::string& param = {}) {
  ASSERT_TRUE(res) << "no response";
  EXPECT_EQ(res->status, status) << res->body;
  const json j = json::parse(res->body);
  ASSERT_TRUE(j.contains("error")) << res->body;
  for (const char* key : {"message", "type", "param", "code"}) {
    EXPECT_TRUE(j["error"].contains(key)) << key;
  }
  EXPECT_TRUE(j["error"]["message"].is_string());
  if (!param.empty()) {
    EXPECT_EQ(j["error"]["param"], param) << res->body;
  }
}

void expect_healthy(const Served& s) {
  auto c = s.client();
  auto res = post(c, chat_body({{{"role", "user"}, {"content", "Still there?"}}}, 3));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
}

TEST(ServerApi, HealthModelsMetricsAndRoot) {
  auto c = main_server().client();
  auto health = c.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(json::parse(health->body)["status"], "ok");
  auto models = c.Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(models->status, 200);
  const json m = json::parse(models->body);
  EXPECT_EQ(m["object"], "list");
  EXPECT_EQ(m["data"][0]["id"], "tiny");
  EXPECT_EQ(m["data"][0]["meta"]["context"], main_server().engine->context_length());
  auto root = c.Get("/");
  ASSERT_TRUE(root);
  EXPECT_EQ(root->status, 200);
  EXPECT_NE(root->body.find("/v1/chat/completions"), std::string::npos);
  expect_error(c.Get("/v1/nothing"), 404);
  expect_error(c.Post("/v1/nothing", "{}", "application/json"), 404);
  auto wrong = c.Get("/v1/chat/completions");
  expect_error(wrong, 405);
  EXPECT_EQ(wrong->get_header_value("Allow"), "POST");
  expect_error(c.Post("/v1/models", "", "text/plain"), 405);

  ASSERT_TRUE(post(c, chat_body({{{"role", "user"}, {"content", "Count me"}}}, 2)));
  auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  for (const char* name :
       {"smolvlm_http_responses_total{status=\"200\"}",
        "smolvlm_http_responses_total{status=\"404\"}",
        "smolvlm_http_responses_total{status=\"405\"}", "smolvlm_prompt_tokens_total",
        "smolvlm_generated_tokens_total", "smolvlm_queue_depth", "smolvlm_busy_slots",
        "smolvlm_image_cache_hits_total", "smolvlm_image_cache_misses_total",
        "smolvlm_decode_tokens_per_second"}) {
    EXPECT_NE(metrics->body.find(name), std::string::npos) << name;
  }
}

TEST(ServerApi, AnswersEqualEngineGenerateStreamedOrNot) {
  struct Case {
    std::string name;
    json messages;
    Conversation conv;
  };
  const std::vector<Case> cases = {
      {"text",
       {{{"role", "user"}, {"content", "Tell me a story."}}},
       {{"user", {Content::text("Tell me a story.")}}}},
      {"picture",
       {{{"role", "user"},
         {"content", {image_part(data_uri("img_b.png")), text_part("Describe the image.")}}}},
       {{"user",
         {Content::image_file(image_path("img_b.png")), Content::text("Describe the image.")}}}},
      // Another format, the same pixels: the same answer (the format is read from the bytes).
      {"a BMP picture",
       {{{"role", "user"},
         {"content",
          {image_part("data:image/bmp;base64," + encode_base64(bmp_of("img_b.png"))),
           text_part("Describe the image.")}}}},
       {{"user",
         {Content::image_file(image_path("img_b.png")), Content::text("Describe the image.")}}}},
      {"two pictures, system, multi-turn",
       {{{"role", "system"}, {"content", "Be brief."}},
        {{"role", "user"},
         {"content",
          {image_part(data_uri("img_a.png")), text_part("What is this?"),
           image_part("img_c.png")}}},
        {{"role", "assistant"}, {"content", "A picture."}},
        {{"role", "user"}, {"content", {text_part("And the colours?")}}}},
       {{"system", {Content::text("Be brief.")}},
        {"user",
         {Content::image_file(image_path("img_a.png")), Content::text("What is this?"),
          Content::image_file(image_path("img_c.png"))}},
        {"assistant", {Content::text("A picture.")}},
        {"user", {Content::text("And the colours?")}}}},
  };
  auto c = main_server().client();
  for (const Case& k : cases) {
    SCOPED_TRACE(k.name);
    const Result ref = reference(k.conv, 12);
    auto res = post(c, chat_body(k.messages, 12));
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    const json j = json::parse(res->body);
    EXPECT_EQ(j["object"], "chat.completion");
    EXPECT_EQ(j["model"], "tiny");
    EXPECT_EQ(j["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
    EXPECT_TRUE(j["created"].is_number_integer());
    EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
    EXPECT_EQ(j["choices"][0]["message"]["content"], ref.text);
    EXPECT_EQ(j["choices"][0]["finish_reason"], ref.stopped_by_eos ? "stop" : "length");
    EXPECT_EQ(j["usage"]["completion_tokens"], static_cast<int>(ref.tokens.size()));
    EXPECT_EQ(j["usage"]["prompt_tokens"], ref.metrics.prompt_tokens);
    EXPECT_EQ(j["usage"]["total_tokens"],
              ref.metrics.prompt_tokens + static_cast<int>(ref.tokens.size()));
    EXPECT_TRUE(j["usage"]["prompt_tokens_details"]["cached_tokens"].is_number_integer());
    EXPECT_EQ(j["timings"]["image_tiles"], ref.metrics.image_tiles);
    for (const char* key :
         {"vision_ms", "prefill_ms", "decode_ms", "decode_tokens_per_s", "image_cache_hits"}) {
      EXPECT_TRUE(j["timings"][key].is_number()) << key;
    }

    json body = chat_body(k.messages, 12);
    body["stream"] = true;
    body["stream_options"] = {{"include_usage", true}};
    const Stream s = post_stream(main_server().port, body);
    ASSERT_EQ(s.status, 200) << s.raw;
    EXPECT_TRUE(s.done);
    EXPECT_EQ(s.text, ref.text);
    ASSERT_GE(s.events.size(), 3u);
    EXPECT_EQ(s.events.front()["choices"][0]["delta"]["role"], "assistant");
    const json& last_choice = s.events[s.events.size() - 2];
    EXPECT_EQ(last_choice["choices"][0]["finish_reason"], ref.stopped_by_eos ? "stop" : "length");
    const json& usage = s.events.back();
    EXPECT_TRUE(usage["choices"].empty());
    EXPECT_EQ(usage["usage"]["completion_tokens"], static_cast<int>(ref.tokens.size()));
    for (size_t i = 0; i + 1 < s.events.size(); ++i) {
      EXPECT_TRUE(s.events[i]["usage"].is_null());
      EXPECT_EQ(s.events[i]["id"], s.events.front()["id"]);
      EXPECT_EQ(s.events[i]["object"], "chat.completion.chunk");
      if (i + 2 < s.events.size()) {
        EXPECT_TRUE(s.events[i]["choices"][0]["finish_reason"].is_null());
      }
      // No chunk carries a broken character (the server would have sent U+FFFD).
      EXPECT_EQ(s.events[i].dump().find("\\ufffd"), std::string::npos);
    }
  }
}

TEST(ServerApi, StreamsAsTokensAreMadeAndWithoutUsageByDefault) {
  json body = chat_body({{{"role", "user"}, {"content", "Go on and on."}}}, 20);
  body["stream"] = true;
  const Stream s = post_stream(main_server().port, body);
  ASSERT_EQ(s.status, 200);
  // The role chunk, one chunk for each piece of text the engine gave (however slow this reader
  // is: the server never merges tokens' text), the finish chunk; no usage chunk.
  std::vector<std::string> pieces;
  EXPECT_EQ(s.text, reference({{"user", {Content::text("Go on and on.")}}}, 20, &pieces).text);
  ASSERT_GE(pieces.size(), 4u);
  ASSERT_EQ(s.events.size(), pieces.size() + 2);
  for (size_t i = 0; i < pieces.size(); ++i) {
    EXPECT_EQ(s.events[i + 1]["choices"][0]["delta"]["content"], pieces[i]) << i;
  }
  EXPECT_FALSE(s.events.back()["choices"].empty());
  EXPECT_FALSE(s.events.back().contains("usage"));
}

TEST(ServerApi, StopStringsCutTheAnswer) {
  const Conversation conv = {{"user", {Content::text("Tell me a story.")}}};
  const std::string full = reference(conv, 24).text;
  ASSERT_GT(full.size(), 12u);
  // A stop string from the middle of the greedy answer: the text ends right before it.
  const std::string stop = full.substr(full.size() / 2, 4);
  const std::string expected = full.substr(0, full.find(stop));
  json body = chat_body({{{"role", "user"}, {"content", "Tell me a story."}}}, 24);
  body["stop"] = {"NEVER-SEEN", stop};
  auto c = main_server().client();
  auto res = post(c, body);
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const json j = json::parse(res->body);
  EXPECT_EQ(j["choices"][0]["message"]["content"], expected);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  body["stream"] = true;
  const Stream s = post_stream(main_server().port, body);
  EXPECT_EQ(s.text, expected);
  EXPECT_EQ(s.events.back()["choices"][0]["finish_reason"], "stop");
}

TEST(ServerApi, PicturesFromUrlsAndAllowedFiles) {
  const Conversation conv = {
      {"user", {Content::image_file(image_path("img_d.png")), Content::text("What is it?")}}};
  const std::string expected = reference(conv, 8).text;
  // A local web server holding the picture, for the remote URL.
  httplib::Server pics;
  const std::string png = read_text_file(image_path("img_d.png"));
  pics.Get("/d.png", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(png, "image/png");
  });
  pics.Get("/big.png", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(std::string(30 << 20, 'x'), "image/png");
  });
  const int pics_port = pics.bind_to_any_port("127.0.0.1");
  std::thread pics_thread([&] { pics.listen_after_bind(); });
  auto c = main_server().client();
  const std::string base = "http://127.0.0.1:" + std::to_string(pics_port);
  for (const std::string& url :
       {base + "/d.png", std::string("img_d.png"), "file://" + image_path("img_d.png")}) {
    SCOPED_TRACE(url);
    auto res = post(
        c, chat_body({{{"role", "user"}, {"content", {image_part(url), text_part("What is it?")}}}},
                     8));
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    EXPECT_EQ(json::parse(res->body)["choices"][0]["message"]["content"], expected);
  }
  const std::string param = "messages[0].content[0].image_url.url";
  for (const std::string& url :
       {base + "/missing.png", base + "/big.png", std::string("../config.json"),
        test::tiny_model() + "/config.json", std::string("ftp://127.0.0.1/d.png")}) {
    SCOPED_TRACE(url);
    expect_error(post(c, chat_body({{{"role", "user"}, {"content", {image_part(url)}}}}, 4)), 400,
                 param);
  }
  pics.stop();
  pics_thread.join();
}

TEST(ServerApi, BadRequestsGet400) {
  auto c = main_server().client();
  auto raw = [&](const std::string& body) {
    return c.Post("/v1/chat/completions", body, "application/json");
  };
  expect_error(raw("{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}"), 400);  // truncated
  expect_error(raw("not json"), 400);
  expect_error(raw(""), 400);
  expect_error(raw(std::string(100000, '[') + std::string(100000, ']')), 400);
  expect_error(raw("{\"messages\":[{\"role\":\"user\",\"content\":\"\xc3\x28\"}]}"), 400);
  expect_error(raw(R"({"messages":"hello"})"), 400, "messages");
  expect_error(raw(R"({"messages":[{"role":"user","content":"x"}],"max_tokens":"9"})"), 400,
               "max_tokens");
  expect_error(raw(R"({"messages":[{"role":"user","content":"x"}],"n":3})"), 400, "n");
  const std::string param = "messages[0].content[0].image_url.url";
  expect_error(
      post(c,
           chat_body({{{"role", "user"}, {"content", {image_part("data:image/png;base64,@@@@")}}}},
                     4)),
      400, param);
  expect_error(post(c, chat_body({{{"role", "user"},
                                   {"content",
                                    {image_part("data:image/png;base64," +
                                                encode_base64("no picture format at all"))}}}},
                                 4)),
               400, param);
  // A GIF's signature on bytes that are not a GIF: refused by the decoder.
  expect_error(
      post(c, chat_body({{{"role", "user"},
                          {"content",
                           {image_part("data:image/gif;base64," + encode_base64("GIF89a broken")),
                            text_part("x")}}}},
                        4)),
      400);
  // PNG's signature on bytes that are not a PNG: refused by the decoder (400, not a crash).
  std::string broken = read_text_file(image_path("img_d.png")).substr(0, 60);
  expect_error(post(c, chat_body({{{"role", "user"},
                                   {"content",
                                    {image_part("data:image/png;base64," + encode_base64(broken)),
                                     text_part("x")}}}},
                                 4)),
               400);
  const json img = image_part(data_uri("img_d.png"));
  expect_error(post(c, chat_body({{{"role", "user"}, {"content", {img, img, img, img}}}}, 4)), 400,
               "messages[0].content[3]");
  // A prompt longer than the context.
  std::string huge;
  for (int i = 0; i < 12000; ++i) huge += "word ";
  auto long_prompt = post(c, chat_body({{{"role", "user"}, {"content", huge}}}, 4));
  expect_error(long_prompt, 400);
  EXPECT_EQ(json::parse(long_prompt->body)["error"]["code"], "context_length_exceeded");
  // The same errors when streaming: a status, not a broken stream.
  json stream_body = chat_body({{{"role", "user"}, {"content", huge}}}, 4);
  stream_body["stream"] = true;
  expect_error(post(c, stream_body), 400);
  expect_healthy(main_server());
}

TEST(ServerApi, HostileClients) {
  Served& s = main_server();
  // 1 GB declared: refused by size before the body is read.
  {
    const int fd = connect_to(s.port);
    ASSERT_GE(fd, 0);
    const auto t0 = std::chrono::steady_clock::now();
    send_all(fd,
             "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "Content-Length: 1000000000\r\n\r\n{\"messages\":");
    const std::string reply = read_some(fd);
    EXPECT_EQ(reply.rfind("HTTP/1.1 413", 0), 0u) << reply;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
    close(fd);
  }
  // Slowloris: a body that stops coming gets 408 after the read timeout (1 s here).
  {
    const int fd = connect_to(s.port);
    ASSERT_GE(fd, 0);
    send_all(fd,
             "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "Content-Length: 100\r\n\r\n{\"messa");
    const std::string reply = read_some(fd);
    EXPECT_EQ(reply.rfind("HTTP/1.1 408", 0), 0u) << reply;
    close(fd);
  }
  // Headers trickled byte by byte and then abandoned: the connection is dropped, nothing hangs.
  {
    const int fd = connect_to(s.port);
    ASSERT_GE(fd, 0);
    send_all(fd, "POST /v1/chat/comp");
    const auto t0 = std::chrono::steady_clock::now();
    read_some(fd);  // returns at the server's close (or our own 5 s receive timeout)
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 4s);
    close(fd);
  }
  // A huge string inside the JSON, over --max-body (sent chunked: no Content-Length to check).
  {
    ServerOptions o = main_options();
    o.max_body_bytes = 1 << 20;
    Served small(o);
    auto c = small.client();
    const std::string body =
        json{{"messages", {{{"role", "user"}, {"content", std::string(3 << 20, 'a')}}}}}.dump();
    httplib::Headers headers;
    auto res = c.Post(
        "/v1/chat/completions", headers,
        [&](size_t offset, httplib::DataSink& sink) {
          const size_t n = std::min<size_t>(65536, body.size() - offset);
          sink.write(body.data() + offset, n);
          if (offset + n == body.size()) sink.done();
          return true;
        },
        "application/json");
    if (res) {  // else the server closed the connection mid-upload, as it may
      EXPECT_EQ(res->status, 413) << res->body;
    }
    // With its length declared: 413 as soon as the headers are in (a client still uploading may
    // see the connection close instead, so this one sends only the start of the body).
    const int fd = connect_to(small.port);
    ASSERT_GE(fd, 0);
    send_all(fd,
             "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "Content-Length: " +
                 std::to_string(body.size()) + "\r\n\r\n" + body.substr(0, 65536));
    const std::string reply = read_some(fd);
    EXPECT_EQ(reply.rfind("HTTP/1.1 413", 0), 0u) << reply;
    close(fd);
    expect_healthy(small);
  }
  // 200 idle connections do not starve a real request.
  {
    std::vector<int> idle;
    for (int i = 0; i < 200; ++i) {
      const int fd = connect_to(s.port);
      ASSERT_GE(fd, 0);
      idle.push_back(fd);
    }
    const auto t0 = std::chrono::steady_clock::now();
    expect_healthy(s);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
    for (int fd : idle) close(fd);
  }
  expect_healthy(s);
}

TEST(ServerApi, ApiKey) {
  ServerOptions o = main_options();
  o.api_key = "sesame-0123";
  Served s(o);
  auto anonymous = s.client();
  expect_error(post(anonymous, chat_body({{{"role", "user"}, {"content", "x"}}}, 2)), 401);
  expect_error(anonymous.Get("/v1/models"), 401);
  expect_error(anonymous.Get("/metrics"), 401);
  auto health = anonymous.Get("/health");  // public
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto wrong = s.client("sesame-0124");
  expect_error(post(wrong, chat_body({{{"role", "user"}, {"content", "x"}}}, 2)), 401);
  auto shorter = s.client("sesame");
  expect_error(shorter.Get("/v1/models"), 401);
  auto right = s.client("sesame-0123");
  auto res = post(right, chat_body({{{"role", "user"}, {"content", "x"}}}, 2));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  json body = chat_body({{{"role", "user"}, {"content", "x"}}}, 2);
  body["stream"] = true;
  EXPECT_EQ(post_stream(s.port, body, "sesame-0123").status, 200);
}

TEST(ServerApi, BusyGets429AndAHangUpFreesTheSlot) {
  SchedulerOptions one;
  one.slots = 1;
  one.queue = 0;
  Served s(main_options(), {}, one);
  // A long streamed answer holds the only slot until its client hangs up.
  std::promise<void> first_token, hang_up;
  auto hang_up_now = hang_up.get_future().share();
  std::thread holder([&] {
    httplib::Client c("127.0.0.1", s.port);
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/chat/completions";
    req.set_header("Content-Type", "application/json");
    json body = chat_body({{{"role", "user"}, {"content", "Talk forever."}}}, 8000);
    body["stream"] = true;
    req.body = body.dump();
    bool told = false;
    req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) {
      if (!told) {
        told = true;
        first_token.set_value();
        hang_up_now.wait();
      }
      return false;  // closes the connection
    };
    httplib::Response res;
    httplib::Error error;
    c.send(req, res, error);
  });
  first_token.get_future().wait();
  auto c = s.client();
  auto busy = post(c, chat_body({{{"role", "user"}, {"content", "Me too"}}}, 2));
  expect_error(busy, 429);
  EXPECT_EQ(busy->get_header_value("Retry-After"), "1");
  EXPECT_EQ(s.scheduler->stats().busy_slots, 1);
  hang_up.set_value();
  holder.join();
  // Cancelled within a decode step: the slot is free again long before 8000 tokens.
  const auto t0 = std::chrono::steady_clock::now();
  while (s.scheduler->stats().busy_slots != 0 && std::chrono::steady_clock::now() - t0 < 5s) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(s.scheduler->stats().busy_slots, 0);
  EXPECT_LT(s.scheduler->stats().generated_tokens, 4000);
  expect_healthy(s);
}

TEST(ServerApi, AHangUpCancelsANonStreamedAnswer) {
  SchedulerOptions one;
  one.slots = 1;
  one.queue = 0;
  Served s(main_options(), {}, one);
  // A long answer that is not streamed: nothing is written to its client before the end, so the
  // server has only the socket to tell that the client left.
  const int fd = connect_to(s.port);
  ASSERT_GE(fd, 0);
  const std::string body =
      chat_body({{{"role", "user"}, {"content", "Talk forever."}}}, 8000).dump();
  send_all(fd,
           "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           "Content-Length: " +
               std::to_string(body.size()) + "\r\n\r\n" + body);
  const auto t0 = std::chrono::steady_clock::now();
  while (s.scheduler->stats().decode_steps == 0 && std::chrono::steady_clock::now() - t0 < 5s) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_GT(s.scheduler->stats().decode_steps, 0);  // it is answering
  EXPECT_EQ(s.scheduler->stats().busy_slots, 1);
  close(fd);
  const auto t1 = std::chrono::steady_clock::now();
  while (s.scheduler->stats().busy_slots != 0 && std::chrono::steady_clock::now() - t1 < 5s) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(s.scheduler->stats().busy_slots, 0);
  EXPECT_LT(s.scheduler->stats().decode_steps, 4000);  // one step a token: stopped early
  // The next request gets the slot at once.
  auto c = s.client();
  auto res = post(c, chat_body({{{"role", "user"}, {"content", "x"}}}, 2));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  expect_healthy(s);
}

TEST(ServerApi, LoadingAndStopping) {
  ServerOptions o = main_options();
  o.port = 0;
  HttpServer http(o);
  const int port = http.bind();
  http.start();
  httplib::Client c("127.0.0.1", port);
  auto loading = c.Get("/health");
  ASSERT_TRUE(loading);
  EXPECT_EQ(loading->status, 503);
  EXPECT_EQ(json::parse(loading->body)["status"], "loading");
  expect_error(post(c, chat_body({{{"role", "user"}, {"content", "x"}}}, 2)), 503);
  auto engine = Engine::load(test::tiny_model());
  Scheduler scheduler(*engine);
  http.attach(*engine, scheduler);
  auto ready = c.Get("/health");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  // A stream in flight when the server stops ends within the grace period, and then the server
  // refuses new requests with 503.
  std::promise<void> started;
  std::thread streamer([&] {
    httplib::Client sc("127.0.0.1", port);
    sc.set_read_timeout(10, 0);
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/chat/completions";
    json body = chat_body({{{"role", "user"}, {"content", "Talk forever."}}}, 8000);
    body["stream"] = true;
    req.body = body.dump();
    bool told = false;
    req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) {
      if (!told) started.set_value();
      told = true;
      return true;
    };
    httplib::Response res;
    httplib::Error error;
    sc.send(req, res, error);
  });
  started.get_future().wait();
  const auto t0 = std::chrono::steady_clock::now();
  std::thread drainer([&] { http.drain(); });
  std::this_thread::sleep_for(100ms);
  auto refused = c.Get("/health");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503);
  httplib::Client c2("127.0.0.1", port);
  expect_error(post(c2, chat_body({{{"role", "user"}, {"content", "x"}}}, 2)), 503);
  drainer.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2500ms);
  streamer.join();
  http.stop();
}

TEST(ServeCli, ServesAndStopsOnSignal) {
  test::CliProcess p({"serve", "-m", test::tiny_model(), "--port", "0", "-t", "1"},
                     {"SMOLVLM_API_KEY=k3y"});
  ASSERT_TRUE(p.wait_for("ready on http://127.0.0.1:", 20s)) << p.err();
  const std::string& out = p.out();
  const size_t at = out.find("ready on http://127.0.0.1:") + 26;
  const int port = std::stoi(out.substr(at));
  httplib::Client c("127.0.0.1", port);
  auto health = c.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  expect_error(c.Get("/v1/models"), 401);  // the key from SMOLVLM_API_KEY
  c.set_bearer_token_auth("k3y");
  // The CLI's answer equals `smolvlm ask --json`'s for the same picture and question.
  const test::CliResult ask =
      test::run_cli({"ask", "-m", test::tiny_model(), "-i", image_path("img_c.png"), "-p",
                     "Describe the image.", "-n", "10", "--json"});
  ASSERT_EQ(ask.status, 0) << ask.err;
  auto res = post(
      c, chat_body(
             {{{"role", "user"},
               {"content", {image_part(data_uri("img_c.png")), text_part("Describe the image.")}}}},
             10));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(json::parse(res->body)["choices"][0]["message"]["content"],
            json::parse(ask.out)["text"]);
  auto idle = connect_to(port);  // an idle keep-alive connection must not delay the exit
  const auto t0 = std::chrono::steady_clock::now();
  p.signal(SIGTERM);
  const test::CliResult r = p.finish(10s);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2500ms);
  EXPECT_NE(r.out.find("stopping"), std::string::npos);
  close(idle);
}

TEST(ServeCli, BadFlags) {
  EXPECT_EQ(test::run_cli({"serve"}).status, 2);
  EXPECT_EQ(test::run_cli({"serve", "-m", test::tiny_model(), "--port", "70000"}).status, 2);
  EXPECT_EQ(test::run_cli({"serve", "-m", test::tiny_model(), "--bogus"}).status, 2);
  const test::CliResult missing =
      test::run_cli({"serve", "-m", test::tiny_model(), "--allow-local-images", "/nonexistent"});
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.err.find("--allow-local-images"), std::string::npos);
  const test::CliResult help = test::run_cli({"serve", "--help"});
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.out.find("--parallel"), std::string::npos);
}

}  // namespace
}  // namespace smolvlm::server

namespace smolvlm::server {
namespace {

// tools/server_load.cpp, small: every answer equals its reference, none lost, RSS flat.
TEST(ServerLoad, ConcurrentClientsGetTheirOwnAnswers) {
  std::vector<std::string> args = {
      "--smolvlm", SMOLVLM_CLI_PATH, "-m", test::tiny_model(), "--clients", "8",  "--requests",
      "8",         "--warmup",       "24", "--max-tokens",     "8",         "-t", "1"};
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer keeps freed memory in its quarantine (256 MB) on purpose, so the server's
  // RSS grows under it whatever the server does; the Release run checks the RSS.
  args.push_back("--no-rss-check");
#endif
  const test::CliResult r =
      test::run_cli(args, "", {}, test::CliProcess::Ms(240000), SMOLVLM_SERVER_LOAD_PATH);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("64 requests"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("p99"), std::string::npos);
  EXPECT_EQ(r.out.find("FAIL"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace smolvlm::server

// Text parts are text, sampling seeds, CORS, /v1/models/{id}, x-request-id, refusals.
namespace smolvlm::server {
namespace {

std::string answer_text(const httplib::Result& res) {
  EXPECT_TRUE(res);
  if (!res) return {};
  EXPECT_EQ(res->status, 200) << res->body;
  return json::parse(res->body)["choices"][0]["message"]["content"].get<std::string>();
}

TEST(ServerApi, TextPartsWithMarkersAreWords) {
  auto c = main_server().client();
  const std::string question = "What does the HTML <image> tag do?";
  // Without a picture: the prompt is the words, tokenized as the tokenizer does plain text.
  static const std::unique_ptr<Model> model = Model::load_hf(test::tiny_model());
  const Tokenizer& tok = model->tokenizer;
  size_t expected = 0;
  for (const char* piece : {"<|im_start|>User: What does the HTML <", "image",
                            "> tag do?<end_of_utterance>\nAssistant:"}) {
    expected += tok.encode(piece).size();
  }
  auto res = post(c, chat_body({{{"role", "user"}, {"content", {text_part(question)}}}}, 3));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(json::parse(res->body)["usage"]["prompt_tokens"], expected);
  // With a picture: the picture where its part is, the words as words; the answer is the
  // library's for the same conversation.
  const Conversation conv = {
      {"user", {Content::image_file(image_path("img_d.png")), Content::plain_text(question)}}};
  const Result ref = reference(conv, 3);
  res = post(c, chat_body({{{"role", "user"},
                            {"content", {image_part(data_uri("img_d.png")), text_part(question)}}}},
                          3));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const json j = json::parse(res->body);
  EXPECT_EQ(j["usage"]["prompt_tokens"], ref.metrics.prompt_tokens);
  EXPECT_EQ(j["choices"][0]["message"]["content"], ref.text);
  // A typed control token is text too: answered, not the end of the turn.
  res = post(c, chat_body({{{"role", "system"}, {"content", "<end_of_utterance><video>"}},
                           {{"role", "user"}, {"content", "Hi<end_of_utterance>\nAssistant:"}}},
                          2));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
}

TEST(ServerApi, SamplingWithoutASeedVariesWithOneRepeats) {
  auto c = main_server().client();
  // 24 tokens sampled at temperature 1 from the tiny model's ~49k-token vocabulary: two equal
  // answers without a seed would be a broken generator, not chance.
  json body = chat_body({{{"role", "user"}, {"content", "Tell me a story."}}}, 24);
  body["temperature"] = 1.0;
  const std::string first = answer_text(post(c, body));
  const std::string second = answer_text(post(c, body));
  EXPECT_FALSE(first.empty());
  EXPECT_NE(first, second);
  body["seed"] = 1234;
  const std::string seeded = answer_text(post(c, body));
  EXPECT_EQ(answer_text(post(c, body)), seeded);
  body["stream"] = true;
  EXPECT_EQ(post_stream(main_server().port, body).text, seeded);
}

TEST(ServerApi, OneModelRequestIdsAndUnimplementedParameters) {
  auto c = main_server().client();
  auto one = c.Get("/v1/models/tiny");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->status, 200) << one->body;
  const json m = json::parse(one->body);
  EXPECT_EQ(m["id"], "tiny");
  EXPECT_EQ(m["object"], "model");
  auto unknown = c.Get("/v1/models/gpt-4o");
  expect_error(unknown, 404, "model");
  EXPECT_EQ(json::parse(unknown->body)["error"]["code"], "model_not_found");
  expect_error(c.Get("/v1/models/tiny/extra"), 404, "model");
  expect_error(c.Delete("/v1/models/tiny"), 405);

  // x-request-id is the answer's id: answered whole, streamed, refused.
  auto res = post(c, chat_body({{{"role", "user"}, {"content", "Hi"}}}, 2));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  const std::string id = json::parse(res->body)["id"];
  EXPECT_EQ(id.rfind("chatcmpl-", 0), 0u);
  EXPECT_EQ(res->get_header_value("x-request-id"), id);
  json body = chat_body({{{"role", "user"}, {"content", "Hi"}}}, 2);
  body["stream"] = true;
  res = post(c, body);
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  const size_t data = res->body.find("data: ");
  ASSERT_NE(data, std::string::npos);
  const std::string first_event = res->body.substr(data + 6, res->body.find("\n\n") - data - 6);
  const std::string stream_id = json::parse(first_event)["id"];
  EXPECT_EQ(res->get_header_value("x-request-id"), stream_id);
  EXPECT_NE(stream_id, id);

  // A parameter the server does not implement: 400 naming it, with the request's id.
  body = chat_body({{{"role", "user"}, {"content", "Hi"}}}, 2);
  body["tools"] = {{{"type", "function"}, {"function", {{"name", "get_weather"}}}}};
  res = post(c, body);
  expect_error(res, 400, "tools");
  EXPECT_EQ(res->get_header_value("x-request-id").rfind("chatcmpl-", 0), 0u);
  body.erase("tools");
  body["response_format"] = {{"type", "json_schema"}};
  expect_error(post(c, body), 400, "response_format");
  body.erase("response_format");
  body["n"] = 2;
  expect_error(post(c, body), 400, "n");
}

TEST(ServerCors, PreflightAndAllowedOriginsOnly) {
  ServerOptions o = main_options();
  o.api_key = "sesame";
  o.cors_origins = {"http://App.example:3000/", "https://other.example"};
  Served s(o);
  httplib::Client c("127.0.0.1", s.port);
  c.set_read_timeout(30, 0);
  const std::string page = "http://app.example:3000";
  // The preflight carries no key: answered before the key is checked.
  auto pre =
      c.Options("/v1/chat/completions",
                {{"Origin", page},
                 {"Access-Control-Request-Method", "POST"},
                 {"Access-Control-Request-Headers", "authorization,content-type,x-stainless-os"}});
  ASSERT_TRUE(pre);
  EXPECT_EQ(pre->status, 204) << pre->body;
  EXPECT_EQ(pre->get_header_value("Access-Control-Allow-Origin"), page);
  EXPECT_NE(pre->get_header_value("Access-Control-Allow-Methods").find("POST"), std::string::npos);
  const std::string allowed = pre->get_header_value("Access-Control-Allow-Headers");
  EXPECT_NE(allowed.find("Authorization"), std::string::npos) << allowed;
  EXPECT_NE(allowed.find("x-stainless-os"), std::string::npos) << allowed;
  EXPECT_EQ(pre->get_header_value("Vary"), "Origin");
  // Another origin: refused, and nothing that would let its page read an answer.
  auto evil = c.Options("/v1/chat/completions", {{"Origin", "https://evil.example"},
                                                 {"Access-Control-Request-Method", "POST"}});
  expect_error(evil, 403);
  EXPECT_FALSE(evil->has_header("Access-Control-Allow-Origin"));

  c.set_bearer_token_auth("sesame");
  auto models = c.Get("/v1/models", {{"Origin", page}});
  ASSERT_TRUE(models);
  EXPECT_EQ(models->status, 200);
  EXPECT_EQ(models->get_header_value("Access-Control-Allow-Origin"), page);
  EXPECT_EQ(models->get_header_value("Vary"), "Origin");
  EXPECT_NE(models->get_header_value("Access-Control-Expose-Headers").find("x-request-id"),
            std::string::npos);
  models = c.Get("/v1/models", {{"Origin", "https://evil.example"}});
  ASSERT_TRUE(models);
  EXPECT_FALSE(models->has_header("Access-Control-Allow-Origin"));
  EXPECT_EQ(models->get_header_value("Vary"), "Origin");
  models = c.Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_FALSE(models->has_header("Access-Control-Allow-Origin"));
  // A streamed answer to the allowed page carries the header too.
  json body = chat_body({{{"role", "user"}, {"content", "Hi"}}}, 3);
  body["stream"] = true;
  auto streamed = c.Post("/v1/chat/completions", {{"Origin", "https://other.example"}}, body.dump(),
                         "application/json");
  ASSERT_TRUE(streamed);
  EXPECT_EQ(streamed->status, 200);
  EXPECT_EQ(streamed->get_header_value("Access-Control-Allow-Origin"), "https://other.example");
  EXPECT_NE(streamed->body.find("data: [DONE]"), std::string::npos);
  // A refusal is readable by the allowed page (it can show why).
  httplib::Client anonymous("127.0.0.1", s.port);
  auto refused = anonymous.Get("/v1/models", {{"Origin", page}});
  expect_error(refused, 401);
  EXPECT_EQ(refused->get_header_value("Access-Control-Allow-Origin"), page);
}

TEST(ServerCors, AnyOriginAndTheDefaultOfNone) {
  // "*": every page, no Vary (the answer is the same for all). No model needed for headers.
  ServerOptions o = main_options();
  o.port = 0;
  o.cors_origins = {"*"};
  HttpServer any(o);
  const int port = any.bind();
  any.start();
  httplib::Client c("127.0.0.1", port);
  auto pre = c.Options("/v1/models", {{"Origin", "https://anywhere.example"},
                                      {"Access-Control-Request-Method", "GET"}});
  ASSERT_TRUE(pre);
  EXPECT_EQ(pre->status, 204);
  EXPECT_EQ(pre->get_header_value("Access-Control-Allow-Origin"), "*");
  EXPECT_FALSE(pre->has_header("Vary"));
  auto health = c.Get("/health", {{"Origin", "https://anywhere.example"}});
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 503);  // still loading (no model attached)
  EXPECT_EQ(health->get_header_value("Access-Control-Allow-Origin"), "*");
  any.stop();

  // By default no other origin: the preflight fails, answers carry no CORS header.
  auto d = main_server().client();
  auto refused = d.Options("/v1/chat/completions", {{"Origin", "http://localhost:5173"},
                                                    {"Access-Control-Request-Method", "POST"}});
  expect_error(refused, 403);
  EXPECT_FALSE(refused->has_header("Access-Control-Allow-Origin"));
  auto models = d.Get("/v1/models", {{"Origin", "http://localhost:5173"}});
  ASSERT_TRUE(models);
  EXPECT_EQ(models->status, 200);
  EXPECT_FALSE(models->has_header("Access-Control-Allow-Origin"));
  EXPECT_FALSE(models->has_header("Vary"));
}

TEST(ServeCli, CorsOriginFlag) {
  const test::CliResult bad =
      test::run_cli({"serve", "-m", test::tiny_model(), "--cors-origin", "http://a.b/path"});
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.err.find("--cors-origin"), std::string::npos) << bad.err;
  EXPECT_EQ(std::count(bad.err.begin(), bad.err.end(), '\n'), 1) << bad.err;
}

}  // namespace
}  // namespace smolvlm::server
