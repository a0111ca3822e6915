// Hostile inputs in the command-line area: prompts that cannot fit are refused
// before any picture is decoded or encoded (a picture named 10,000 times, a line of 100,000
// <image> markers), outputs that are not regular files (a FIFO where convert writes, a directory
// of the output's name), and messages that quote at most a little of a long or hostile input.
// Every run has a deadline, so a hang fails instead of stalling the suite.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <smolvlm/serving.h>
#include <smolvlm/smolvlm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "chat/conversation_prompt.h"
#include "cli_runner.h"
#include "loader/model.h"
#include "test_support.h"
#include "vision/image.h"
#include "vision/image_processor.h"

namespace smolvlm {
namespace {

namespace fs = std::filesystem;
using test::CliResult;
using test::TempDir;
using Ms = test::CliProcess::Ms;

const Ms kDeadline(20000);
const std::string kModel = test::tiny_model();
const std::string kImage = kModel + "/images/img_a.png";

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

size_t count_lines(const std::string& s) {
  return static_cast<size_t>(std::count(s.begin(), s.end(), '\n'));
}

void make_fifo(const std::string& path) { ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0) << path; }

// ------------------------------------------------------ class 3: prompts counted before encoding

// The header sizes the count uses are the sizes decoding gives, for every fixture picture.
TEST(HostilePrompt, HeaderSizesAreTheDecodedSizes) {
  std::vector<std::string> files;
  for (const std::string& dir : {test::fixtures() + "/images/decode", kModel + "/images"}) {
    for (const auto& e : fs::directory_iterator(dir)) files.push_back(e.path().string());
  }
  int checked = 0;
  for (const std::string& f : files) {
    SCOPED_TRACE(f);
    Image decoded;
    try {
      decoded = Image::from_file(f);
    } catch (const Error&) {
      continue;  // fixtures of broken files: the count leaves them to decoding
    }
    int w = 0, h = 0;
    ASSERT_TRUE(image_file_header_size(f, w, h));
    EXPECT_EQ(w, decoded.width);
    EXPECT_EQ(h, decoded.height);
    const std::string bytes = read_text_file(f);
    w = h = 0;
    ASSERT_TRUE(
        image_header_size(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), w, h));
    EXPECT_EQ(w, decoded.width);
    EXPECT_EQ(h, decoded.height);
    // Cut short before the size: no size, no crash.
    EXPECT_FALSE(image_header_size(reinterpret_cast<const uint8_t*>(bytes.data()), 12, w, h));
    ++checked;
  }
  EXPECT_GE(checked, 20);
  const std::string junk = "GIF89a and more";
  int w = 0, h = 0;
  EXPECT_FALSE(image_header_size(reinterpret_cast<const uint8_t*>(junk.data()), junk.size(), w, h));
}

// The count is a lower bound: the prompt that fits exactly is not refused, and a picture's count
// is exactly the tiles the image processor makes of it (split or not).
TEST(HostilePrompt, TheCountNeverRefusesAPromptThatFits) {
  LoadOptions lo;
  lo.threads = 2;
  auto engine = Engine::load(kModel, lo);
  auto model = Model::load(kModel);
  GenerationOptions g;
  g.max_new_tokens = 1;
  g.split_images = false;  // one tile a picture: the encoder's time stays small
  const Conversation conv = {
      {"user",
       {Content::image_file(kImage), Content::text("Compare"),
        Content::image_file(kModel + "/images/img_c.png"), Content::text("with this.")}}};
  const int prompt = engine->generate(conv, g).metrics.prompt_tokens;
  EXPECT_NO_THROW(check_prompt_fits(*model, conv, processor_for(*model, g), prompt + 1));
  EXPECT_THROW(
      check_prompt_fits(*model, conv, processor_for(*model, g), 2 * model->config.image_seq_len),
      Error);
  for (const bool split : {false, true}) {
    g.split_images = split;
    const ImageProcessorConfig proc = processor_for(*model, g);
    for (const std::string name : {"img_a.png", "img_b.png", "img_c.png", "img_d.png"}) {
      SCOPED_TRACE(name);
      int w = 0, h = 0;
      ASSERT_TRUE(image_file_header_size(kModel + "/images/" + name, w, h));
      const PictureTiles tiles =
          preprocess_image_tiles(Image::from_file(kModel + "/images/" + name), proc);
      EXPECT_EQ(picture_tokens_at_least(*model, w, h, proc),
                int64_t{tiles.n_tiles} * model->config.image_seq_len);
    }
  }
}

