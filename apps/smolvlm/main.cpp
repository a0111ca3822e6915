// smolvlm: the command-line front end. Every subcommand is a thin client of the public API.
#include <smolvlm/smolvlm.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>
#include <string>

#include "cli.h"
#include "util/input_text.h"

namespace {

void print_usage(std::FILE* out) {
  std::fputs(
      "usage: smolvlm <command> [options]\n"
      "\n"
      "commands:\n"
      "  ask           answer one question about pictures, a video (or text only)\n"
      "  bench         measure load, vision, prefill and decode speed and peak memory\n"
      "  chat          talk about a picture (or without one), turn after turn\n"
      "  convert       turn a Hugging Face model folder into llama.cpp's GGUF pair\n"
      "  pull          download a model from Hugging Face\n"
      "  random-model  write a full-size model folder with random weights from a config\n"
#ifdef SMOLVLM_WITH_SERVER
      "  serve         an OpenAI-compatible HTTP server (chat completions, streaming)\n"
#endif
      "  watch         ask about a camera's (or stream's) newest frame at an interval\n"
      "\n"
      "run 'smolvlm <command> --help' for the options of a command\n",
      out);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    print_usage(stderr);
    return 2;
  }
  const std::string cmd = argv[1];
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    print_usage(stdout);
    return 0;
  }
  try {
    if (cmd == "ask") return smolvlm::cli::run_ask(argc - 1, argv + 1);
    if (cmd == "bench") return smolvlm::cli::run_bench(argc - 1, argv + 1);
    if (cmd == "chat") return smolvlm::cli::run_chat(argc - 1, argv + 1);
    if (cmd == "convert") return smolvlm::cli::run_convert(argc - 1, argv + 1);
    if (cmd == "pull") return smolvlm::cli::run_pull(argc - 1, argv + 1);
    if (cmd == "watch") return smolvlm::cli::run_watch(argc - 1, argv + 1);
    if (cmd == "random-model") return smolvlm::cli::run_random_model(argc - 1, argv + 1);
#ifdef SMOLVLM_WITH_SERVER
    if (cmd == "serve") return smolvlm::cli::run_serve(argc - 1, argv + 1);
#endif
    std::fprintf(stderr, "smolvlm: unknown command %s\n", smolvlm::quote_input(cmd).c_str());
    print_usage(stderr);
    return 2;
  } catch (const smolvlm::cli::UsageError& e) {
    std::fprintf(stderr, "smolvlm %s: %s (see 'smolvlm %s --help')\n", cmd.c_str(), e.what(),
                 cmd.c_str());
    return 2;
  } catch (const smolvlm::Error& e) {
    std::fprintf(stderr, "smolvlm: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "smolvlm: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "smolvlm: internal error: %s\n", e.what());
    return 1;
  }
}
