// smolvlm pull against a small hub on 127.0.0.1 (never the real one): it serves the tiny fixture
// model with the hub's two endpoints, and can drop a connection halfway, corrupt a file, or 404.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <smolvlm/smolvlm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "cli_runner.h"
#include "formats/file_hash.h"
#include "net/hub.h"
#include "util/sha256.h"

namespace smolvlm {
namespace {

namespace fs = std::filesystem;
using Ms = test::CliProcess::Ms;

const std::string kRepo = "test-org/tiny-smolvlm2";

struct Request {
  std::string path, range, authorization;
};

// One connection at a time, each answered and closed. Bounded: every read waits at most 5 s.
class HubServer {
 public:
  explicit HubServer(std::string root) : root_(std::move(root)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd_, 16) != 0)
      std::abort();
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { loop(); });
  }
  ~HubServer() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<Request> requests() {
    std::lock_guard<std::mutex> l(mu_);
    return requests_;
  }
  std::vector<Request> downloads_of(const std::string& file) {
    std::vector<Request> out;
    for (const auto& r : requests()) {
      if (r.path.find("/" + file) != std::string::npos && r.path.find("/api/") == std::string::npos)
        out.push_back(r);
    }
    return out;
  }

  void drop_once(std::set<std::string> files) {  // the first download of these stops halfway
    std::lock_guard<std::mutex> l(mu_);
    drop_once_ = std::move(files);
  }
  void replace(const std::string& file, std::string bytes) {  // served instead of the file's bytes
    std::lock_guard<std::mutex> l(mu_);
    replaced_[file] = std::move(bytes);
  }
  void ignore_range() {
    std::lock_guard<std::mutex> l(mu_);
    ignore_range_ = true;
  }
  // A hostile hub: `h` answers the requests it returns true for (on the connection `fd`, with
  // send_all), the usual answers the rest. A handler that sends without end stops when the client
  // hangs up or the server is destroyed (stopping()).
  using Handler = std::function<bool(int fd, const std::string& path)>;
  void on_request(Handler h) {
    std::lock_guard<std::mutex> l(mu_);
    handler_ = std::move(h);
  }
  bool stopping() const { return stop_; }

  static bool send_all(int c, const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      const ssize_t n = send(c, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }

 private:
  void loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      const int c = accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      serve(c);
      close(c);
    }
  }

  static std::string header(const std::string& head, const std::string& name) {
    std::string lower = head;
    for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    const size_t p = lower.find("\r\n" + name + ":");
    if (p == std::string::npos) return "";
    size_t b = p + name.size() + 3;
    while (b < head.size() && head[b] == ' ') ++b;
    return head.substr(b, head.find("\r\n", b) - b);
  }

  void respond(int c, int status, const std::string& type, const std::string& body,
               const std::string& extra = "") {
    const char* reason = status == 200   ? "OK"
                         : status == 206 ? "Partial Content"
                         : status == 302 ? "Found"
                                         : "Not Found";
    send_all(c, "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\nContent-Type: " + type +
                    "\r\nContent-Length: " + std::to_string(body.size()) +
                    "\r\nConnection: close\r\n" + extra + "\r\n" + body);
  }

  std::string tree_json() {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& e : fs::directory_iterator(root_)) {
      const std::string name = e.path().filename().string();
      if (e.is_directory()) {
        list.push_back({{"type", "directory"}, {"oid", "0"}, {"size", 0}, {"path", name}});
        continue;
      }
      nlohmann::json f = {{"type", "file"}, {"oid", "0"}, {"size", e.file_size()}, {"path", name}};
      if (e.path().extension() == ".safetensors") {  // LFS files, as the hub stores them
        f["lfs"] = {
            {"oid", sha256_file(e.path().string())}, {"size", e.file_size()}, {"pointerSize", 134}};
      }
      list.push_back(f);
    }
    return list.dump();
  }

  void serve(int c) {
    std::string head;
    char buf[4096];
    while (head.find("\r\n\r\n") == std::string::npos) {
      pollfd p{c, POLLIN, 0};
      if (poll(&p, 1, 5000) <= 0) return;
      const ssize_t n = recv(c, buf, sizeof buf, 0);
      if (n <= 0) return;
      head.append(buf, static_cast<size_t>(n));
    }
    const size_t sp1 = head.find(' '), sp2 = head.find(' ', sp1 + 1);
    const std::string path = head.substr(sp1 + 1, sp2 - sp1 - 1);
    Handler handler;
    {
      std::lock_guard<std::mutex> l(mu_);
      requests_.push_back({path, header(head, "range"), header(head, "authorization")});
      handler = handler_;
    }
    if (handler && handler(c, path)) return;
    const std::string api = "/api/models/" + kRepo + "/tree/main";
    const std::string resolve = "/" + kRepo + "/resolve/main/";
    if (path == api) return respond(c, 200, "application/json", tree_json());
    if (path.rfind(resolve, 0) == 0) {  // the hub redirects LFS files to its CDN
      const std::string name = path.substr(resolve.size());
      if (fs::path(name).extension() == ".safetensors") {
        return respond(c, 302, "text/plain", "", "Location: /cdn/" + name + "\r\n");
      }
      return serve_file(c, name, head);
    }
    if (path.rfind("/cdn/", 0) == 0) return serve_file(c, path.substr(5), head);
    respond(c, 404, "application/json", R"({"error":"Repository not found"})");
  }

  void serve_file(int c, const std::string& name, const std::string& head) {
    const std::string file = root_ + "/" + name;
    if (name.find('/') != std::string::npos || !fs::is_regular_file(file)) {
      return respond(c, 404, "text/plain", "Entry not found");
    }
    std::unique_lock<std::mutex> lock(mu_);
    std::string body = replaced_.count(name) ? replaced_[name] : read_text_file(file);
    const size_t total = body.size();
    const std::string range = header(head, "range");
    size_t from = 0;
    if (!ignore_range_ && range.rfind("bytes=", 0) == 0) from = std::stoul(range.substr(6));
    const bool drop = drop_once_.erase(name) > 0;
    lock.unlock();
    if (drop) {  // promise everything, send half, hang up
      const std::string rest = body.substr(from);
      send_all(c, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(rest.size()) +
                      "\r\nConnection: close\r\n\r\n" + rest.substr(0, rest.size() / 2));
      return;
    }
    if (from > 0) {
      return respond(c, 206, "application/octet-stream", body.substr(from),
                     "Content-Range: bytes " + std::to_string(from) + "-" +
                         std::to_string(total - 1) + "/" + std::to_string(total) + "\r\n");
    }
    respond(c, 200, "application/octet-stream", body);
  }

  std::string root_;
  int fd_ = -1, port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<Request> requests_;
  std::set<std::string> drop_once_;
  std::map<std::string, std::string> replaced_;
  bool ignore_range_ = false;
  Handler handler_;
};

