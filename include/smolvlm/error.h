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

// A prompt longer than the context the engine (or a serving slot) holds: the request is fine
// otherwise, but too long for this configuration (the server's 400 context_length_exceeded).
class ContextLengthError : public Error {
 public:
  using Error::Error;
};

}  // namespace smolvlm
