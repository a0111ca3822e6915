// seed_main.cpp without OpenCV: the picture is given by its path. Built everywhere.
#include "RK35llm.h"

int main(int argc, char** argv) {
  std::string question;
  std::string answer;
  RK35llm model;

  model.SetInfo(true);
  model.SetSilence(false);

  if (argc < 4) {
    std::cerr << "Usage: " << argv[0] << " image vlm_model llm_model [NewTokens] [ContextLength]\n";
    return -1;
  } else if (argc == 4) {
    model.LoadModel(argv[2], argv[3]);
  } else if (argc == 5) {
    model.LoadModel(argv[2], argv[3], std::atoi(argv[4]));
  } else {
    model.LoadModel(argv[2], argv[3], std::atoi(argv[4]), std::atoi(argv[5]));
  }

  model.LoadImage(std::string(argv[1]));

  while (true) {
    printf("\n");
    printf("User: ");
    std::getline(std::cin, question);
    if (question == "exit") break;
    answer = model.Ask(question);
  }
  return 0;
}