net::PullOptions options_for(const HubServer& hub) {
  net::PullOptions o;
  o.endpoint = hub.endpoint();
  o.retry_delay_s = 0.01;
  o.connect_timeout_s = 5;
  return o;
}

std::vector<std::string> root_files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file()) out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void expect_same_files(const std::string& got, const std::string& want) {
  ASSERT_EQ(root_files(got), root_files(want));
  for (const auto& f : root_files(want)) {
    EXPECT_TRUE(read_text_file(got + "/" + f) == read_text_file(want + "/" + f)) << f;
  }
}

TEST(PullSha256, KnownVectors) {
  auto hex = [](const std::string& s) {
    Sha256 h;
    h.update(s.data(), s.size());
    return h.hex_digest();
  };
  EXPECT_EQ(hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // One million 'a', fed in uneven pieces.
  Sha256 h;
  const std::string chunk(997, 'a');
  size_t left = 1000000;
  while (left > 0) {
    const size_t n = std::min(left, chunk.size());
    h.update(chunk.data(), n);
    left -= n;
  }
  EXPECT_EQ(h.hex_digest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Pull, FetchesTheTinyModelWhichThenRuns) {
  HubServer hub(test::tiny_model());
  test::TempDir d;
  std::vector<std::string> notes;
  net::PullOptions o = options_for(hub);
  o.token = "hf_test";
  o.on_note = [&](const std::string& l) { notes.push_back(l); };
  const auto s = net::pull(kRepo, d / "model", o);
  expect_same_files(d / "model", test::tiny_model());
  EXPECT_EQ(s.fetched, s.files);
  EXPECT_FALSE(fs::exists(d / "model/images"));
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0], "skipping the folder images/ (not needed)");
  for (const auto& r : hub.requests()) EXPECT_EQ(r.authorization, "Bearer hf_test") << r.path;

  auto engine = Engine::load(d / "model");
  GenerationOptions g;
  g.max_new_tokens = 8;
  auto golden = test::parse_int_list(test::golden_json()["cases"]["text_only"]["greedy_new_ids"]);
  golden.resize(8);
  EXPECT_EQ(
      engine->generate({{"user", {Content::text("What is the capital of France?")}}}, g).tokens,
      golden);

  // A second pull finds everything complete and downloads nothing.
  const size_t before = hub.requests().size();
  const auto again = net::pull(kRepo, d / "model", o);
  EXPECT_EQ(again.fetched, 0);
  EXPECT_EQ(hub.requests().size(), before + 1);  // the file list only
}

