// A program of the shape Q-engineering's VLM_NPU main.cpp has, written against their RK35llm.h:
// it must compile and run unchanged against smolvlm.cpp's RK35llm.h. Nothing but that header is
// included, as in the original, so the header must bring in what it uses (OpenCV, iostream,
// printf, atoi). Built only when OpenCV is found; seed_main_no_opencv.cpp is the same without it.
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

  cv::Mat picture = cv::imread(argv[1]);
  model.LoadImage(picture);

  while (true) {
    printf("\n");
    printf("User: ");
    std::getline(std::cin, question);
    if (question == "exit") break;
    answer = model.Ask(question);
    // std::cout << "\nLLM Answer: " << answer << std::endl;
  }
  return 0;
}
