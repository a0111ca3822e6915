// What an Engine holds; shared by engine.cpp and the chat session (chat_session.cpp).
#pragma once

#include <smolvlm/smolvlm.h>

#include <memory>
#include <string>

#include "kernels/compute.h"
#include "model/model.h"

namespace smolvlm {

struct Engine::Impl {
  std::unique_ptr<Model> model;
  std::unique_ptr<kernels::Compute> compute;  // this Engine's threads and kernel path
  std::string path;
  int context = 0;
  double load_ms = 0;
};

}  // namespace smolvlm