TEST(Pull, ADroppedConnectionResumesWithARange) {
  HubServer hub(test::tiny_model());
  const std::string shard = "model-00001-of-00003.safetensors";
  const std::string config = "config.json";
  hub.drop_once({shard, config});
  test::TempDir d;
  std::vector<std::string> notes;
  net::PullOptions o = options_for(hub);
  o.on_note = [&](const std::string& l) { notes.push_back(l); };
  net::pull(kRepo, d / "model", o);
  expect_same_files(d / "model", test::tiny_model());
  for (const std::string& f : {shard, config}) {
    const auto size = fs::file_size(test::tiny_model() + "/" + f);
    const auto gets = hub.downloads_of(f);
    ASSERT_GE(gets.size(), 2u) << f;
    EXPECT_EQ(gets.front().range, "") << f;
    EXPECT_EQ(gets.back().range, "bytes=" + std::to_string(size / 2) + "-") << f;
  }
  EXPECT_NE(std::find_if(notes.begin(), notes.end(),
                         [&](const std::string& l) {
                           return l.rfind("connection lost in " + shard, 0) == 0;
                         }),
            notes.end());
}

TEST(Pull, APartialFileFromAnEarlierRunResumes) {
  HubServer hub(test::tiny_model());
  test::TempDir d;
  const std::string shard = "model-00002-of-00003.safetensors";
  fs::create_directories(d / "model");
  const std::string whole = read_text_file(test::tiny_model() + "/" + shard);
  std::ofstream(d / ("model/" + shard + ".part"), std::ios::binary) << whole.substr(0, 1000);
  // A stale complete-looking file of the wrong content is replaced.
  std::ofstream(d / "model/config.json") << "{}";
  net::pull(kRepo, d / "model", options_for(hub));
  expect_same_files(d / "model", test::tiny_model());
  const auto gets = hub.downloads_of(shard);
  ASSERT_EQ(gets.size(), 2u);  // redirect + the file
  EXPECT_EQ(gets.back().range, "bytes=1000-");
  EXPECT_FALSE(fs::exists(d / ("model/" + shard + ".part")));
}

TEST(Pull, AServerThatIgnoresTheRangeStartsTheFileOver) {
  HubServer hub(test::tiny_model());
  hub.ignore_range();
  test::TempDir d;
  fs::create_directories(d / "model");
  std::ofstream(d / "model/tokenizer.json.part") << "garbage that is not the start of the file";
  net::pull(kRepo, d / "model", options_for(hub));
  expect_same_files(d / "model", test::tiny_model());
}

