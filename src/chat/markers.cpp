#include "chat/markers.h"

#include <algorithm>

namespace smolvlm {

std::vector<MarkedPiece> split_markers(std::string_view text) {
  constexpr size_t npos = std::string_view::npos;
  std::vector<MarkedPiece> out;
  size_t pos = 0;
  // Each kind's next marker is searched again only once passed, so that a line of many markers
  // of one kind is not searched to its end for the other kind at each of them.
  size_t next_image = text.find(kImageMarker), next_video = text.find(kVideoMarker);
  for (;;) {
    if (next_image != npos && next_image < pos) next_image = text.find(kImageMarker, pos);
    if (next_video != npos && next_video < pos) next_video = text.find(kVideoMarker, pos);
    const size_t at = std::min(next_image, next_video);
    if (at == npos) break;
    if (at > pos) out.push_back({MarkedPiece::Kind::Text, text.substr(pos, at - pos)});
    const bool image = at == next_image;
    const std::string_view marker = image ? kImageMarker : kVideoMarker;
    out.push_back({image ? MarkedPiece::Kind::Image : MarkedPiece::Kind::Video, marker});
    pos = at + marker.size();
  }
  if (pos < text.size()) out.push_back({MarkedPiece::Kind::Text, text.substr(pos)});
  return out;
}

std::string without_markers(std::string_view text) {
  // Kept as a stack, so that a marker that removing another one joins ("<ima<image>ge>") goes
  // too, in one pass: a marker left in the result would have ended the stack when its last
  // character went on.
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    out.push_back(c);
    const std::string_view tail =
        std::string_view(out).substr(out.size() - std::min(out.size(), kImageMarker.size()));
    if (tail == kImageMarker || tail == kVideoMarker) out.resize(out.size() - tail.size());
  }
  return out;
}

}  // namespace smolvlm
