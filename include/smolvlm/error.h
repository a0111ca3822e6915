// The one exception type the engine throws for bad input or bad files.
// Its message is a single line meant for the user ("cannot open model folder 'x': ...").
#pragma once

#include <stdexcept>
#include <string>

namespace smolvlm {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace smolvlm
