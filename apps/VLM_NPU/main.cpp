// VLM_NPU: the command line of Q-engineering's SmolVLM2 NPU app, on the CPU.
//
//   VLM_NPU Picture VisionModel LLMModel [NewTokens] [ContextLength]
//
// VisionModel and LLMModel: the same SmolVLM2 folder twice, or an mmproj GGUF and a text GGUF.
// Type a question at "User: "; <image> in it puts the picture there (once is enough: the dialogue
// is remembered). <clear> forgets the dialogue; exit, <exit> or end of input leaves.
#include <smolvlm/RK35llm.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

namespace {

RK35llm* g_model = nullptr;

extern "C" void on_sigint(int) {
  if (g_model) g_model->Cancel();  // Ctrl-C stops the answer, not the app
}

int parse_count(const char* text, const char* name) {
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  if (*text == '\0' || *end != '\0' || v < 1 || v > (1 << 20)) {
    std::fprintf(stderr, "VLM_NPU: %s must be a whole number from 1 to %d, got '%s'\n", name,
                 1 << 20, text);
    std::exit(2);
  }
  return static_cast<int>(v);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "Usage: " << argv[0]
              << " Picture VisionModel LLMModel [NewTokens] [ContextLength]\n";
    return 2;  // a usage error, as for every other command line here (not -1, i.e. 255)
  }
  const int new_tokens = argc > 4 ? parse_count(argv[4], "NewTokens") : 2048;
  const int context = argc > 5 ? parse_count(argv[5], "ContextLength") : 4096;

  RK35llm model;
  model.SetInfo(true);
  model.SetSilence(false);
  if (!model.LoadModel(argv[2], argv[3], new_tokens, context)) return 1;
  if (!model.LoadImage(std::string(argv[1]))) return 1;

  g_model = &model;
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);

  std::string question;
  for (;;) {
    std::printf("\nUser: ");
    std::fflush(stdout);
    if (!std::getline(std::cin, question)) break;
    if (question == "exit" || question == "<exit>") break;
    model.Ask(question);
  }
  std::printf("\n");
  return 0;
}
