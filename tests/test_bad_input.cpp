// Bad input of every kind gets a one-line error and a non-zero exit: never a crash or a hang.
// The CLI runs as a separate process, so a crash shows as a signal (and the sanitizer build's
// reports land in stderr, which must then be more than one line).
#include <gtest/gtest.h>
#include <smolvlm/error.h>

#include <filesystem>
#include <fstream>

#include "cli_runner.h"
#include "formats/safetensors.h"
#include "model/model.h"
#include "test_support.h"

namespace smolvlm {
namespace {

namespace fs = std::filesystem;
using test::run_cli;
using test::TempDir;

// A copy of the tiny model folder that a test may damage.
struct ModelCopy {
  TempDir dir;
  ModelCopy() {
    for (const auto& e : fs::directory_iterator(test::tiny_model())) {
      if (e.is_regular_file() && e.path().filename().string().rfind("golden", 0) != 0) {
        fs::copy_file(e.path(), fs::path(dir.path()) / e.path().filename());
      }
    }
  }
  std::string path() const { return dir.path(); }
  std::string shard(int i) const {
    return dir / ("model-0000" + std::to_string(i) + "-of-00003.safetensors");
  }
};

// Rewrites a safetensors file's JSON header through `edit`, keeping the data bytes.
template <typename Edit>
void edit_header(const std::string& path, Edit edit) {
  std::string bytes = read_text_file(path);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | static_cast<uint8_t>(bytes[static_cast<size_t>(i)]);
  nlohmann::json h = nlohmann::json::parse(bytes.substr(8, n));
  edit(h);
  const std::string nh = h.dump();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i)
    out[static_cast<size_t>(i)] = static_cast<char>((nh.size() >> (8 * i)) & 0xff);
  out += nh + bytes.substr(8 + n);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << out;
}

std::string first_2d_tensor(const nlohmann::json& h) {
  for (auto it = h.begin(); it != h.end(); ++it) {
    if (it.key() != "__metadata__" && it.value()["shape"].size() == 2 &&
        it.value()["shape"][0] != it.value()["shape"][1]) {
      return it.key();
    }
  }
  return {};
}

void expect_one_line_error(const test::CliResult& r, const std::string& must_contain) {
  EXPECT_NE(r.status, 0);
  EXPECT_LT(r.status, 128) << "killed by a signal: " << r.err;
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "error is not one line: " << r.err;
  EXPECT_NE(r.err.find(must_contain), std::string::npos) << r.err;
}

test::CliResult ask(const std::string& model, std::vector<std::string> extra) {
  std::vector<std::string> args = {"ask", "-m", model, "-n", "2"};
  args.insert(args.end(), extra.begin(), extra.end());
  return run_cli(args);
}

const std::string kImage = test::tiny_model() + "/images/img_a.png";

TEST(BadInput, MissingModelFolder) {
  expect_one_line_error(ask("/nonexistent/model", {"-p", "Hi"}), "does not exist");
}

TEST(BadInput, MissingShard) {
  ModelCopy m;
  fs::remove(m.shard(2));
  expect_one_line_error(ask(m.path(), {"-p", "Hi"}), "missing shard");
}

TEST(BadInput, TruncatedShard) {
  ModelCopy m;
  fs::resize_file(m.shard(1), fs::file_size(m.shard(1)) / 2);
  expect_one_line_error(ask(m.path(), {"-p", "Hi"}), "past the end");
}

TEST(BadInput, TruncatedHeader) {
  ModelCopy m;
  fs::resize_file(m.shard(3), 100);
  expect_one_line_error(ask(m.path(), {"-p", "Hi"}), "truncated");
}

TEST(BadInput, HeaderPointsPastEndOfFile) {
  ModelCopy m;
  edit_header(m.shard(3), [](nlohmann::json& h) {
    const std::string name = first_2d_tensor(h);
    h[name]["data_offsets"][1] = h[name]["data_offsets"][1].get<uint64_t>() + (1u << 30);
  });
  expect_one_line_error(ask(m.path(), {"-p", "Hi"}), "past the end");
}

TEST(BadInput, WrongTensorShape) {
  ModelCopy m;
  std::string name;
  edit_header(m.shard(3), [&](nlohmann::json& h) {
    name = first_2d_tensor(h);
    auto& s = h[name]["shape"];
    std::swap(s[0], s[1]);  // same byte count, wrong shape
  });
  ASSERT_FALSE(name.empty());
  expect_one_line_error(ask(m.path(), {"-p", "Hi"}), "tensor '" + name + "' has shape");
}

TEST(BadInput, UnknownDtype) {
  ModelCopy m;
  edit_header(m.shard(3), [](nlohmann::json& h) { h[first_2d_tensor(h)]["dtype"] = "F8_E4M3"; });
  expect_one_line_error(ask(m.path(), {"-p", "Hi"}), "unknown dtype 'F8_E4M3'");
}

TEST(BadInput, MissingTensor) {
  ModelCopy m;
  edit_header(m.shard(3), [](nlohmann::json& h) { h.erase(first_2d_tensor(h)); });
  expect_one_line_error(ask(m.path(), {"-p", "Hi"}), "lacks tensor");
}

TEST(BadInput, CorruptConfig) {
  ModelCopy m;
  std::ofstream(m.dir / "config.json", std::ios::trunc) << "{ not json";
  expect_one_line_error(ask(m.path(), {"-p", "Hi"}), "not valid JSON");
}

TEST(BadInput, CorruptJpeg) {
  TempDir d;
  std::ofstream(d / "bad.jpg", std::ios::binary)
      << std::string("\xff\xd8\xff\xe0\x00\x10JFIF\x00garbage", 17);
  expect_one_line_error(ask(test::tiny_model(), {"-i", d / "bad.jpg", "-p", "What?"}), "bad.jpg");
}

TEST(BadInput, EmptyImage) {
  TempDir d;
  std::ofstream(d / "empty.png").close();
  expect_one_line_error(ask(test::tiny_model(), {"-i", d / "empty.png", "-p", "What?"}),
                        "empty.png");
}

TEST(BadInput, UnsupportedImageFormat) {
  TempDir d;
  std::ofstream(d / "pic.gif", std::ios::binary) << "GIF89a\x01\x00\x01\x00";
  expect_one_line_error(ask(test::tiny_model(), {"-i", d / "pic.gif", "-p", "What?"}), "pic.gif");
}

TEST(BadInput, MissingImage) {
  expect_one_line_error(ask(test::tiny_model(), {"-i", "/nonexistent.png", "-p", "What?"}),
                        "/nonexistent.png");
}

TEST(BadInput, PromptLongerThanContext) {
  std::string long_prompt;
  for (int i = 0; i < 50; ++i) long_prompt += "many words here ";
  expect_one_line_error(ask(test::tiny_model(), {"-c", "64", "-p", long_prompt}), "context");
}

TEST(BadInput, ImageLongerThanContext) {
  // img_b splits into 13 tiles of 4 tokens (52 image tokens + tags) > 32.
  expect_one_line_error(ask(test::tiny_model(), {"-c", "32", "-i", kImage, "-p", "What?"}),
                        "context");
}

TEST(BadInput, MoreImageMarkersThanImages) {
  expect_one_line_error(ask(test::tiny_model(), {"-i", kImage, "-p", "<image> and <image>?"}),
                        "<image> markers");
}

TEST(BadInput, BadFlags) {
  auto r = run_cli({"ask", "-m", test::tiny_model(), "-p", "Hi", "-n", "lots"});
  expect_one_line_error(r, "-n expects");
  EXPECT_EQ(r.status, 2);
  r = run_cli({"ask", "-m", test::tiny_model(), "-p", "Hi", "--bogus"});
  expect_one_line_error(r, "unknown option");
  r = run_cli({"ask", "-p", "Hi"});
  expect_one_line_error(r, "-m MODEL_DIR is required");
  r = run_cli({"ask", "-m", test::tiny_model(), "-p", "Hi", "--vision-precision", "fp8"});
  expect_one_line_error(r, "vision precision");
  r = run_cli({"frobnicate"});
  EXPECT_EQ(r.status, 2);
}

// The parser itself, on buffers no file system would produce.
TEST(Safetensors, RejectsMalformedBuffers) {
  auto parse = [](const std::string& bytes) {
    return parse_safetensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "buf");
  };
  auto with_header = [](const std::string& json, size_t data_bytes) {
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i)
      out[static_cast<size_t>(i)] = static_cast<char>((json.size() >> (8 * i)) & 0xff);
    return out + json + std::string(data_bytes, '\0');
  };
  EXPECT_THROW(parse(""), Error);
  EXPECT_THROW(parse("\x01\x02"), Error);
  EXPECT_THROW(parse(std::string("\xff\xff\xff\xff\xff\xff\xff\xff", 8)),
               Error);  // huge header length
  EXPECT_THROW(parse(with_header("[1,2]", 0)), Error);
  EXPECT_THROW(
      parse(with_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 8)),
      Error);
  EXPECT_THROW(
      parse(with_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 8)),
      Error);
  EXPECT_THROW(
      parse(with_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8)),
      Error);
  EXPECT_THROW(
      parse(with_header(
          "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}",
          8)),
      Error);
  EXPECT_THROW(parse(with_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8)), Error);
  const auto ok = parse(with_header(
      "{\"__metadata__\":{},\"a\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,8]}}",
      8));
  ASSERT_EQ(ok.size(), 1u);
  EXPECT_EQ(ok.at("a").shape_str(), "[2, 2]");
  EXPECT_EQ(ok.at("a").dtype, DType::BF16);
}

