#include "chat/prompt.h"

#include <smolvlm/error.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string_view>

namespace smolvlm {

namespace {
const char kFake[] = "<fake_token_around_image>";
const char kGlobal[] = "<global-img>";
const std::string kImageToken(kImageMarker);  // the image token's text is the marker's

std::string repeat(const std::string& s, int n) {
  std::string out;
  out.reserve(s.size() * static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

std::string two_digits(long v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02ld", v);
  return buf;
}
}  // namespace

std::string render_chat(const std::vector<PromptMessage>& messages, bool add_generation_prompt,
                        std::vector<TextSpan>* plain) {
  std::string out = "<|im_start|>";
  for (const auto& m : messages) {
    std::string role = m.role;
    // Jinja's capitalize: first letter upper, the rest lower.
    for (auto& c : role) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!role.empty())
      role[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(role[0])));
    const bool image_first = !m.content.empty() && m.content[0].kind == PromptItem::Kind::Image;
    out += role + (image_first ? ":" : ": ");
    for (const auto& item : m.content) {
      switch (item.kind) {
        case PromptItem::Kind::Text:
          if (plain && item.plain && !item.text.empty()) {
            if (!plain->empty() && plain->back().end == out.size()) {
              plain->back().end += item.text.size();  // two parts in a row: one range
            } else {
              plain->push_back({out.size(), out.size() + item.text.size()});
            }
          }
          out += item.text;
          break;
        case PromptItem::Kind::Image:
          out += kImageMarker;
          break;
        case PromptItem::Kind::Video:
          out += kVideoMarker;
          break;
      }
    }
    out += "<end_of_utterance>\n";
  }
  if (add_generation_prompt) out += "Assistant:";
  return out;
}

std::string image_block(const ImageSlot& img, int seq) {
  const std::string tokens = repeat(kImageToken, seq);
  const std::string global = std::string(kFake) + kGlobal + tokens + kFake;
  if (img.rows == 0 || img.cols == 0) return global;
  std::string out;
  for (int r = 1; r <= img.rows; ++r) {
    for (int c = 1; c <= img.cols; ++c) {
      out += std::string(kFake) + "<row_" + std::to_string(r) + "_col_" + std::to_string(c) + ">" +
             tokens;
    }
    out += "\n";
  }
  return out + "\n" + global;
}

std::string number_words(int n) {
  static const char* kOnes[] = {"zero",    "one",     "two",       "three",    "four",
                                "five",    "six",     "seven",     "eight",    "nine",
                                "ten",     "eleven",  "twelve",    "thirteen", "fourteen",
                                "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"};
  static const char* kTens[] = {"",      "",      "twenty",  "thirty", "forty",
                                "fifty", "sixty", "seventy", "eighty", "ninety"};
  if (n < 0) return "minus " + number_words(-n);
  if (n < 20) return kOnes[n];
  if (n < 100) return std::string(kTens[n / 10]) + (n % 10 ? std::string("-") + kOnes[n % 10] : "");
  if (n < 1000) {
    return std::string(kOnes[n / 100]) + " hundred" +
           (n % 100 ? " and " + number_words(n % 100) : "");
  }
  if (n < 1000000) {
    return number_words(n / 1000) + " thousand" +
           (n % 1000 ? (n % 1000 < 100 ? " and " : ", ") + number_words(n % 1000) : "");
  }
  return std::to_string(n);
}

std::string video_block(const VideoSlot& video, int seq) {
  // Python's str(timedelta(seconds=int(D))) → "H:MM:SS" with unpadded hours.
  const long total = static_cast<long>(video.duration_s);
  const std::string duration = std::to_string(total / 3600) + ":" + two_digits(total / 60 % 60) +
                               ":" + two_digits(total % 60);
  std::string out = "You are provided the following series of " +
                    number_words(static_cast<int>(video.timestamps_s.size())) + " frames from a " +
                    duration + " [H:MM:SS] video.\n";
  const std::string frame = std::string(kFake) + kGlobal + repeat(kImageToken, seq) + kFake;
  for (double t : video.timestamps_s) {
    const long minutes = static_cast<long>(std::floor(t / 60.0));
    const long seconds = static_cast<long>(std::fmod(t, 60.0));
    out += "\nFrame from " + two_digits(minutes) + ":" + two_digits(seconds) + ":" + frame;
  }
  return out + "\n\n";
}

std::string expand_prompt(const std::string& prompt, const std::vector<ImageSlot>& images,
                          const std::vector<VideoSlot>& videos, int seq,
                          std::span<const TextSpan> plain, std::vector<TextSpan>* plain_out) {
  std::string out;
  size_t next_image = 0, next_video = 0, pos = 0;
  // The markers of prompt[pos, end): only those wholly inside it count.
  const auto expand_until = [&](size_t end) {
    for (const MarkedPiece& piece :
         split_markers(std::string_view(prompt).substr(pos, end - pos))) {
      if (piece.kind == MarkedPiece::Kind::Text) {
        out += piece.text;
      } else if (piece.kind == MarkedPiece::Kind::Image) {
        if (next_image >= images.size()) {
          throw Error("the prompt has more <image> markers than images (" +
                      std::to_string(images.size()) + " given)");
        }
        out += image_block(images[next_image++], seq);
      } else {
        if (next_video >= videos.size())
          throw Error("the prompt has more <video> markers than videos");
        out += video_block(videos[next_video++], seq);
      }
    }
    pos = end;
  };
  for (const TextSpan& span : plain) {
    const size_t begin = std::max(pos, std::min(span.begin, prompt.size()));
    const size_t end = std::max(begin, std::min(span.end, prompt.size()));
    expand_until(begin);
    if (plain_out && end > begin) plain_out->push_back({out.size(), out.size() + (end - begin)});
    out.append(prompt, begin, end - begin);
    pos = end;
  }
  expand_until(prompt.size());
  if (next_image != images.size()) {
    throw Error(std::to_string(images.size()) + " images given but the prompt places " +
                std::to_string(next_image));
  }
  if (next_video != videos.size()) throw Error("more videos given than <video> markers");
  return out;
}

}  // namespace smolvlm