// An 8x8 24-bit BMP, a format whose header the up-front count does not read (it counts one tile).
std::string write_small_bmp(const std::string& path) {
  std::string b = "BM";
  auto le = [&](uint32_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) b += static_cast<char>(v >> (8 * i) & 0xff);
  };
  le(54 + 8 * 24, 4), le(0, 4), le(54, 4);             // file size, reserved, pixel offset
  le(40, 4), le(8, 4), le(8, 4), le(1, 2), le(24, 2);  // BITMAPINFOHEADER: 8x8, 24-bit
  le(0, 4), le(8 * 24, 4), le(2835, 4), le(2835, 4), le(0, 4), le(0, 4);
  for (int i = 0; i < 8 * 24; ++i) b += static_cast<char>(i * 7);
  std::ofstream(path, std::ios::binary) << b;
  return path;
}

TEST(HostilePrompt, OnePictureNamed10000TimesIsRefusedAtOnce) {
  TempDir dir;
  for (const std::string& picture : {std::string(kImage), write_small_bmp(dir / "small.bmp")}) {
    SCOPED_TRACE(picture);
    nlohmann::json content = nlohmann::json::array();
    for (int i = 0; i < 10000; ++i) content.push_back({{"type", "image"}, {"path", picture}});
    content.push_back({{"type", "text"}, {"text", "What is different?"}});
    std::ofstream(dir / "chat.json")
        << nlohmann::json::array({{{"role", "user"}, {"content", content}}}).dump();
    const auto t0 = std::chrono::steady_clock::now();
    const CliResult r =
        test::run_cli({"ask", "-m", kModel, "-t", "2", "-n", "2", "--messages", dir / "chat.json"},
                      "", {}, kDeadline);
    EXPECT_LT(seconds_since(t0), 15.0);  // encoding them all: minutes
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_EQ(count_lines(r.err), 1u) << r.err;
    EXPECT_NE(r.err.find("smolvlm: error: the prompt needs at least "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("more than the context of 8192 allows; nothing was encoded"),
              std::string::npos)
        << r.err;
  }
}

TEST(HostilePrompt, ALineOf100000ImageMarkersIsRefusedAndTheChatGoesOn) {
  std::string markers;
  for (int i = 0; i < 100000; ++i) markers += "<image>";
  const auto t0 = std::chrono::steady_clock::now();
  const CliResult r = test::run_cli({"chat", "-m", kModel, "-i", kImage, "-n", "2", "-t", "2"},
                                    markers + "\nHello\n/exit\n", {}, kDeadline);
  EXPECT_LT(seconds_since(t0), 15.0);  // before: 76 s
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("error: this turn needs at least "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("more than the context of 4096 holds"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("Assistant:"), std::string::npos) << "the next turn was not answered";

  // The same line given to VLM_NPU (a Chat underneath).
  const CliResult npu = test::run_cli({kImage, kModel, kModel, "2"}, markers + "\nexit\n", {},
                                      kDeadline, SMOLVLM_VLM_NPU_PATH);
  EXPECT_EQ(npu.status, 0) << npu.err;
  EXPECT_NE(npu.err.find("RK35llm Ask: this turn needs at least "), std::string::npos) << npu.err;
}

// The library's entry points: Engine::generate and the Scheduler behind `smolvlm serve`.
TEST(HostilePrompt, GenerateAndTheSchedulerRefuseBeforeEncoding) {
  LoadOptions lo;
  lo.threads = 2;
  auto engine = Engine::load(kModel, lo);
  const std::string bytes = read_text_file(kModel + "/images/img_d.png");  // 2.5 KB, 10,000 times
  Conversation files = {{"user", {}}}, in_memory = {{"user", {}}};
  for (int i = 0; i < 10000; ++i) {
    files[0].content.push_back(Content::image_file(kImage));
    in_memory[0].content.push_back(Content::image_bytes(bytes));
  }
  GenerationOptions g;
  g.max_new_tokens = 2;
  for (const Conversation* c : {&files, &in_memory}) {
    const auto t0 = std::chrono::steady_clock::now();
    try {
      engine->generate(*c, g);
      ADD_FAILURE() << "not refused";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("nothing was encoded"), std::string::npos) << e.what();
    }
    EXPECT_LT(seconds_since(t0), 5.0);
  }
  Scheduler scheduler(*engine, {.slots = 1});
  const auto t0 = std::chrono::steady_clock::now();
  try {
    scheduler.complete(in_memory, g);
    ADD_FAILURE() << "not refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nothing was encoded"), std::string::npos) << e.what();
  }
  EXPECT_LT(seconds_since(t0), 5.0);
  // A second video is refused before the first is opened.
  const Conversation two_videos = {
      {"user",
       {Content::video_file("/nonexistent/a.mp4"), Content::video_file("/nonexistent/b.mp4")}}};
  try {
    engine->generate(two_videos, g);
    ADD_FAILURE() << "not refused";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "only one video per conversation is supported");
  }
}

// --------------------------------------------------- class 5: outputs that are not regular files