TEST(Safetensors, RepeatedKeysAreRefused) {
  auto error_of = [](const std::string& json) -> std::string {
    std::string bytes(8, '\0');
    for (int i = 0; i < 8; ++i)
      bytes[static_cast<size_t>(i)] = static_cast<char>((json.size() >> (8 * i)) & 0xff);
    bytes += json + std::string(8, '\0');
    try {
      parse_safetensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "dup");
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  const std::string a = R"("a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]})";
  const std::string b = R"("b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]})";
  EXPECT_EQ(error_of("{" + a + "," + b + "}"), "");
  // The last "a" used to win silently.
  EXPECT_EQ(error_of("{" + a + "," + b + "," + a + "}"),
            "safetensors file 'dup' has a JSON header with the key 'a' twice in one object "
            "(ambiguous)");
  EXPECT_NE(error_of(R"({"a":{"dtype":"U8","dtype":"F32","shape":[4],"data_offsets":[0,4]}})")
                .find("the key 'dtype' twice"),
            std::string::npos);
  // The same key in different objects is no repeat.
  EXPECT_EQ(error_of(R"({"__metadata__":{"a":"x"},)" + a + "}"), "");
}

TEST(Safetensors, WriteReadRoundTrip) {
  TempDir d;
  TensorData t{"w", DType::F16, {3}, {}};
  for (float f : {1.0f, -2.5f, 0.0009765625f}) {
    const uint16_t h = f32_to_f16(f);
    t.bytes.push_back(static_cast<uint8_t>(h & 0xff));
    t.bytes.push_back(static_cast<uint8_t>(h >> 8));
  }
  write_safetensors(d / "x.safetensors", {t});
  const SafetensorsFile f(d / "x.safetensors");
  EXPECT_EQ(to_f32(f.get("w")), (std::vector<float>{1.0f, -2.5f, 0.0009765625f}));
}