TEST(Pull, ACorruptDownloadFailsTheSha256AndIsRemoved) {
  HubServer hub(test::tiny_model());
  const std::string shard = "model-00003-of-00003.safetensors";
  std::string bad = read_text_file(test::tiny_model() + "/" + shard);
  bad[bad.size() / 2] ^= 1;
  hub.replace(shard, bad);
  test::TempDir d;
  try {
    net::pull(kRepo, d / "model", options_for(hub));
    FAIL() << "expected a checksum error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(shard + " does not match the hub's sha256"),
              std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(d / ("model/" + shard)));
  EXPECT_FALSE(fs::exists(d / ("model/" + shard + ".part")));
}

TEST(Pull, MissingRepositoryAndClosedServerAreOneLineErrors) {
  HubServer hub(test::tiny_model());
  test::TempDir d;
  try {
    net::pull("nobody/nothing", d / "model", options_for(hub));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("HTTP 404"), std::string::npos) << e.what();
  }
  EXPECT_THROW(net::pull("../etc", d / "model", options_for(hub)), Error);

  // Nothing listens on a port we just closed.
  int port = 0;
  {
    HubServer gone(test::tiny_model());
    port = std::stoi(gone.endpoint().substr(gone.endpoint().rfind(':') + 1));
  }
  net::PullOptions o;
  o.endpoint = "http://127.0.0.1:" + std::to_string(port);
  try {
    net::pull(kRepo, d / "model", o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("cannot reach " + o.endpoint, 0), 0u) << e.what();
  }
}

TEST(PullCli, DownloadsWithHfEndpointAndTokenAndReportsErrorsInOneLine) {
  HubServer hub(test::tiny_model());
  test::TempDir d;
  const std::vector<std::string> env = {"HF_ENDPOINT=" + hub.endpoint(), "HF_TOKEN=hf_cli"};
  auto r = test::run_cli({"pull", kRepo, "--dir", d / "m"}, "", env, Ms(120000));
  ASSERT_EQ(r.status, 0) << r.err;
  expect_same_files(d / "m", test::tiny_model());
  EXPECT_NE(r.err.find("model-00001-of-00003.safetensors ["), std::string::npos) << r.err;  // a bar
  EXPECT_NE(r.err.find("is ready in " + d / "m"), std::string::npos) << r.err;
  EXPECT_EQ(hub.requests().front().authorization, "Bearer hf_cli");

  r = test::run_cli({"pull", kRepo, "--dir", d / "m"}, "", env, Ms(120000));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("config.json: up to date"), std::string::npos) << r.err;

  r = test::run_cli({"pull", "nobody/nothing", "--dir", d / "x"}, "", env, Ms(60000));
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err.rfind("smolvlm: error: cannot list nobody/nothing: HTTP 404", 0), 0u) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;  // one line

  r = test::run_cli({"pull", "not-a-repo"}, "", env, Ms(60000));
  EXPECT_EQ(r.status, 2);
}

// ------------------------------------------------------------------ a hostile hub

const std::string kListPath = "/api/models/" + kRepo + "/tree/main";
const std::string kResolve = "/" + kRepo + "/resolve/main/";

// Response headers without a length: the body runs until the server hangs up.
const std::string kEndlessHead =
    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n";

// The error of `run`, which must throw smolvlm::Error, and how long it took.
std::pair<std::string, double> error_of(const std::function<void()>& run) {
  const auto t0 = std::chrono::steady_clock::now();
  std::string what = "(no error)";
  try {
    run();
  } catch (const Error& e) {
    what = e.what();
  }
  return {what, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()};
}

// Sends `piece` every `gap` until the client hangs up or the hub stops.
void trickle(const HubServer& hub, int fd, const std::string& piece, Ms gap) {
  while (!hub.stopping() && HubServer::send_all(fd, piece)) std::this_thread::sleep_for(gap);
}

std::string listing(const std::vector<std::pair<std::string, int>>& files) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& [name, size] : files)
    list.push_back({{"type", "file"}, {"path", name}, {"size", size}});
  return list.dump();
}

