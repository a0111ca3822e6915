// `smolvlm serve`'s response_format (structured outputs): parsed into the constraint, refused with
// a 400 naming the problem, and answered with JSON that follows the schema, streamed and not.
#include <gtest/gtest.h>
#include <httplib.h>
#include <smolvlm/serving.h>

#include <nlohmann/json.hpp>

#include "constrain/matcher.h"
#include "server/request.h"
#include "server/server.h"
#include "test_support.h"

namespace smolvlm::server {
namespace {

using nlohmann::json;

json body_with(const json& response_format) {
  return {{"messages", {{{"role", "user"}, {"content", "Is the door open?"}}}},
          {"response_format", response_format},
          {"max_tokens", 60}};
}

std::pair<int, std::string> refusal(const json& body) {
  TempFiles files;
  try {
    parse_chat_request(body.dump(), {}, files);
  } catch (const RequestError& e) {
    return {e.status(), std::string(e.what())};
  }
  return {0, "accepted"};
}

TEST(ServerStructured, ResponseFormatBecomesTheConstraint) {
  TempFiles files;
  EXPECT_EQ(parse_chat_request(body_with({{"type", "text"}}).dump(), {}, files).options.constraint,
            nullptr);
  const auto object = parse_chat_request(body_with({{"type", "json_object"}}).dump(), {}, files);
  ASSERT_NE(object.options.constraint, nullptr);
  const json schema = {{"type", "object"},
                       {"properties", {{"open", {{"type", "boolean"}}}}},
                       {"required", {"open"}},
                       {"additionalProperties", false}};
  const auto with_schema = parse_chat_request(
      body_with({{"type", "json_schema"},
                 {"json_schema", {{"name", "door"}, {"strict", true}, {"schema", schema}}}})
          .dump(),
      {}, files);
  ASSERT_NE(with_schema.options.constraint, nullptr);
  EXPECT_NE(with_schema.options.constraint->gbnf().find("\\\"open\\\""), std::string::npos);
}

// Members come in the order the request wrote them (OpenAI's strict mode does the same), not
// sorted by name as a parsed nlohmann::json object would have them.
TEST(ServerStructured, MembersKeepTheRequestsOrder) {
  TempFiles files;
  const std::string body =
      R"({"messages":[{"role":"user","content":"Hi"}],"response_format":{"type":"json_schema",)"
      R"("json_schema":{"name":"t","schema":{"type":"object","properties":{"total":{"type":"integer"},)"
      R"("currency":{"enum":["EUR"]}},"required":["total","currency"],"additionalProperties":false}}}})";
  const auto r = parse_chat_request(body, {}, files);
  ASSERT_NE(r.options.constraint, nullptr);
  auto accepts = [&](const std::string& text) {
    constrain::Matcher m(r.options.constraint->compiled(),
                         std::make_shared<const constrain::TokenIndex>(std::vector<std::string>{},
                                                                       std::vector<bool>{}));
    return m.accept_bytes(text) && m.accepting();
  };
  EXPECT_TRUE(accepts(R"({"total":12,"currency":"EUR"})"));
  EXPECT_FALSE(accepts(R"({"currency":"EUR","total":12})"));
}

TEST(ServerStructured, BadResponseFormatIsA400NamingIt) {
  const auto [s1, m1] = refusal(body_with({{"type", "xml"}}));
  EXPECT_EQ(s1, 400);
  EXPECT_NE(m1.find("'xml'"), std::string::npos) << m1;
  const auto [s2, m2] = refusal(body_with(
      {{"type", "json_schema"},
       {"json_schema", {{"name", "x"}, {"schema", {{"type", "array"}, {"uniqueItems", true}}}}}}));
  EXPECT_EQ(s2, 400);
  EXPECT_NE(m2.find("'uniqueItems'"), std::string::npos) << m2;
  const auto [s3, m3] = refusal(body_with("json"));
  EXPECT_EQ(s3, 400);
}

struct Served {
  std::unique_ptr<Engine> engine;
  std::unique_ptr<Scheduler> scheduler;
  std::unique_ptr<HttpServer> http;
  int port = 0;
  Served() {
    ServerOptions options;
    options.port = 0;
    options.model_name = "tiny";
    http = std::make_unique<HttpServer>(options);
    port = http->bind();
    http->start();
    engine = Engine::load(test::tiny_model());
    scheduler = std::make_unique<Scheduler>(*engine, SchedulerOptions{});
    http->attach(*engine, *scheduler);
  }
  ~Served() { http->stop(); }
};

TEST(ServerStructured, AnswersFollowTheSchemaStreamedAndNot) {
  Served served;
  httplib::Client c("127.0.0.1", served.port);
  c.set_read_timeout(60, 0);
  const json schema = {{"type", "object"},
                       {"properties",
                        {{"open", {{"type", "boolean"}}},
                         {"people", {{"type", "integer"}, {"minimum", 0}, {"maximum", 9}}}}},
                       {"required", {"open", "people"}},
                       {"additionalProperties", false}};
  for (const bool stream : {false, true}) {
    for (const int seed : {1, 2}) {
      json body = body_with(
          {{"type", "json_schema"}, {"json_schema", {{"name", "door"}, {"schema", schema}}}});
      body["temperature"] = 1.0;
      body["seed"] = seed;
      body["stream"] = stream;
      const auto res = c.Post("/v1/chat/completions", body.dump(), "application/json");
      ASSERT_TRUE(res);
      ASSERT_EQ(res->status, 200) << res->body;
      std::string text, finish;
      if (!stream) {
        const json j = json::parse(res->body);
        text = j["choices"][0]["message"]["content"];
        finish = j["choices"][0]["finish_reason"];
      } else {
        for (size_t pos = 0, end; (end = res->body.find("\n\n", pos)) != std::string::npos;
             pos = end + 2) {
          const std::string event = res->body.substr(pos, end - pos);
          if (event.rfind("data: {", 0) != 0) continue;
          const json e = json::parse(event.substr(6));
          if (e["choices"].empty()) continue;
          const json& ch = e["choices"][0];
          if (ch["delta"].contains("content")) text += ch["delta"]["content"].get<std::string>();
          if (!ch["finish_reason"].is_null()) finish = ch["finish_reason"];
        }
      }
      EXPECT_EQ(finish, "stop") << text;
      const json answer = json::parse(text);  // throws (fails the test) when not JSON
      ASSERT_TRUE(answer.is_object()) << text;
      EXPECT_EQ(answer.size(), 2u) << text;
      EXPECT_TRUE(answer["open"].is_boolean()) << text;
      ASSERT_TRUE(answer["people"].is_number_integer()) << text;
      EXPECT_GE(answer["people"].get<int>(), 0);
      EXPECT_LE(answer["people"].get<int>(), 9);
    }
  }
  // json_object: any object; a cap that cuts it short says "length".
  json body = body_with({{"type", "json_schema"},
                         {"json_schema",
                          {{"name", "long"},
                           {"schema",
                            {{"type", "object"},
                             {"properties", {{"a", {{"type", "string"}, {"minLength", 50}}}}},
                             {"required", {"a"}}}}}}});
  body["max_tokens"] = 4;
  const auto res = c.Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(json::parse(res->body)["choices"][0]["finish_reason"], "length");
}

}  // namespace
}  // namespace smolvlm::server
