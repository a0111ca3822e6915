// HTTP as clients speak it, on raw sockets (what an SDK cannot be made to send): pipelining,
// bodies sent whole before reading, half-closed connections, chunked bodies (malformed, with
// trailers), Content-Length with Transfer-Encoding, and the limits on request lines and heads.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <smolvlm/serving.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "raw_socket.h"
#include "server/server.h"
#include "test_support.h"

namespace smolvlm::server {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

const std::string kKey = "http-key-7";
constexpr size_t kMaxBody = 1 << 20;

struct Served {
  std::unique_ptr<Engine> engine;
  std::unique_ptr<Scheduler> scheduler;
  std::unique_ptr<HttpServer> http;
  int port = 0;
  Served() {
    ServerOptions o;
    o.port = 0;
    o.model_name = "tiny";
    o.api_key = kKey;
    o.max_body_bytes = kMaxBody;
    o.read_timeout_s = 2;
    o.keep_alive_timeout_s = 2;
    http = std::make_unique<HttpServer>(o);
    port = http->bind();
    http->start();
    engine = Engine::load(test::tiny_model());
    scheduler = std::make_unique<Scheduler>(*engine);
    http->attach(*engine, *scheduler);
  }
  ~Served() { http->stop(); }
};

Served& server() {
  static Served s;
  return s;
}

int connect_to(int port) { return test::connect_to(port, 10); }

// Sends all of `text`; false when the server stopped taking it (closed or reset).
bool send_all(int fd, std::string_view text) {
  while (!text.empty()) {
    const ssize_t n = send(fd, text.data(), text.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    text.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

struct Reply {
  std::string bytes;
  bool closed = false;  // the server closed the connection (EOF)
  bool reset = false;   // ... with a reset: whatever it sent may be lost
};

// Everything until the server closes (or `quiet` passes with nothing new).
Reply read_reply(int fd, std::chrono::milliseconds quiet = 3000ms) {
  timeval tv{static_cast<time_t>(quiet.count() / 1000),
             static_cast<suseconds_t>(quiet.count() % 1000 * 1000)};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  Reply r;
  char buf[65536];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      r.bytes.append(buf, static_cast<size_t>(n));
      continue;
    }
    r.closed = n == 0;
    r.reset = n < 0 && errno == ECONNRESET;
    return r;
  }
}

// The status of every "HTTP/1.1 NNN " status line in the bytes, in order. (Plain string search:
// std::regex trips GCC 12's maybe-uninitialized warning in the sanitizer build.)
std::vector<int> statuses(const std::string& bytes) {
  std::vector<int> out;
  const std::string prefix = "HTTP/1.1 ";
  for (size_t at = bytes.find(prefix); at != std::string::npos; at = bytes.find(prefix, at + 1)) {
    const size_t code = at + prefix.size();
    if (code + 4 > bytes.size() || bytes[code + 3] != ' ') continue;
    if (!std::isdigit(static_cast<unsigned char>(bytes[code])) ||
        !std::isdigit(static_cast<unsigned char>(bytes[code + 1])) ||
        !std::isdigit(static_cast<unsigned char>(bytes[code + 2])))
      continue;
    out.push_back(std::stoi(bytes.substr(code, 3)));
  }
  return out;
}

std::string completion_body() {
  return json{
      {"model", "tiny"}, {"max_tokens", 3}, {"messages", {{{"role", "user"}, {"content", "Hi"}}}}}
      .dump();
}

std::string post_head(const std::string& extra) {
  return "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + kKey +
         "\r\nContent-Type: application/json\r\n" + extra;
}

std::string chunked(const std::string& body) {
  char size[32];
  std::snprintf(size, sizeof size, "%zx\r\n", body.size());
  return size + body + "\r\n";
}

size_t rss_bytes() {
  std::ifstream f("/proc/self/statm");
  size_t pages = 0, resident = 0;
  f >> pages >> resident;
  return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

TEST(ServerHttp, PipelinedRequestsAreAllAnswered) {
  const int fd = connect_to(server().port);
  ASSERT_GE(fd, 0);
  const std::string body = completion_body();
  // Three requests in one write: a GET, a completion, a GET that closes.
  ASSERT_TRUE(
      send_all(fd, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n" +
                       post_head("Content-Length: " + std::to_string(body.size()) + "\r\n\r\n") +
                       body + "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  const Reply r = read_reply(fd);
  EXPECT_EQ(statuses(r.bytes), (std::vector<int>{200, 200, 200})) << r.bytes;
  EXPECT_NE(r.bytes.find("chat.completion"), std::string::npos) << r.bytes;
  EXPECT_TRUE(r.closed);
  close(fd);
}

TEST(ServerHttp, ABodyOverTheLimitSentWholeGets413NotAReset) {
  // As Python's urllib does: the whole body written before the answer is read.
  for (const bool declared : {true, false}) {
    const int fd = connect_to(server().port);
    ASSERT_GE(fd, 0);
    const std::string big(4 * kMaxBody, 'a');
    std::thread writer([&] {
      if (declared) {
        send_all(fd, post_head("Content-Length: " + std::to_string(big.size()) + "\r\n\r\n") + big);
      } else {
        std::string all = post_head("Transfer-Encoding: chunked\r\n\r\n");
        for (size_t at = 0; at < big.size(); at += 65536) all += chunked(big.substr(at, 65536));
        send_all(fd, all + "0\r\n\r\n");
      }
    });
    writer.join();  // all of it written (the server read it, or its buffers took it)
    const Reply r = read_reply(fd);
    EXPECT_EQ(statuses(r.bytes), std::vector<int>{413})
        << "declared " << declared << ": " << r.bytes;
    EXPECT_NE(r.bytes.find("body_too_large"), std::string::npos);
    EXPECT_FALSE(r.reset) << "declared " << declared;
    EXPECT_TRUE(r.closed) << "declared " << declared;
    close(fd);
  }
}

TEST(ServerHttp, AHalfClosedClientGetsItsAnswer) {
  // `nc -N`: the request, then the client's side of the connection closed; it still reads. (The
  // server may first send an interim 100 Continue, to tell it from a client that hung up.)
  const std::string body = completion_body();
  const int fd = connect_to(server().port);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(
      fd, post_head("Content-Length: " + std::to_string(body.size()) + "\r\n\r\n") + body));
  shutdown(fd, SHUT_WR);
  const Reply r = read_reply(fd);
  std::vector<int> got = statuses(r.bytes);
  if (!got.empty() && got.front() == 100) got.erase(got.begin());
  EXPECT_EQ(got, std::vector<int>{200}) << r.bytes;
  const size_t final_at = r.bytes.find("HTTP/1.1 200");
  ASSERT_NE(final_at, std::string::npos);
  const size_t json_at = r.bytes.find("\r\n\r\n", final_at);
  ASSERT_NE(json_at, std::string::npos);
  const json answer = json::parse(r.bytes.substr(json_at + 4));
  EXPECT_EQ(answer["object"], "chat.completion");
  EXPECT_TRUE(r.closed);
  close(fd);

  const int fd2 = connect_to(server().port);
  ASSERT_TRUE(send_all(fd2, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
  shutdown(fd2, SHUT_WR);
  EXPECT_EQ(statuses(read_reply(fd2).bytes), std::vector<int>{200});
  close(fd2);
}

TEST(ServerHttp, ChunkedBodiesMalformedOrWithTrailers) {
  const std::string body = completion_body();
  {  // A chunk size that is not hexadecimal: 400 (not 408, which SDKs retry), then closed.
    const int fd = connect_to(server().port);
    ASSERT_TRUE(send_all(
        fd, post_head("Transfer-Encoding: chunked\r\n\r\n") + "zz\r\n" + body + "\r\n0\r\n\r\n"));
    const Reply r = read_reply(fd);
    EXPECT_EQ(statuses(r.bytes), std::vector<int>{400}) << r.bytes;
    EXPECT_TRUE(r.closed);
    close(fd);
  }
  {  // A trailer field after the last chunk: an ordinary request, answered, and kept open.
    const int fd = connect_to(server().port);
    ASSERT_TRUE(send_all(fd, post_head("Transfer-Encoding: chunked\r\n\r\n") +
                                 chunked(body.substr(0, 10)) + chunked(body.substr(10)) +
                                 "0\r\nX-Checksum: 1234\r\n\r\n" +
                                 "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    const Reply r = read_reply(fd);
    EXPECT_EQ(statuses(r.bytes), (std::vector<int>{200, 200})) << r.bytes;
    EXPECT_NE(r.bytes.find("chat.completion"), std::string::npos) << r.bytes;
    close(fd);
  }
}

TEST(ServerHttp, ContentLengthWithTransferEncodingIsRefusedAndClosed) {
  // Read by one length or the other, a proxy in front and this server would disagree on where
  // the next request starts: refused, and nothing after it is read as a request.
  const std::string body = completion_body();
  const int fd = connect_to(server().port);
  ASSERT_TRUE(send_all(fd, post_head("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n") +
                               chunked(body) + "0\r\n\r\n" +
                               "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
  const Reply r = read_reply(fd);
  EXPECT_EQ(statuses(r.bytes), std::vector<int>{400}) << r.bytes;
  EXPECT_TRUE(r.closed || r.reset);
  close(fd);
}

TEST(ServerHttp, LongRequestLinesAndHeadsAreRefusedBeforeTheyAreKept) {
  Served& s = server();
  {  // 64 MB of request line with no newline: 414 after the first few KB, the rest not read.
    const size_t rss0 = rss_bytes();
    const int fd = connect_to(s.port);
    ASSERT_TRUE(send_all(fd, "GET /"));
    const std::string block(65536, 'a');
    size_t sent = 0;
    while (sent < (size_t{64} << 20) && send_all(fd, block)) sent += block.size();
    const Reply r = read_reply(fd);
    EXPECT_EQ(statuses(r.bytes), std::vector<int>{414}) << r.bytes.substr(0, 200);
    EXPECT_LT(sent, size_t{64} << 20) << "the server read all of it";
    EXPECT_LT(rss_bytes(), rss0 + (size_t{16} << 20));
    close(fd);
  }
  {  // 200,000 header fields: 431, and without the API key (checked after the limits).
    const size_t rss0 = rss_bytes();
    const int fd = connect_to(s.port);
    bool all_sent = send_all(fd, "GET /v1/models HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 200000 && all_sent; i += 1000) {
      std::string fields;
      for (int j = i; j < i + 1000; ++j) fields += "X-F" + std::to_string(j) + ": v\r\n";
      all_sent = send_all(fd, fields);
    }
    if (all_sent) send_all(fd, "\r\n");
    const Reply r = read_reply(fd);
    EXPECT_EQ(statuses(r.bytes), std::vector<int>{431}) << r.bytes.substr(0, 200);
    EXPECT_FALSE(all_sent) << "the server read all of it";
    EXPECT_LT(rss_bytes(), rss0 + (size_t{16} << 20));
    close(fd);
  }
  {  // More fields than allowed, each short, in a small head: 431 too.
    const int fd = connect_to(s.port);
    std::string head = "GET /health HTTP/1.1\r\nHost: x\r\n";
    for (int i = 0; i < 150; ++i) head += "X-" + std::to_string(i) + ": 1\r\n";
    ASSERT_TRUE(send_all(fd, head + "\r\n"));
    EXPECT_EQ(statuses(read_reply(fd).bytes), std::vector<int>{431});
    close(fd);
  }
  {  // Within the limits, the same server answers (a 401 without the key).
    const int fd = connect_to(s.port);
    ASSERT_TRUE(send_all(fd, "GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    EXPECT_EQ(statuses(read_reply(fd).bytes), std::vector<int>{401});
    close(fd);
  }
}

}  // namespace
}  // namespace smolvlm::server