void answer_json(int fd, const std::string& body) {
  HubServer::send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                              std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
}

TEST(PullHostile, ATricklingFileFailsAtTheStallTimeoutNamingItsUrl) {
  HubServer hub(test::tiny_model());
  hub.on_request([&](int fd, const std::string& path) {
    if (path == kListPath) {  // at once: the stall is the file's alone
      answer_json(fd, listing({{"config.json", 100000}}));
      return true;
    }
    HubServer::send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n");
    trickle(hub, fd, "x", Ms(100));  // 10 bytes a second
    return true;
  });
  test::TempDir d;
  net::PullOptions o = options_for(hub);
  o.stall_timeout_s = 1;
  o.attempts = 2;
  const auto [what, seconds] = error_of([&] { net::pull(kRepo, d / "m", o); });
  EXPECT_NE(what.find("cannot download config.json from " + hub.endpoint() + kResolve +
                      "config.json: stalled: less than 1 KiB/s for 1 s (after 2 tries"),
            std::string::npos)
      << what;
  EXPECT_LT(seconds, 10.0);
}

TEST(PullHostile, ASlowEndlessFileListMeetsItsDeadline) {
  HubServer hub(test::tiny_model());
  hub.on_request([&](int fd, const std::string& path) {
    if (path != kListPath) return false;
    HubServer::send_all(fd, kEndlessHead + "[");
    // 4 KB a second: above the stall limit, so only the deadline ends it.
    const std::string entry = R"({"type":"file","path":"a","size":1},)";
    trickle(hub, fd, std::string(entry.size() * 4, ' ').replace(0, entry.size(), entry), Ms(40));
    return true;
  });
  net::PullOptions o = options_for(hub);
  o.list_deadline_s = 1;
  const auto [what, seconds] = error_of([&] { net::list_files(kRepo, o); });
  EXPECT_EQ(what, "cannot list " + kRepo + ": " + hub.endpoint() + kListPath +
                      " did not send the whole file list within 1 s");
  EXPECT_LT(seconds, 5.0);
}

TEST(PullHostile, AFastEndlessFileListStopsAtItsBound) {
  HubServer hub(test::tiny_model());
  hub.on_request([&](int fd, const std::string& path) {
    if (path != kListPath) return false;
    HubServer::send_all(fd, kEndlessHead + "[");
    trickle(hub, fd, std::string(64 << 10, ' '), Ms(0));
    return true;
  });
  net::PullOptions o = options_for(hub);
  o.max_list_bytes = 1 << 20;
  const auto [what, seconds] = error_of([&] { net::list_files(kRepo, o); });
  EXPECT_EQ(what,
            "the file list from " + hub.endpoint() + kListPath + " is larger than 1 MiB; refused");
  EXPECT_LT(seconds, 5.0);
}

TEST(PullHostile, AnEndlessBodyStopsAtTheAnnouncedSizeAndKeepsNothing) {
  HubServer hub(test::tiny_model());
  hub.on_request([&](int fd, const std::string& path) {
    if (path == kListPath) {
      answer_json(fd, listing({{"a.txt", 100}}));
    } else {
      HubServer::send_all(fd, kEndlessHead);
      trickle(hub, fd, std::string(64 << 10, 'z'), Ms(0));
    }
    return true;
  });
  test::TempDir d;
  const auto [what, seconds] = error_of([&] { net::pull(kRepo, d / "m", options_for(hub)); });
  EXPECT_EQ(what, "cannot download a.txt from " + hub.endpoint() + kResolve +
                      "a.txt: the server sends more than the 100 bytes the file list announces "
                      "(nothing kept)");
  EXPECT_LT(seconds, 5.0);
  EXPECT_FALSE(fs::exists(d / "m/a.txt"));
  EXPECT_FALSE(fs::exists(d / "m/a.txt.part"));
}

