// The web page of `smolvlm serve` as the server holds and serves it (the browser tests are
// tests/webui/): its size, its headers, no inline or remote code, and --no-webui.
#include <gtest/gtest.h>
#include <httplib.h>

#include <cctype>
#include <nlohmann/json.hpp>
#include <string>

#include "server/server.h"
#include "server/webui_assets.h"

namespace smolvlm::server {
namespace {

// A server with no model: static files need none.
struct PageServer {
  HttpServer http;
  explicit PageServer(ServerOptions options)
      : http([&] {
          options.port = 0;
          options.host = "127.0.0.1";
          return options;
        }()) {
    http.bind();
    http.start();
  }
  httplib::Result get(const std::string& path, const httplib::Headers& headers = {}) {
    httplib::Client c("127.0.0.1", http.port());
    c.set_read_timeout(10, 0);
    return c.Get(path, headers);
  }
};

const WebAsset& asset(const std::string& path) {
  for (const WebAsset& a : webui_assets()) {
    if (a.path == path) return a;
  }
  throw std::runtime_error("no asset " + path);
}

TEST(WebUi, AssetsStaySmall) {
  size_t total = 0;
  ASSERT_EQ(webui_assets().size(), 4u);
  for (const WebAsset& a : webui_assets()) {
    EXPECT_GT(a.body.size(), 100u) << a.path;
    total += a.body.size();
  }
  // At most 150 KB (about 50 KB compressed, checked by tests/webui/): the page is meant for a
  // board on a slow link.
  EXPECT_LE(total, size_t{150} << 10) << "the page is " << total << " bytes";
}

TEST(WebUi, NoInlineScriptsNoRemoteOriginsNoHtmlSinks) {
  const std::string page(asset("/").body);
  // Every <script> loads a file of the server's; none carries code. (Plain searches: GCC 12's
  // std::regex trips -Wmaybe-uninitialized in the sanitizer build.)
  int scripts = 0;
  for (size_t at = page.find("<script"); at != std::string::npos;
       at = page.find("<script", at + 1), ++scripts) {
    const size_t close = page.find('>', at);
    ASSERT_NE(close, std::string::npos);
    EXPECT_NE(page.substr(at, close - at).find(" src=\"/"), std::string::npos) << page.substr(at);
    EXPECT_EQ(page.compare(close + 1, 9, "</script>"), 0) << page.substr(at);
  }
  EXPECT_EQ(scripts, 2);  // markdown.js, app.js
  // No inline event handlers: no " on<letters>=" inside a tag.
  for (size_t at = page.find('<'); at != std::string::npos; at = page.find('<', at + 1)) {
    const std::string tag = page.substr(at, page.find('>', at) - at);
    for (size_t on = tag.find(" on"); on != std::string::npos; on = tag.find(" on", on + 1)) {
      size_t end = on + 3;
      while (end < tag.size() && std::isalpha(static_cast<unsigned char>(tag[end]))) ++end;
      EXPECT_FALSE(end > on + 3 && end < tag.size() && tag[end] == '=') << tag;
    }
  }
  EXPECT_EQ(page.find("style="), std::string::npos);
  for (const WebAsset& a : webui_assets()) {
    const std::string body(a.body);
    EXPECT_EQ(body.find("http://"), std::string::npos) << a.path;
    EXPECT_EQ(body.find("https://"), std::string::npos) << a.path;
    EXPECT_EQ(body.find("//cdn"), std::string::npos) << a.path;
    EXPECT_EQ(body.find("@import"), std::string::npos) << a.path;
  }
  // Model text reaches the page as text nodes only.
  const std::string script_text(asset("/app.js").body);
  for (const char* sink : {"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                           "eval(", "new Function"}) {
    EXPECT_EQ(script_text.find(sink), std::string::npos) << sink;
  }
}

TEST(WebUi, ServedWithTypesPolicyAndRevalidation) {
  PageServer server({});
  for (const WebAsset& a : webui_assets()) {
    auto res = server.get(a.path);
    ASSERT_TRUE(res) << a.path;
    EXPECT_EQ(res->status, 200) << a.path;
    EXPECT_EQ(res->body, a.body) << a.path;
    EXPECT_EQ(res->get_header_value("Content-Type"), a.content_type);
    const std::string csp = res->get_header_value("Content-Security-Policy");
    EXPECT_NE(csp.find("default-src 'self'"), std::string::npos) << csp;
    EXPECT_NE(csp.find("script-src 'self';"), std::string::npos) << csp;
    EXPECT_NE(csp.find("connect-src 'self'"), std::string::npos) << csp;
    EXPECT_EQ(csp.find("unsafe"), std::string::npos) << csp;
    EXPECT_EQ(res->get_header_value("X-Content-Type-Options"), "nosniff");
    EXPECT_EQ(res->get_header_value("Cache-Control"), "no-cache");
    const std::string etag = res->get_header_value("ETag");
    ASSERT_FALSE(etag.empty());
    auto again = server.get(a.path, {{"If-None-Match", etag}});
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, 304) << a.path;
    EXPECT_TRUE(again->body.empty());
    auto stale = server.get(a.path, {{"If-None-Match", "\"0\""}});
    ASSERT_TRUE(stale);
    EXPECT_EQ(stale->status, 200);
  }
  EXPECT_EQ(asset("/").content_type, std::string("text/html; charset=utf-8"));
  EXPECT_EQ(asset("/markdown.js").content_type, std::string("text/javascript; charset=utf-8"));
  EXPECT_EQ(asset("/app.js").content_type, std::string("text/javascript; charset=utf-8"));
  EXPECT_EQ(asset("/style.css").content_type, std::string("text/css; charset=utf-8"));
}

TEST(WebUi, ConfigTellsTheBodyLimitAndWhetherAKeyIsNeeded) {
  ServerOptions options;
  options.max_body_bytes = 3 << 20;
  options.api_key = "board-secret";
  PageServer server(options);
  // The page and its config load without the key (the page then asks for it).
  auto page = server.get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  auto res = server.get("/webui-config.json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  const auto config = nlohmann::json::parse(res->body);
  EXPECT_EQ(config.at("max_body_bytes").get<size_t>(), size_t{3} << 20);
  EXPECT_TRUE(config.at("api_key_required").get<bool>());
  EXPECT_EQ(config.dump().find("board-secret"), std::string::npos);
  // The API itself still wants the key.
  auto models = server.get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(models->status, 401);
}

TEST(WebUi, NoWebuiServesNothing) {
  ServerOptions options;
  options.webui = false;
  PageServer server(options);
  for (const char* path : {"/", "/markdown.js", "/app.js", "/style.css", "/webui-config.json"}) {
    auto res = server.get(path);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 404) << path;
  }
}

}  // namespace
}  // namespace smolvlm::server