TEST(Floats, HalfAndBfloatConversions) {
  for (float f : {0.0f, -0.0f, 1.0f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f, -3.140625f}) {
    EXPECT_EQ(f16_to_f32(f32_to_f16(f)), f) << f;
  }
  EXPECT_EQ(f32_to_f16(1e6f), 0x7c00);                // overflow → inf
  EXPECT_EQ(f32_to_f16(1.0f + 1.0f / 2048), 0x3c00);  // tie → even
  EXPECT_EQ(f32_to_bf16(1.0f + 1.0f / 256), 0x3f80);  // tie → even
  EXPECT_EQ(bf16_to_f32(0x3f81), 1.0078125f);
}

TEST(Config, RejectsInconsistentValues) {
  ModelCopy m;
  nlohmann::json j = nlohmann::json::parse(read_text_file(m.dir / "config.json"));
  j["text_config"]["num_key_value_heads"] = 2;  // 3 heads are not a multiple of 2
  std::ofstream(m.dir / "config.json", std::ios::trunc) << j.dump();
  EXPECT_THROW(Model::load_hf(m.path()), Error);
  j["text_config"]["num_key_value_heads"] = 1;
  j["text_config"]["rope_parameters"].erase("rope_theta");
  std::ofstream(m.dir / "config.json", std::ios::trunc) << j.dump();
  try {
    Model::load_hf(m.path());
    FAIL() << "a config without rope_theta must be refused, never defaulted to 10000";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("rope_theta"), std::string::npos);
  }
}

}  // namespace
}  // namespace smolvlm
