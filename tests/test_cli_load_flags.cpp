// The load flags (-m, --mmproj, -t, -c, --vision-precision, --kernels) are one parser
// (apps/smolvlm/cli.h LoadFlags), shared by ask, chat and bench: each subcommand takes all of
// them, with the same meaning and the same errors.
#include <gtest/gtest.h>

#include "cli_runner.h"

namespace smolvlm {
namespace {

using test::run_cli;

// The subcommands that load a model, each with the least it needs to run on the tiny model.
std::vector<std::string> command(const std::string& sub, std::vector<std::string> load_flags) {
  std::vector<std::string> args = {sub, "-m", test::tiny_model()};
  if (sub == "ask") args.insert(args.end(), {"-n", "4", "--json", "-p", "Hi"});
  if (sub == "bench") args.insert(args.end(), {"-p", "8", "-n", "4", "-r", "1", "--json"});
  if (sub == "chat") args.insert(args.end(), {"-n", "4", "--verbose"});
  args.insert(args.end(), load_flags.begin(), load_flags.end());
  return args;
}

TEST(CliLoadFlags, AskChatAndBenchRunOnTheKernelsAndThreadsGiven) {
  const std::vector<std::string> flags = {"--kernels", "generic", "-t", "1", "-c", "512"};
  const auto ask = run_cli(command("ask", flags));
  ASSERT_EQ(ask.status, 0) << ask.err;
  EXPECT_FALSE(nlohmann::json::parse(ask.out)["tokens"].empty());

  const auto bench = run_cli(command("bench", flags));
  ASSERT_EQ(bench.status, 0) << bench.err;
  const auto figures = nlohmann::json::parse(bench.out);
  EXPECT_EQ(figures["kernels"], "generic");
  EXPECT_EQ(figures["threads"], 1);

  const auto chat = run_cli(command("chat", flags), "Hi\nexit\n");
  ASSERT_EQ(chat.status, 0) << chat.err;
  EXPECT_NE(chat.out.find("Assistant:"), std::string::npos) << chat.out;
}

TEST(CliLoadFlags, TheSameBadLoadFlagIsTheSameErrorEverywhere) {
  for (const char* sub : {"ask", "chat", "bench"}) {
    SCOPED_TRACE(sub);
    // A kernel path no CPU has: the engine's one-line error, exit status 1.
    auto r = run_cli(command(sub, {"--kernels", "no-such-path"}), "exit\n");
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_NE(r.err.find("kernel path 'no-such-path' is not available"), std::string::npos)
        << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "not one line: " << r.err;
    // A bad number: a usage error (exit status 2) in the parser's words.
    r = run_cli(command(sub, {"-t", "0"}), "exit\n");
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_NE(r.err.find("-t expects a whole number from 1 to 256, got '0'"), std::string::npos)
        << r.err;
    r = run_cli(command(sub, {"-c", "8"}), "exit\n");
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_NE(r.err.find("-c expects a whole number from 16 to 1048576, got '8'"),
              std::string::npos)
        << r.err;
    r = run_cli(command(sub, {"--vision-precision", "f8"}), "exit\n");
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_NE(r.err.find("unknown vision precision 'f8' (auto, f32 or bf16)"), std::string::npos)
        << r.err;
  }
}

}  // namespace
}  // namespace smolvlm
