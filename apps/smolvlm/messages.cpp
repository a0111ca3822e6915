// --messages: a conversation in the HF chat format, read from a JSON file.
#include "messages.h"

#include <nlohmann/json.hpp>

#include "formats/mapped_file.h"
#include "util/input_text.h"

namespace smolvlm::cli {

Conversation parse_messages(const std::string& text, const std::string& file) {
  const std::string path = one_line(file);
  const nlohmann::json j = parse_json_bounded(text, "'" + path + "'");
  if (!j.is_array()) throw Error("'" + path + "' must hold a JSON list of messages");
  Conversation conv;
  for (const auto& m : j) {
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content")) {
      throw Error("'" + path + "': each message needs a role and a content");
    }
    Message msg{m["role"].get<std::string>(), {}};
    const auto& content = m["content"];
    if (content.is_string()) {
      msg.content.push_back(Content::text(content.get<std::string>()));
    } else if (content.is_array()) {
      for (const auto& item : content) {
        if (!item.is_object()) {
          throw Error("'" + path + "': a content item is " + item.type_name() + ", not an object");
        }
        const std::string type = item.contains("type") && item["type"].is_string()
                                     ? item["type"].get<std::string>()
                                     : "";
        if (type == "text" && item.contains("text") && item["text"].is_string()) {
          msg.content.push_back(Content::text(item["text"].get<std::string>()));
        } else if (type == "image") {
          std::string p;
          for (const char* key : {"path", "image", "url"}) {
            if (item.contains(key) && item[key].is_string()) p = item[key].get<std::string>();
          }
          if (p.empty()) throw Error("'" + path + "': an image item needs a \"path\"");
          msg.content.push_back(Content::image_file(p));
        } else if (type == "video") {
          std::string p;
          for (const char* key : {"path", "video", "url"}) {
            if (item.contains(key) && item[key].is_string()) p = item[key].get<std::string>();
          }
          if (p.empty()) throw Error("'" + path + "': a video item needs a \"path\"");
          msg.content.push_back(Content::video_file(p));
        } else {
          // The type only, shortened: the item itself may be large or deeply nested.
          throw Error("'" + path + "': unsupported content item (type '" +
                      one_line(type.substr(0, 40)) +
                      "'; want text with a \"text\", image or video)");
        }
      }
    } else {
      throw Error("'" + path + "': content must be a string or a list");
    }
    conv.push_back(std::move(msg));
  }
  if (conv.empty() || conv.back().role != "user") {
    throw Error("'" + path + "': the conversation must end with a user turn");
  }
  return conv;
}

Conversation read_messages(const std::string& path) {
  return parse_messages(read_file(path, "messages file", kMaxJsonFileBytes), path);
}

}  // namespace smolvlm::cli
