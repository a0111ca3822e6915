// RK35llm: the class of Q-engineering's VLM_NPU apps, on smolvlm.cpp's CPU engine, so that a
// program written against that header compiles and runs unchanged:
//
//   #include "RK35llm.h"
//   RK35llm RKLLM;
//   RKLLM.SetInfo(true);
//   RKLLM.LoadModel(vision_model, llm_model);      // optional NewTokens, ContextLength
//   RKLLM.LoadImage(cv::imread("picture.jpg"));    // BGR as OpenCV gives it
//   std::string answer = RKLLM.Ask("<image>Describe the image.");  // streams while it answers
//
// Semantics, as the original's:
// - The picture enters the dialogue where a question says <image> (once is enough: the dialogue is
//   remembered). Questions without it are plain text questions.
// - Ask("<clear>") (also "clear", "/clear") forgets the dialogue; Ask("<exit>") (also "/exit",
//   "/quit") ends the program with status 0. An empty question once standard input has ended
//   also ends it, so that a seed-style loop on std::getline stops at end of input.
// - NewTokens caps each answer, ContextLength the whole dialogue; when it would overflow, the
//   oldest turns are dropped (a line on stderr says so).
// Failures print one line on stderr: LoadModel / LoadImage return false, Ask returns "".
//
// The cv::Mat overload exists when OpenCV's headers are found (define SMOLVLM_RK35LLM_NO_OPENCV to
// leave it out); everything else works without OpenCV. For the modern API see smolvlm.h.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#if !defined(SMOLVLM_RK35LLM_NO_OPENCV) && __has_include(<opencv2/core.hpp>)
#define SMOLVLM_RK35LLM_OPENCV 1
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#if __has_include(<opencv2/imgproc.hpp>)
#include <opencv2/imgproc.hpp>
#endif
#endif

class RK35llm {
 public:
  RK35llm();
  ~RK35llm();
  RK35llm(const RK35llm&) = delete;
  RK35llm& operator=(const RK35llm&) = delete;

  void SetInfo(
      bool on);  // model facts after LoadModel; tokens, times, speed, RAM after each answer
  void SetSilence(bool on);  // true: Ask does not print the answer as it is generated
  void SetHistory(bool on);  // true (default): remember the dialogue; false: each question alone

  // VisionModel and LLMModel: the same Hugging Face SmolVLM2 folder (twice, or a file in it), or
  // the vision projector (mmproj) GGUF and the text GGUF of a llama.cpp conversion.
  bool LoadModel(const std::string& VisionModel, const std::string& LLMModel, int NewTokens = 2048,
                 int ContextLength = 4096);

#ifdef SMOLVLM_RK35LLM_OPENCV
  // 8-bit BGR (or grey, or BGRA) as cv::imread gives it; the picture is copied, never changed.
  bool LoadImage(const cv::Mat& image) {
    if (image.empty() || image.depth() != CV_8U || image.dims != 2) {
      return LoadImagePixels(0, 0, 0, nullptr, 0);  // reports the error
    }
    return LoadImagePixels(image.cols, image.rows, image.channels(), image.ptr<unsigned char>(0),
                           image.step[0]);
  }
#endif
  bool LoadImage(const std::string& path);  // a JPEG or PNG file

  // Answers (streaming to stdout unless silent) and returns the whole answer.
  std::string Ask(const std::string& question);

  // Stops the answer being generated; safe to call from a signal handler or another thread.
  void Cancel();

 private:
  bool LoadImagePixels(int width, int height, int channels, const unsigned char* bgr,
                       size_t stride);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};