TEST(HostileOutput, ConvertRefusesAFifoPartWithoutBlocking) {
  TempDir out;
  make_fifo(out / "tiny-Q8_0.gguf.part");
  const CliResult r =
      test::run_cli({"convert", kModel, "-o", out.path(), "--name", "tiny"}, "", {}, kDeadline);
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_EQ(r.err.substr(r.err.find("smolvlm: error:")), "smolvlm: error: cannot write '" +
                                                             out / "tiny-Q8_0.gguf.part" +
                                                             "': is a FIFO, not a regular file\n");
}

TEST(HostileOutput, ConvertRefusesADirectoryOutputBeforeWritingAnything) {
  TempDir out;
  fs::create_directories(out / "mmproj-tiny-F16.gguf");
  const CliResult r =
      test::run_cli({"convert", kModel, "-o", out.path(), "--name", "tiny"}, "", {}, kDeadline);
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("smolvlm: error: cannot write '" + out / "mmproj-tiny-F16.gguf" +
                       "': is a directory\n"),
            std::string::npos)
      << r.err;
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(out.path())) left.push_back(e.path().filename());
  EXPECT_EQ(left, std::vector<std::string>{"mmproj-tiny-F16.gguf"});  // no .part, no text GGUF
}

TEST(HostileOutput, RandomModelRefusesAFifoOutput) {
  for (const std::string name : {"model.safetensors", "config.json"}) {
    SCOPED_TRACE(name);
    TempDir out;
    make_fifo(out / name);
    const CliResult r =
        test::run_cli({"random-model", "--config", kModel, "-o", out.path()}, "", {}, kDeadline);
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_NE(r.err.find("cannot write '" + out / name + "': not a regular file"),
              std::string::npos)
        << r.err;
  }
}

// -------------------------------------------------------------- class 7: messages one can act on

TEST(HostileMessages, ATenMegabytePicturePathIsQuotedShort) {
  const std::string path(10 << 20, 'p');
  test::CliProcess chat({"chat", "-m", kModel, "-n", "2", "-t", "2"});
  chat.write("/image /" + path + "\n/exit\n");
  const CliResult r = chat.finish(kDeadline);
  EXPECT_EQ(r.status, 0) << r.err.substr(0, 500);
  EXPECT_LT(r.err.size(), 600u) << r.err.substr(0, 600);
  EXPECT_NE(r.err.find("error: cannot open image '/ppp"), std::string::npos)
      << r.err.substr(0, 600);
  EXPECT_NE(r.err.find("... (10485761 bytes)'"), std::string::npos) << r.err.substr(0, 600);
}

TEST(HostileMessages, ArgumentsAreQuotedWithTheirControlCharactersEscaped) {
  struct Case {
    std::vector<std::string> args;
    std::string want;
  };
  const std::string evil = "\x1b]0;owned\x07\x1b[2J";
  const std::string long_text(100000, '9');
  const std::vector<Case> cases = {
      {{evil}, "smolvlm: unknown command '\\x1b]0;owned\\x07\\x1b[2J'\n"},
      {{"ask", "-m", kModel, evil}, "unknown option '\\x1b]0;owned\\x07\\x1b[2J'"},
      {{"ask", "-m", kModel, "-t", long_text},
       "-t expects a whole number from 1 to 256, got '" + std::string(80, '9') +
           "'... (100000 bytes)"},
      {{"watch", "-m", kModel, "--every", evil + "s"}, "got '\\x1b]0;owned"},
      {{"convert", kModel, "-o", "x", "--type", long_text}, "... (100000 bytes)"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.args.back().substr(0, 20));
    const CliResult r = test::run_cli(c.args, "", {}, kDeadline);
    EXPECT_EQ(r.status, 2) << r.err.substr(0, 300);
    EXPECT_NE(r.err.find(c.want), std::string::npos) << r.err.substr(0, 300);
    EXPECT_EQ(r.err.find('\x1b'), std::string::npos);
    EXPECT_LT(r.err.size(), 2000u);
  }
}

#if SMOLVLM_HAVE_VIDEO
// A stream that accepts the connection and then says nothing: the time-out is called one.
TEST(HostileMessages, WatchCallsANetworkTimeOutATimeOut) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(fd, 8), 0);  // the kernel completes the handshakes; nobody answers
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const std::string url = "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/cam";
  const CliResult r =
      test::run_cli({"watch", "-m", kModel, "--camera", url, "-p", "Hi", "--io-timeout", "300ms"},
                    "", {}, kDeadline);
  close(fd);
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("smolvlm: error: camera '" + url +
                       "': cannot open: no data for 300 ms (the I/O time-out, --io-timeout)"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("Immediate exit requested"), std::string::npos) << r.err;
}
#endif

}  // namespace
}  // namespace smolvlm
