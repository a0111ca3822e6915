// The modern API: load once, hold a dialogue about a picture, stream, cancel, read the metrics.
//
//   build/example_chat_api MODEL_DIR PICTURE
#include <smolvlm/smolvlm.h>

#include <atomic>
#include <cstdio>
#include <iostream>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: " << argv[0] << " MODEL_DIR PICTURE\n";
    return 2;
  }
  try {
    auto engine = smolvlm::Engine::load(argv[1], {.threads = 0, .context = 4096});
    smolvlm::Chat chat = engine->chat();  // one engine, as many chats as you like
    chat.set_image_file(argv[2]);         // encoded once, at its first use

    std::atomic<bool> cancel{false};  // set it from a signal handler or another thread to stop
    smolvlm::GenerationOptions options;
    options.max_new_tokens = 128;
    options.cancel = &cancel;

    for (const char* question : {"Describe the image.", "What colours stand out?"}) {
      std::cout << "User: " << question << "\nAssistant:";
      const smolvlm::Result r = chat.ask(question, options, [](std::string_view piece) {
        std::cout << piece << std::flush;
        return true;  // false stops the answer too
      });
      std::cout << "\n[" << r.metrics.summary() << "]\n";
    }
  } catch (const smolvlm::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
