// The prompt's placeholders: `<image>` and `<video>` in a user's text say where a picture or a
// video goes. Spelled here once, with the one splitter that finds them, for the chat template's
// expansion (chat/prompt.cpp), Chat's turns (chat/chat_session.cpp) and `smolvlm ask -p`.
// Also a declared internal interface for apps/smolvlm/ask.cpp (scripts/check-layers.py).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace smolvlm {

inline constexpr std::string_view kImageMarker = "<image>";
inline constexpr std::string_view kVideoMarker = "<video>";  // as long as kImageMarker

struct MarkedPiece {
  enum class Kind { Text, Image, Video };
  Kind kind = Kind::Text;
  std::string_view text;  // Text: the text between markers (never empty); else the marker
};

// `text` cut at its markers, left to right. Linear in the text however many markers it holds.
std::vector<MarkedPiece> split_markers(std::string_view text);

// `text` with every marker removed, also those that removing one joins (so that the result
// cannot be read as a picture or a video).
std::string without_markers(std::string_view text);

}  // namespace smolvlm
