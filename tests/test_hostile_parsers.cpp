// Hostile inputs for the model-file and config parsers: JSON nested 100,000
// deep, counts that would size gigabytes from a few kilobytes, a safetensors header that was
// quadratic to parse, tensors sharing bytes, NaN and infinity in configs and weights, and messages
// that quote at most ~80 escaped bytes of input. Every input is generated here; each CLI run has a
// 10 s deadline and (plain builds) a 400 MB memory bound, each parser call a time bound.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <smolvlm/error.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli_runner.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "gguf_test_support.h"
#include "loader/gguf_model.h"
#include "model/config.h"
#include "net/hub.h"
#include "test_support.h"
#include "text/tokenizer.h"

namespace smolvlm {
namespace {

namespace fs = std::filesystem;
using test::CliResult;
using test::TempDir;
using Ms = test::CliProcess::Ms;
using Clock = std::chrono::steady_clock;

constexpr long kMaxPeakRssKb = 400 * 1024;
const Ms kDeadline(10000);
const std::string kModel = test::tiny_model();

// Exit status 1, one line on stderr naming the file and saying what is wrong, no more than a
// few hundred bytes of it (inputs are quoted, not echoed), and (plain builds) under 400 MB.
void expect_refusal(const CliResult& r, const std::string& file, const std::string& what) {
  EXPECT_EQ(r.status, 1) << r.err;
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "error is not one line: " << r.err;
  EXPECT_LT(r.err.size(), 600u) << r.err;
  EXPECT_NE(r.err.find(file), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(what), std::string::npos) << r.err;
#ifndef SMOLVLM_TEST_SANITIZED
  EXPECT_GT(r.peak_rss_kb, 0);
  EXPECT_LT(r.peak_rss_kb, kMaxPeakRssKb) << "peak resident set of the CLI, in KiB";
#endif
}

CliResult ask(const std::string& model, const std::vector<std::string>& extra = {"-p", "Hi"}) {
  std::vector<std::string> args = {"ask", "-m", model, "-n", "2", "-t", "2"};
  args.insert(args.end(), extra.begin(), extra.end());
  return test::run_cli(args, "", {}, kDeadline);
}

CliResult convert(const std::string& model, const std::string& out) {
  return test::run_cli({"convert", model, "-o", out}, "", {}, kDeadline);
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// `depth` nested arrays around a zero: ~2 bytes a level.
std::string nested(int depth) { return std::string(depth, '[') + "0" + std::string(depth, ']'); }

// A copy of the tiny model folder that a test may damage.
struct ModelCopy {
  TempDir dir;
  ModelCopy() {
    for (const auto& e : fs::directory_iterator(kModel)) {
      if (e.is_regular_file() && e.path().filename().string().rfind("golden", 0) != 0) {
        fs::copy_file(e.path(), fs::path(dir.path()) / e.path().filename());
      }
    }
  }
  std::string path() const { return dir.path(); }
  std::string operator/(const std::string& name) const { return dir / name; }
  void edit_json(const std::string& name, const std::function<void(nlohmann::json&)>& edit) const {
    nlohmann::json j = nlohmann::json::parse(read_text_file(dir / name));
    edit(j);
    write_file(dir / name, j.dump());
  }
  // The text of a JSON file with `raw` spliced in as the first key's value: text no JSON
  // library would write (nesting 100,000 deep).
  void splice_json(const std::string& name, const std::string& raw) const {
    const std::string text = read_text_file(dir / name);
    write_file(dir / name, "{\"hostile\": " + raw + ", " + text.substr(text.find('{') + 1));
  }
  // A safetensors shard with its header edited (data offsets stay relative to the data start).
  void edit_shard(const std::string& name, const std::function<void(nlohmann::json&)>& edit,
                  const std::function<void(std::string& data, const nlohmann::json&)>& data_edit =
                      nullptr) const {
    const std::string bytes = read_text_file(dir / name);
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = n << 8 | static_cast<uint8_t>(bytes[static_cast<size_t>(i)]);
    nlohmann::json h = nlohmann::json::parse(bytes.substr(8, n));
    edit(h);
    std::string data = bytes.substr(8 + n);
    if (data_edit) data_edit(data, h);
    std::string header = h.dump();
    header.append((8 - header.size() % 8) % 8, ' ');
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i) {
      out[static_cast<size_t>(i)] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
    }
    write_file(dir / name, out + header + data);
  }
};

const char kShard3[] = "model-00003-of-00003.safetensors";

// A safetensors file from its header text and `data_bytes` zero bytes.
std::string safetensors_bytes(const std::string& header, size_t data_bytes) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) {
    out[static_cast<size_t>(i)] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  }
  return out + header + std::string(data_bytes, '\0');
}

