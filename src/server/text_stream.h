// The answer as it is streamed: stop strings cut it (the stop text itself never shown) and no
// chunk ends inside a UTF-8 character.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace smolvlm::server {

// Bytes at the end of `text` that begin a UTF-8 character not yet complete (0 to 3).
size_t utf8_incomplete_tail(std::string_view text);

class StopFilter {
 public:
  explicit StopFilter(std::vector<std::string> stops) : stops_(std::move(stops)) {}
  // Takes the next piece of the answer; returns the text that can be shown now. Holds back only
  // a tail that could still grow into a stop string (and an unfinished UTF-8 character).
  std::string push(std::string_view piece);
  // The answer is over: what was held back (nothing once a stop string matched).
  std::string finish();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
};

}  // namespace smolvlm::server