TEST(PullHostile, AnEndlessErrorPageStops) {
  HubServer hub(test::tiny_model());
  hub.on_request([&](int fd, const std::string& path) {
    if (path == kListPath) {
      answer_json(fd, listing({{"a.txt", 100}}));
    } else {
      HubServer::send_all(fd, "HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n\r\n");
      trickle(hub, fd, std::string(64 << 10, 'e'), Ms(0));
    }
    return true;
  });
  test::TempDir d;
  const auto [what, seconds] = error_of([&] { net::pull(kRepo, d / "m", options_for(hub)); });
  EXPECT_EQ(what.rfind("cannot download a.txt: HTTP 500 from " + hub.endpoint(), 0), 0u) << what;
  EXPECT_LT(seconds, 5.0);
}

TEST(PullHostile, ARedirectToALocalFileIsNotFollowed) {
  HubServer hub(test::tiny_model());
  hub.on_request([&](int fd, const std::string& path) {
    if (path == kListPath) {
      answer_json(fd, listing({{"a.txt", 5}}));
    } else {
      HubServer::send_all(fd,
                          "HTTP/1.1 302 Found\r\nLocation: file:///etc/hostname\r\n"
                          "Content-Length: 0\r\nConnection: close\r\n\r\n");
    }
    return true;
  });
  test::TempDir d;
  net::PullOptions o = options_for(hub);
  o.attempts = 1;
  const auto [what, seconds] = error_of([&] { net::pull(kRepo, d / "m", o); });
  EXPECT_EQ(what.rfind("cannot download a.txt from " + hub.endpoint() + kResolve + "a.txt: ", 0),
            0u)
      << what;
  EXPECT_NE(what.find("file"), std::string::npos) << what;
  EXPECT_FALSE(fs::exists(d / "m/a.txt"));
}

TEST(PullHostile, NamesThatCollideEscapeOrRepeatAreRefusedBeforeAnyDownload) {
  struct Case {
    std::string list, error;
  };
  const std::string from = " from http://127.0.0.1:";
  const std::vector<Case> cases = {
      {listing({{"a.txt", 1}, {"a.txt.part", 1}}),
       "names both 'a.txt' and 'a.txt.part', which collide: pull keeps a download in progress as "
       "NAME.part"},
      {listing({{"a.txt", 1}, {"a.txt", 2}}), "names 'a.txt' twice"},
      {listing({{"../evil", 1}}), "refusing the file name '../evil'"},
      {listing({{"..", 1}}), "refusing the file name '..'"},
      {listing({{"\x1b]0;owned\x07\x1b[2J", 1}}),
       "refusing the file name '\\x1b]0;owned\\x07\\x1b[2J'"},
      {listing({{std::string(5000, 'n'), 1}}), "... (5000 bytes)" + from},
      {R"([{"type": 5, "path": "a"}])", "entry 1 of the file list" + from},
      {R"([{"type": "file", "path": "a", "size": "big"}])", "has no size in bytes"},
      {R"([{"type": "file", "path": "a", "size": -1}])", "has no size in bytes"},
      {R"([{"type": "file", "path": "a", "size": 1, "lfs": {"size": -5}}])",
       "has no size in bytes for its LFS file"},
      {R"([{"type": "file", "path": 7, "size": 1}])", "refusing the file name ''"},
      {R"([7])", "entry 1 of the file list" + from},
      {R"({"a": 1})", "is not a JSON list"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.list.substr(0, 100));
    HubServer hub(test::tiny_model());
    hub.on_request([&](int fd, const std::string& path) {
      if (path != kListPath) return false;
      answer_json(fd, c.list);
      return true;
    });
    test::TempDir d;
    const auto [what, seconds] = error_of([&] { net::pull(kRepo, d / "m", options_for(hub)); });
    EXPECT_NE(what.find(c.error), std::string::npos) << what;
    EXPECT_NE(what.find(hub.endpoint()), std::string::npos) << what;  // names the URL
    EXPECT_LT(what.size(), 400u) << what;
    EXPECT_EQ(what.find('\x1b'), std::string::npos);
    EXPECT_EQ(hub.requests().size(), 1u);  // the list only: nothing downloaded
  }
}

