// Each subcommand's flags are one table (apps/smolvlm/flag_table.h) that both parses and prints
// the help, so the two cannot drift: every flag the help shows parses, and every flag the
// parser takes is in the help. The load flags are the same entries in every subcommand that
// loads a model.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <sstream>

#include "cli.h"
#include "cli_runner.h"

namespace smolvlm {
namespace {

using test::run_cli;

struct HelpFlag {
  std::vector<std::string> names;
  bool takes_value = false;
};

// The flags a help text lists: lines "  -x, --long VALUE   help" or "      --long VALUE  help".
std::vector<HelpFlag> flags_in_help(const std::string& help) {
  std::vector<HelpFlag> flags;
  std::istringstream lines(help);
  std::string line;
  while (std::getline(lines, line)) {
    const size_t start = line.find_first_not_of(' ');
    if (start == std::string::npos || line[start] != '-' || (start != 2 && start != 6)) continue;
    const size_t gap = line.find("  ", start);
    std::istringstream label(line.substr(start, gap - start));
    HelpFlag f;
    std::string word;
    while (label >> word) {
      if (word.back() == ',') word.pop_back();
      if (word[0] == '-') {
        f.names.push_back(word);
      } else {
        f.takes_value = true;
      }
    }
    flags.push_back(f);
  }
  return flags;
}

const std::vector<std::string> kLoadFlags = {
    "-m", "--model",   "--mmproj",           "-t",        "--threads",
    "-c", "--context", "--vision-precision", "--kernels", "--max-picture-pixels"};

// The spellings each subcommand took before its flags became a table, and still takes.
const std::vector<std::pair<std::string, std::vector<std::string>>> kCommandFlags = {
    {"ask",
     {"-i",
      "--image",
      "-p",
      "--prompt",
      "--video",
      "--max-frames",
      "--fps",
      "--messages",
      "-n",
      "--max-new-tokens",
      "--temp",
      "--top-k",
      "--top-p",
      "--repeat-penalty",
      "--seed",
      "--no-split",
      "--max-tiles",
      "--json",
      "--json-schema",
      "--json-object",
      "--grammar"}},
    {"chat",
     {"-i", "--image", "--video", "--max-frames", "--fps", "-n", "--max-new-tokens", "--system",
      "--temp", "--top-k", "--top-p", "--repeat-penalty", "--seed", "--no-split", "--max-tiles",
      "--verbose"}},
    {"bench", {"--image", "-p", "-n", "-r", "--repeat", "--quantize", "--json", "--profile"}},
    {"serve",
     {"--host", "--port", "--parallel", "--queue", "--api-key", "--image-cache", "--max-body",
      "--max-images", "-n", "--max-tokens", "--allow-remote-images", "--allow-local-images",
      "--alias", "--http-threads", "--read-timeout", "--cors-origin", "--no-webui"}},
    {"watch",
     {"--camera", "-p", "--prompt", "--every", "--change", "--max-answers", "--duration",
      "--io-timeout", "-n", "--max-new-tokens", "--json", "--temp", "--top-k", "--top-p",
      "--repeat-penalty", "--seed", "--no-split", "--max-tiles"}},
};

TEST(CliFlagTable, EveryFlagInTheHelpParsesAndEveryFlagTakenIsInTheHelp) {
  for (const auto& [command, own] : kCommandFlags) {
    SCOPED_TRACE(command);
    const auto help = run_cli({command, "--help"});
    ASSERT_EQ(help.status, 0) << help.err;
    const std::vector<HelpFlag> listed = flags_in_help(help.out);
    std::set<std::string> names;
    for (const HelpFlag& f : listed) names.insert(f.names.begin(), f.names.end());

    // Help -> parser: a flag with a value asks for it; a switch is known (the run then stops
    // at what is missing, the model).
    for (const HelpFlag& f : listed) {
      for (const std::string& name : f.names) {
        if (name == "-h" || name == "--help") continue;
        SCOPED_TRACE(name);
        const auto r = run_cli({command, name});
        EXPECT_EQ(r.status, 2) << r.err;
        EXPECT_EQ(r.err.find("unknown option"), std::string::npos) << r.err;
        if (f.takes_value) {
          EXPECT_NE(r.err.find(name + " needs a value"), std::string::npos) << r.err;
        }
      }
    }
    // Parser -> help: every spelling taken, the load flags included, is listed.
    std::vector<std::string> taken = own;
    taken.insert(taken.end(), kLoadFlags.begin(), kLoadFlags.end());
    for (const std::string& name : taken) {
      // A listed spelling was run above; one missing from the help is run here, to say whether
      // it parses at all.
      if (names.count(name)) continue;
      ADD_FAILURE() << name << " is taken but is not in the help";
      const auto r = run_cli({command, name});
      EXPECT_EQ(r.err.find("unknown option"), std::string::npos) << name << ": " << r.err;
    }
    // And what is not in the table is refused.
    const auto r = run_cli({command, "--no-such-flag"});
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("unknown option '--no-such-flag'"), std::string::npos) << r.err;
  }
}

// The load flags are one declaration: each subcommand's help shows them in the same words.
TEST(CliFlagTable, LoadFlagsReadTheSameInEveryHelp) {
  cli::FlagTable table;
  cli::LoadFlags load;
  cli::add_load_flags(table, load);
  const std::string shared = table.help();
  for (const char* command : {"ask", "chat", "bench", "serve", "watch"}) {
    SCOPED_TRACE(command);
    const auto help = run_cli({command, "--help"});
    ASSERT_EQ(help.status, 0);
    for (const char* line : {"      --kernels PATH", "      --mmproj FILE",
                             "      --vision-precision P  auto", "  -t, --threads N"}) {
      const size_t at = shared.find(line);
      ASSERT_NE(at, std::string::npos) << line;
      const std::string whole = shared.substr(at, shared.find('\n', at) - at);
      EXPECT_NE(help.out.find(whole), std::string::npos) << whole;
    }
  }
}

// The table itself: a value flag takes the next argument, a switch none, a missing value and
// an unknown flag are usage errors, -h stops the parse, and a name declared twice is refused.
TEST(CliFlagTable, ParsesWhatItDeclares) {
  cli::FlagTable table;
  std::string model;
  bool on = false;
  table.add({{"-m", "--model"}, "DIR", "the model", [&](const std::string&, const std::string& v) {
               model = v;
             }});
  table.add({{"--on"}, "", "a switch\nover two lines", [&](const std::string&, const std::string&) {
               on = true;
             }});
  std::vector<std::string> args = {"prog", "--on", "--model", "x"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  EXPECT_TRUE(table.parse(static_cast<int>(argv.size()), argv.data()));
  EXPECT_EQ(model, "x");
  EXPECT_TRUE(on);
  EXPECT_EQ(table.help(),
            "  -h, --help              this help\n"
            "  -m, --model DIR         the model\n"
            "      --on                a switch\n"
            "                          over two lines\n");

  args = {"prog", "-m"};
  argv = {args[0].data(), args[1].data()};
  EXPECT_THROW(table.parse(2, argv.data()), cli::UsageError);
  args = {"prog", "--off"};
  argv = {args[0].data(), args[1].data()};
  EXPECT_THROW(table.parse(2, argv.data()), cli::UsageError);
  args = {"prog", "-h", "--off"};
  argv = {args[0].data(), args[1].data(), args[2].data()};
  EXPECT_FALSE(table.parse(3, argv.data()));
  EXPECT_THROW(table.add({{"--model"}, "", "again", nullptr}), std::logic_error);
}

}  // namespace
}  // namespace smolvlm