std::string parse_safetensors_error(const std::string& bytes) {
  const std::vector<uint8_t> buf(bytes.begin(), bytes.end());
  try {
    (void)parse_safetensors(buf.data(), buf.size(), "t.safetensors");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string parse_gguf_error(const std::string& bytes) {
  const std::vector<uint8_t> buf(bytes.begin(), bytes.end());
  try {
    (void)parse_gguf(buf.data(), buf.size(), "t.gguf");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Little-endian pieces of a hand-made GGUF.
template <typename T>
std::string le(T v) {
  std::string s(sizeof v, '\0');
  std::memcpy(s.data(), &v, sizeof v);
  return s;
}
std::string gguf_str(const std::string& s) { return le<uint64_t>(s.size()) + s; }
// A GGUF v3 header: magic, version, tensor and key counts.
std::string gguf_head(uint64_t tensors, uint64_t keys) {
  return "GGUF" + le<uint32_t>(3) + le<uint64_t>(tensors) + le<uint64_t>(keys);
}
// A one-dimensional F32 tensor description.
std::string gguf_f32_tensor(const std::string& name, uint64_t n, uint64_t offset) {
  return gguf_str(name) + le<uint32_t>(1) + le<uint64_t>(n) + le<uint32_t>(0) +
         le<uint64_t>(offset);
}
// Zero padding to the default alignment of 32, then `n` data bytes.
std::string gguf_data(const std::string& head, size_t n) {
  return head + std::string((32 - head.size() % 32) % 32, '\0') + std::string(n, '\0');
}

// load_hf_config's message for a folder, "" when it loads: the checks of a CLI run without
// loading the tokenizer and weights each time.
std::string config_error(const std::string& dir) {
  try {
    (void)load_hf_config(dir);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// ------------------------------------------------------------------ 1. deep JSON: no crash

TEST(HostileParsers, DeepJsonInEveryModelFile) {
  // 100,000 levels (~200 KB): before, SIGSEGV while the message was built.
  for (const char* name : {"config.json", "preprocessor_config.json", "processor_config.json",
                           "tokenizer.json", "model.safetensors.index.json"}) {
    SCOPED_TRACE(name);
    ModelCopy m;
    m.splice_json(name, nested(100000));
    expect_refusal(ask(m.path()), name, "nested deeper than 256 levels");
  }
}

TEST(HostileParsers, DeepJsonWhereAKeyIsRead) {
  // Before, this one crashed while its message was built (dump() of the value): a key the loader
  // reads and reports holding the deep value.
  ModelCopy m;
  m.edit_json("config.json", [](nlohmann::json& j) { j["vision_config"]["hidden_act"] = "DEEP"; });
  std::string text = read_text_file(m / "config.json");
  text.replace(text.find("\"DEEP\""), 6, nested(100000));
  write_file(m / "config.json", text);
  expect_refusal(ask(m.path()), "config.json", "nested deeper than 256 levels");
}

TEST(HostileParsers, DeepJsonForConvertAndVlmNpu) {
  TempDir out;
  for (const char* name : {"config.json", "tokenizer_config.json"}) {
    SCOPED_TRACE(name);
    ModelCopy m;
    m.splice_json(name, nested(100000));
    expect_refusal(convert(m.path(), out.path()), name, "nested deeper than 256 levels");
  }
  ModelCopy m;
  m.splice_json("config.json", nested(100000));
  const CliResult r = test::run_cli({kModel + "/images/img_a.png", m.path(), m.path(), "2"}, "", {},
                                    kDeadline, SMOLVLM_VLM_NPU_PATH);
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("config.json"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("nested deeper than 256 levels"), std::string::npos) << r.err;
}

TEST(HostileParsers, DeepJsonInAConversation) {
  TempDir dir;
  write_file(dir / "chat.json", "[{\"role\": \"user\", \"content\": " + nested(100000) + "}]");
  expect_refusal(ask(kModel, {"--messages", dir / "chat.json"}), "chat.json",
                 "nested deeper than 256 levels");
}

// A loopback "hub" that answers one request (the file list) with `body`, then closes.
class OneShotHub {
 public:
  explicit OneShotHub(std::string body) : body_(std::move(body)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd_, 4) != 0) {
      std::abort();
    }
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~OneShotHub() {
    thread_.join();
    close(fd_);
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  void serve() {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 5000) <= 0) return;  // bounded: a test that never asks does not hang
    const int c = accept(fd_, nullptr, nullptr);
    if (c < 0) return;
    std::string request;
    char buf[4096];
    while (request.find("\r\n\r\n") == std::string::npos) {
      pollfd q{c, POLLIN, 0};
      if (poll(&q, 1, 5000) <= 0) break;
      const ssize_t n = recv(c, buf, sizeof buf, 0);
      if (n <= 0) break;
      request.append(buf, static_cast<size_t>(n));
    }
    const std::string reply =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        "Content-Length: " +
        std::to_string(body_.size()) + "\r\nConnection: close\r\n\r\n" + body_;
    for (size_t off = 0; off < reply.size();) {
      const ssize_t n = send(c, reply.data() + off, reply.size() - off, MSG_NOSIGNAL);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    close(c);
  }

  std::string body_;
  int fd_ = -1, port_ = 0;
  std::thread thread_;
};

TEST(HostileParsers, DeepFileListFromTheHub) {
  OneShotHub hub("[" + nested(100000) + "]");
  net::PullOptions o;
  o.endpoint = hub.endpoint();
  o.attempts = 1;
  try {
    (void)net::list_files("org/model", o);
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("the file list from " + hub.endpoint() + "/api/models/org/model/tree/main"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("JSON nested deeper than 256 levels"), std::string::npos) << what;
  }
}

TEST(HostileParsers, DeepSafetensorsHeader) {
  const std::string header = "{\"a\": " + nested(100000) + "}";
  const std::string e = parse_safetensors_error(safetensors_bytes(header, 0));
  EXPECT_NE(e.find("'t.safetensors' has a JSON header nested deeper than 256 levels"),
            std::string::npos)
      << e;
}

// ------------------------------------------------- 2. counts checked before they size anything

TEST(HostileParsers, MmprojBlockCountOf2To24) {
  // A 400 KB mmproj claiming 2^24 blocks: before, 3 GB of tensor names in 6 s.
  TempDir dir;
  const std::string mmproj = dir / "mmproj.gguf";
  test::rewrite_gguf(test::mmproj_f16(), mmproj,
                     {[](auto& meta) {
                        test::set_meta(meta, "clip.vision.block_count", GgufValue::u32(1u << 24));
                      },
                      nullptr});
  expect_refusal(ask(test::text_q8(), {"-p", "Hi", "--mmproj", mmproj}), "mmproj.gguf",
                 "key 'clip.vision.block_count' is 16777216, expected 1 to 1024");
  // Within the limit but more blocks than the file has tensors for: refused before any name.
  test::rewrite_gguf(
      test::mmproj_f16(), mmproj,
      {[](auto& meta) { test::set_meta(meta, "clip.vision.block_count", GgufValue::u32(1000)); },
       nullptr});
  expect_refusal(ask(test::text_q8(), {"-p", "Hi", "--mmproj", mmproj}), "mmproj.gguf",
                 "clip.vision.block_count 1000 needs at least 16000 tensors, but the file holds");
}

TEST(HostileParsers, TextBlockCountOf2To24) {
  TempDir dir;
  const std::string text = dir / "text.gguf";
  test::rewrite_gguf(
      test::text_q8(), text,
      {[](auto& meta) { test::set_meta(meta, "llama.block_count", GgufValue::u32(1u << 24)); },
       nullptr});
  expect_refusal(ask(text, {"-p", "Hi", "--mmproj", test::mmproj_f16()}), "text.gguf",
                 "key 'llama.block_count' is 16777216, expected 1 to 1024");
}

TEST(HostileParsers, ConvertWithAnAbsurdLayerCount) {
  // A 4 KB config claiming 2^31 - 1 layers: before, convert built a name for each.
  TempDir out;
  for (const char* key : {"num_hidden_layers", "vocab_size", "intermediate_size"}) {
    SCOPED_TRACE(key);
    ModelCopy m;
    m.edit_json("config.json", [&](nlohmann::json& j) {
      (std::string(key) == "vocab_size" ? j : j["text_config"])[key] = 2147483647;
    });
    const CliResult r = convert(m.path(), out.path());
    expect_refusal(r, "config.json", "invalid model config: the ");
    EXPECT_NE(r.err.find("is 2147483647, expected 1 to "), std::string::npos) << r.err;
  }
  // Within the limits but beyond the tensors present: the first missing one is named, fast.
  ModelCopy m;
  m.edit_json("config.json",
              [](nlohmann::json& j) { j["text_config"]["num_hidden_layers"] = 1024; });
  expect_refusal(convert(m.path(), out.path()), m.path(),
                 "lacks tensor 'model.text_model.layers.2.input_layernorm.weight'");
}

TEST(HostileParsers, GgufCountsOverTheLimits) {
  // 70,000 tensor descriptions would fit the bytes (32 each) but pass the 65,536 limit.
  std::string bytes = gguf_head(70000, 0) + std::string(70000 * 32, '\0');
  std::string e = parse_gguf_error(bytes);
  EXPECT_NE(e.find("claims 0 metadata entries and 70000 tensors, over the limits"),
            std::string::npos)
      << e;
  // A U8 array of 5 million elements: 5 MB in the file, 40 MB as integers; the limit is 4Mi.
  bytes = gguf_head(0, 1) + gguf_str("big") + le<uint32_t>(9) + le<uint32_t>(0) +
          le<uint64_t>(5000000) + std::string(5000000, '\0');
  e = parse_gguf_error(bytes);
  EXPECT_NE(e.find("array 'big' of 5000000 elements takes the file past 4194304"),
            std::string::npos)
      << e;
  // A key name of 1 MB (the spec caps them at 65535 bytes).
  bytes = gguf_head(0, 1) + gguf_str(std::string(1 << 20, 'k')) + le<uint32_t>(4) + le<uint32_t>(1);
  e = parse_gguf_error(bytes);
  EXPECT_NE(e.find("a metadata key at byte 24 is 1048576 bytes long, over the limit of 65535"),
            std::string::npos)
      << e;
}

// ---------------------------------------------------- 3. safetensors headers parse in linear time

TEST(HostileParsers, SafetensorsHeaderOf85000EmptyObjectsIsQuick) {
  // 924 KB: before, over 60 s (nlohmann's parse callback rescans the parent at every object end).
  std::string header = "{";
  for (int i = 0; i < 85000; ++i) header += (i ? ",\"t" : "\"t") + std::to_string(i) + "\":{}";
  header += "}";
  const auto t0 = Clock::now();
  const std::string e = parse_safetensors_error(safetensors_bytes(header, 0));
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  EXPECT_NE(e.find("malformed header entry"), std::string::npos) << e;
  // Unloaded it takes ~0.1 s; the bound leaves room for a busy or sanitized build.
  EXPECT_LT(s, 10.0) << "seconds to refuse the header";
}

TEST(HostileParsers, SafetensorsRepeatedKeyAmongManyIsFoundQuickly) {
  std::string header = "{";
  for (int i = 0; i < 20000; ++i) {
    header += (i ? ",\"t" : "\"t") + std::to_string(i % 19999) +
              "\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}";
  }
  header += "}";
  const auto t0 = Clock::now();
  const std::string e = parse_safetensors_error(safetensors_bytes(header, 0));
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 10.0);
  EXPECT_NE(e.find("has a JSON header with the key 't0' twice in one object"), std::string::npos)
      << e;
}

// ------------------------------------------------------------ 6. tensors may not share bytes

TEST(HostileParsers, SafetensorsTensorsSharingBytes) {
  const std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                             R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  const std::string e = parse_safetensors_error(safetensors_bytes(header, 12));
  EXPECT_NE(e.find("tensors 'a' and 'b' share data bytes (at offset 4)"), std::string::npos) << e;
  // Touching is fine; so are empty tensors anywhere.
  const std::string ok = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                         R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},)"
                         R"("c":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})";
  EXPECT_EQ(parse_safetensors_error(safetensors_bytes(ok, 12)), "");
}

TEST(HostileParsers, ModelAndConvertRefuseSharedBytes) {
  ModelCopy m;
  // layers.1's input norm laid over layers.0's (same size, same bytes).
  m.edit_shard(kShard3, [](nlohmann::json& h) {
    h["model.text_model.layers.1.input_layernorm.weight"]["data_offsets"] =
        h["model.text_model.layers.0.input_layernorm.weight"]["data_offsets"];
  });
  expect_refusal(ask(m.path()), kShard3, "share data bytes");
  TempDir out;
  expect_refusal(convert(m.path(), out.path()), kShard3, "share data bytes");
}

TEST(HostileParsers, GgufTensorsSharingBytes) {
  const std::string head =
      gguf_head(2, 0) + gguf_f32_tensor("a", 8, 0) + gguf_f32_tensor("b", 8, 0);
  std::string e = parse_gguf_error(gguf_data(head, 32));
  EXPECT_NE(e.find("GGUF file 't.gguf': tensors 'a' and 'b' share data bytes (at offset 0)"),
            std::string::npos)
      << e;
  const std::string apart =
      gguf_head(2, 0) + gguf_f32_tensor("a", 8, 0) + gguf_f32_tensor("b", 8, 32);
  EXPECT_EQ(parse_gguf_error(gguf_data(apart, 64)), "");
}

// ------------------------------------------------------------------------ 8. NaN and infinity

TEST(HostileParsers, NonFiniteConfigValuesNameTheFileAndKey) {
  struct Case {
    const char* file;
    std::function<void(nlohmann::json&)> edit;
    std::string message;
  };
  // JSON has no NaN, and a number past double's range (1e999, written for "INF" below) is
  // refused as such: before, "internal error: [json.exception.out_of_range.406] ...".
  const Case cases[] = {
      {"config.json", [](nlohmann::json& j) { j["text_config"]["rms_norm_eps"] = "INF"; },
       "config.json': not valid JSON (a number too large to represent)"},
      {"preprocessor_config.json", [](nlohmann::json& j) { j["image_mean"][1] = "INF"; },
       "preprocessor_config.json': not valid JSON (a number too large to represent)"},
      {"config.json", [](nlohmann::json& j) { j["text_config"]["rms_norm_eps"] = 0; },
       "config.json: invalid model config: rms_norm_eps must lie between 0 and 1"},
      {"config.json", [](nlohmann::json& j) { j["text_config"]["rms_norm_eps"] = 1e300; },
       "config.json: 'text_config.rms_norm_eps' is 1e+300, out of range"},
      {"preprocessor_config.json", [](nlohmann::json& j) { j["image_std"][2] = 0; },
       "preprocessor_config.json: 'image_std' holds 0, not a positive number"},
      {"preprocessor_config.json", [](nlohmann::json& j) { j["rescale_factor"] = -1; },
       "preprocessor_config.json: 'rescale_factor' must be positive"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.message);
    ModelCopy m;
    nlohmann::json j = nlohmann::json::parse(read_text_file(m / c.file));
    c.edit(j);
    std::string text = j.dump();
    for (size_t at; (at = text.find("\"INF\"")) != std::string::npos;) text.replace(at, 5, "1e999");
    write_file(m / c.file, text);
    if (&c == &cases[0]) {
      expect_refusal(ask(m.path()), c.file, c.message);  // once as a user meets it
    } else {
      const std::string e = config_error(m.path());
      EXPECT_NE(e.find(m / c.file), std::string::npos) << e;
      EXPECT_NE(e.find(c.message), std::string::npos) << e;
    }
  }
}

TEST(HostileParsers, NonFiniteGgufValuesAreRefused) {
  // GGUF floats can hold NaN and infinity.
  TempDir dir;
  const std::string text = dir / "text.gguf", mmproj = dir / "mmproj.gguf";
  struct Case {
    const char* key;
    GgufValue value;
    bool in_mmproj;
    std::string message;
  };
  const Case cases[] = {
      {"llama.rope.freq_base", GgufValue::f32(INFINITY), false,
       "invalid model config: rope_theta must be finite and positive"},
      {"llama.attention.layer_norm_rms_epsilon", GgufValue::f32(NAN), false,
       "key 'llama.attention.layer_norm_rms_epsilon' must be between 0 and 1"},
      {"clip.vision.image_mean", GgufValue::f32_array({0.5f, NAN, 0.5f}), true,
       "invalid model config: image_mean must be finite"},
      {"clip.vision.image_std", GgufValue::f32_array({0.5f, 0.5f, INFINITY}), true,
       "invalid model config: image_std must be finite and positive"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.key);
    const test::GgufEdit edit{[&](auto& meta) { test::set_meta(meta, c.key, c.value); }, nullptr};
    test::rewrite_gguf(test::text_q8(), text, c.in_mmproj ? test::GgufEdit{} : edit);
    test::rewrite_gguf(test::mmproj_f16(), mmproj, c.in_mmproj ? edit : test::GgufEdit{});
    try {
      const GgufModelFiles files(text, mmproj);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(c.in_mmproj ? mmproj : text), std::string::npos) << what;
      EXPECT_NE(what.find(c.message), std::string::npos) << what;
    }
  }
}

// The shard's text norm weights set to NaN (BF16 0x7fc0).
void poison_norm(ModelCopy& m) {
  m.edit_shard(
      kShard3, [](nlohmann::json&) {},
      [](std::string& data, const nlohmann::json& h) {
        const auto& offs = h["model.text_model.norm.weight"]["data_offsets"];
        for (size_t at = offs[0].get<size_t>(); at < offs[1].get<size_t>(); at += 2) {
          data[at] = '\xc0';
          data[at + 1] = '\x7f';
        }
      });
}

TEST(HostileParsers, NanWeightsGiveAnErrorNotAnAnswer) {
  ModelCopy m;
  poison_norm(m);
  const CliResult r = ask(m.path());
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("the model computed a non-finite logit (NaN for token 0)"),
            std::string::npos)
      << r.err;
}