TEST(PullHostile, PlacesThatAreNotRegularFilesAreRefusedWithoutBlocking) {
  HubServer hub(test::tiny_model());
  for (const std::string name : {"config.json", "config.json.part"}) {
    SCOPED_TRACE(name);
    test::TempDir d;
    fs::create_directories(d / "m");
    ASSERT_EQ(::mkfifo((d / ("m/" + name)).c_str(), 0600), 0);
    const auto [what, seconds] = error_of([&] { net::pull(kRepo, d / "m", options_for(hub)); });
    EXPECT_EQ(what, "cannot write '" + d / ("m/" + name) + "': is a FIFO, not a regular file");
    EXPECT_LT(seconds, 5.0);
  }
  test::TempDir d;
  fs::create_directories(d / "m/tokenizer.json");
  const size_t before = hub.requests().size();
  const auto [what, seconds] = error_of([&] { net::pull(kRepo, d / "m", options_for(hub)); });
  EXPECT_EQ(what, "cannot write '" + d / "m/tokenizer.json" + "': is a directory");
  EXPECT_EQ(hub.requests().size(), before + 1);  // the list only: nothing downloaded
  for (const auto& e : fs::directory_iterator(d / "m"))
    EXPECT_NE(e.path().extension(), ".part") << e.path();
}

TEST(PullHostile, CliSaysWhichUrlFailedInOneEscapedLine) {
  HubServer hub(test::tiny_model());
  std::atomic<int> mode{0};
  hub.on_request([&](int fd, const std::string& path) {
    if (path != kListPath) return false;
    if (mode == 0) {  // a type that is not a string (was an internal json.exception)
      answer_json(fd, R"([{"type": {"x": 1}, "path": "a", "size": 1}])");
    } else if (mode == 1) {  // terminal escapes in a folder's and a file's name
      answer_json(fd, R"([{"type": "directory", "path": "\u001b[31mred", "size": 0},
                          {"type": "file", "path": "\u001b[2Jwipe", "size": 1}])");
    } else {  // a list that never ends
      HubServer::send_all(fd, kEndlessHead + "[");
      trickle(hub, fd, std::string(2048, ' '), Ms(50));
    }
    return true;
  });
  test::TempDir d;
  const std::vector<std::string> env = {"HF_ENDPOINT=" + hub.endpoint(),
                                        "SMOLVLM_PULL_LIST_DEADLINE_S=1"};
  const std::vector<std::string> wants = {
      "smolvlm: error: entry 1 of the file list from " + hub.endpoint() + kListPath +
          " is neither a file nor a folder\n",
      "smolvlm: error: refusing the file name '\\x1b[2Jwipe' from " + hub.endpoint() + kListPath +
          ": holds control characters\n",
      "smolvlm: error: cannot list " + kRepo + ": " + hub.endpoint() + kListPath +
          " did not send the whole file list within 1 s\n"};
  for (mode = 0; mode < 3; ++mode) {
    const auto r = test::run_cli({"pull", kRepo, "--dir", d / "m"}, "", env, Ms(20000));
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_NE(r.err.find(wants[mode]), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find('\x1b'), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("internal error"), std::string::npos) << r.err;
  }
  const auto r = test::run_cli({"pull", kRepo}, "", {"SMOLVLM_PULL_STALL_S=soon"}, Ms(20000));
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err,
            "smolvlm: error: SMOLVLM_PULL_STALL_S must be a number of seconds from 0 to 86400, "
            "got 'soon'\n");
}

TEST(PullHostile, ALongRepositoryIdIsQuotedShort) {
  const auto r = test::run_cli({"pull", std::string(100000, 'r') + "\x1b[2J"}, "", {}, Ms(20000));
  EXPECT_EQ(r.status, 2);
  EXPECT_LT(r.err.size(), 400u) << r.err.substr(0, 400);
  EXPECT_NE(r.err.find("... (100004 bytes) is not a repository id"), std::string::npos)
      << r.err.substr(0, 400);
}

}  // namespace
}  // namespace smolvlm
