// `smolvlm chat` driven through pipes as a user (or a script) would: each session's output and exit
// status are asserted.
#include <gtest/gtest.h>

#include <csignal>

#include "cli_runner.h"

namespace smolvlm {
namespace {

using test::CliProcess;
using test::run_cli;
using Ms = CliProcess::Ms;

const std::string kImages = test::tiny_model() + "/images/";

std::vector<std::string> chat_args(std::vector<std::string> extra) {
  std::vector<std::string> a = {"chat", "-m", test::tiny_model(), "-n", "12"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

size_t count(const std::string& s, const std::string& needle) {
  size_t n = 0;
  for (size_t p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) ++n;
  return n;
}

TEST(ChatCli, TwoTurnsWithOnePictureEncodeItOnce) {
  const auto r = run_cli(chat_args({"-i", kImages + "img_b.png", "--verbose"}),
                         "Describe the image.\nWhat else is there?\nexit\n");
  ASSERT_EQ(r.status, 0) << r.err;
  // Two answers, each after a prompt; the golden greedy answer for this picture and question first.
  EXPECT_EQ(r.out.rfind("User: Assistant: surreal bic silic", 0), 0u) << r.out;
  EXPECT_EQ(count(r.out, "Assistant:"), 2u) << r.out;
  EXPECT_EQ(count(r.out, "User: "), 3u) << r.out;
  // Verbose lines: the picture (13 tiles) encoded at turn 1, taken from the cache at turn 2, whose
  // new tokens are only the second turn (turn 1's prompt of 94 tokens is not recomputed).
  EXPECT_NE(r.err.find("image 13 tiles, encoded in"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("image 13 tiles, cached"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("[in 94 tokens (94 new, 0 cached)"), std::string::npos) << r.err;
  const size_t second = r.err.find("[in ", r.err.find("[in 94") + 1);
  ASSERT_NE(second, std::string::npos) << r.err;
  int in = 0, fresh = 0, cached = 0;
  ASSERT_EQ(std::sscanf(r.err.c_str() + second, "[in %d tokens (%d new, %d cached)", &in, &fresh,
                        &cached),
            3);
  EXPECT_GE(cached, 94);
  EXPECT_EQ(in, fresh + cached);
  EXPECT_LT(fresh, 13 * 4);  // fewer than the picture's tokens: it was not prefilled again
  EXPECT_NE(r.err.find("peak RAM"), std::string::npos);
  EXPECT_NE(r.err.find("[model "), std::string::npos);
}

TEST(ChatCli, ClearAndTheExitWordsAndEndOfInput) {
  // After clear the same question gets the same (first-turn) answer.
  auto r = run_cli(chat_args({"-i", kImages + "img_b.png"}),
                   "Describe the image.\n/clear\nDescribe the image.\n<exit>\n");
  ASSERT_EQ(r.status, 0) << r.err;
  const size_t a1 = r.out.find("Assistant:"), a2 = r.out.find("Assistant:", a1 + 1);
  ASSERT_NE(a2, std::string::npos) << r.out;
  EXPECT_EQ(r.out.substr(a1, r.out.find('\n', a1) - a1),
            r.out.substr(a2, r.out.find('\n', a2) - a2));
  EXPECT_NE(r.err.find("[dialogue cleared]"), std::string::npos);

  for (const char* word : {"exit", "/exit", "/quit", "<exit>"}) {
    r = run_cli(chat_args({}), std::string(word) + "\nnever asked\n");
    EXPECT_EQ(r.status, 0) << word << r.err;
    EXPECT_EQ(r.out, "User: ") << word;
  }
  r = run_cli(chat_args({}), "Hi\n");  // the pipe closes after one question
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(count(r.out, "Assistant:"), 1u);
  EXPECT_EQ(r.out.substr(r.out.size() - 7), "User: \n");
  r = run_cli(chat_args({}), "");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "User: \n");
}

TEST(ChatCli, OverflowDropsOldTurnsAndSaysSoOnce) {
  std::string in;
  for (int i = 0; i < 8; ++i) in += "Tell me one more thing about it.\n";
  const auto r = run_cli(chat_args({"-c", "96", "-n", "16"}), in + "exit\n");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(count(r.out, "Assistant:"), 8u) << r.out << r.err;
  EXPECT_NE(r.err.find("[the dialogue outgrew the context of 96 tokens: dropped the oldest"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("error"), std::string::npos) << r.err;
}

TEST(ChatCli, ATurnThatCanNeverFitIsAnErrorLineAndTheChatGoesOn) {
  std::string long_line;
  for (int i = 0; i < 80; ++i) long_line += "word ";
  const auto r = run_cli(chat_args({"-c", "64", "-n", "8"}), long_line + "\nHi\nexit\n");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(count(r.err, "error: this turn needs"), 1u) << r.err;
  EXPECT_EQ(count(r.out, "Assistant:"), 1u) << r.out;
}

TEST(ChatCli, SwitchingPictureAndBadPictureInTheChat) {
  const auto r = run_cli(chat_args({"--verbose"}),
                         "/image " + kImages + "missing.png\nHello\n/image " + kImages +
                             "img_a.png\nWhat is it?\n<image> again?\nexit\n");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("error: cannot open image"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("no image"), std::string::npos) << r.err;  // "Hello" went without one
  EXPECT_NE(r.err.find("image 13 tiles, encoded"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("image 26 tiles, cached"), std::string::npos) << r.err;  // placed twice
  EXPECT_EQ(count(r.out, "Assistant:"), 3u) << r.out;
}

TEST(ChatCli, CtrlCStopsTheAnswerNotTheApp) {
  // A long answer (the tiny model goes on for thousands of tokens), interrupted once it streams.
  CliProcess p({"chat", "-m", test::tiny_model(), "-n", "8000", "-c", "8192"});
  p.write("Tell me a long story.\n");
  ASSERT_TRUE(p.wait_for("Assistant:", Ms(60000))) << p.err();
  const size_t at = p.out().find("Assistant:");
  ASSERT_TRUE(p.wait_for(" ", Ms(60000), at + 12));  // a few words streamed
  p.signal(SIGINT);
  ASSERT_TRUE(p.wait_for("User: ", Ms(60000), at)) << p.out();
  // The chat goes on: the next answer streams, and stops again on Ctrl-C.
  const size_t stopped_at = p.out().size();
  p.write("Go on.\n");
  ASSERT_TRUE(p.wait_for("Assistant:", Ms(60000), stopped_at)) << p.out();
  const size_t at2 = p.out().find("Assistant:", stopped_at);
  ASSERT_TRUE(p.wait_for(" ", Ms(60000), at2 + 12));
  p.signal(SIGINT);
  ASSERT_TRUE(p.wait_for("User: ", Ms(60000), at2)) << p.out();
  p.write("exit\n");
  const auto r = p.finish(Ms(60000));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(count(r.err, "[answer stopped]"), 2u) << r.err;
  EXPECT_EQ(count(r.out, "Assistant:"), 2u);
  // The stopped answer is far shorter than the 8000 tokens it would have run to.
  EXPECT_LT(r.out.find("User: ", at), at + 20000);
}

TEST(ChatCli, MissingPictureOrModelIsAOneLineError) {
  auto r = run_cli(chat_args({"-i", kImages + "missing.png"}), "Hi\n");
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(count(r.err, "\n"), 1u) << r.err;
  EXPECT_NE(r.err.find("cannot open image"), std::string::npos) << r.err;

  r = run_cli({"chat", "-m", test::tiny_model() + "/nope"}, "Hi\n");
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(count(r.err, "\n"), 1u) << r.err;

  r = run_cli({"chat", "-m", test::tiny_model(), "-n", "0"});
  EXPECT_EQ(r.status, 2);
  r = run_cli({"chat"});
  EXPECT_EQ(r.status, 2);
  r = run_cli({"chat", "--help"});
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("/image PATH"), std::string::npos);
}

}  // namespace
}  // namespace smolvlm