TEST(HostileParsers, ConvertSaysTheWeightsHoldNan) {
  ModelCopy m;
  poison_norm(m);
  TempDir out;
  expect_refusal(convert(m.path(), out.path()), m.path(),
                 "tensor 'model.text_model.norm.weight' holds NaN (element 0): the weights are "
                 "corrupt");
}

// ------------------------------------------------------ 7. messages quote, name and stay short

TEST(HostileParsers, LongAndControlCharacterValuesAreQuotedNotEchoed) {
  // A 1 MB string of terminal escapes as a config value: 80 bytes of it, escaped.
  ModelCopy m;
  std::string hostile;
  while (hostile.size() < (1u << 20)) hostile += "\x1b[31m\x07";
  m.edit_json("config.json",
              [&](nlohmann::json& j) { j["vision_config"]["hidden_act"] = hostile; });
  const CliResult r = ask(m.path());
  expect_refusal(r, "config.json", "unsupported vision hidden_act '\\x1b[31m\\x07\\x1b[31m");
  EXPECT_EQ(r.err.find('\x1b'), std::string::npos) << "a raw escape reached the terminal";
  EXPECT_NE(r.err.find("... (1048578 bytes)"), std::string::npos) << r.err;
}

TEST(HostileParsers, ValidationMessagesNameTheFile) {
  ModelCopy m;
  m.edit_json("config.json", [](nlohmann::json& j) { j["text_config"]["num_hidden_layers"] = 0; });
  expect_refusal(ask(m.path()), "config.json",
                 "invalid model config: the text layer count is 0, expected 1 to 1024");
  ModelCopy big;
  big.edit_json("config.json", [](nlohmann::json& j) { j["vision_config"]["image_size"] = 65536; });
  expect_refusal(ask(big.path()), "config.json",
                 "invalid model config: the vision image_size is 65536, expected 1 to 4096");
  // Sizes each within their limit whose products are not: 256x256 patches to attend over, and
  // a KV cache of 2^20 positions x 4096 values a head.
  ModelCopy grid;
  grid.edit_json("config.json", [](nlohmann::json& j) {
    j["vision_config"]["image_size"] = 2048;
    j["vision_config"]["patch_size"] = 8;
  });
  expect_refusal(ask(grid.path()), "config.json",
                 "the vision patch grid is 256 patches a side (image_size / patch_size), over 128");
  ModelCopy kv;
  kv.edit_json("config.json", [](nlohmann::json& j) {
    j["text_config"]["head_dim"] = 4096;
    j["text_config"]["max_position_embeddings"] = 1 << 20;
  });
  expect_refusal(ask(kv.path()), "config.json",
                 "max_position_embeddings x key/value heads x head_dim passes 2^31");
}

TEST(HostileParsers, TokenizerErrorsCarryNoLibraryText) {
  const std::string text = read_text_file(kModel + "/tokenizer.json");
  nlohmann::json j = nlohmann::json::parse(text);
  j["model"].erase("type");
  try {
    (void)Tokenizer::from_hf_json(j.dump(), "tok.json");
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find("json.exception"), std::string::npos) << what;
    EXPECT_NE(what.find("invalid tokenizer file 'tok.json': key 'type' not found"),
              std::string::npos)
        << what;
  }
}

}  // namespace
}  // namespace smolvlm
