// --messages: a whole conversation in the HF chat format, a JSON list of
// {role, content: "text" | [{type: text, text} | {type: image, path}]}.
#pragma once

#include <smolvlm/smolvlm.h>

#include <string>

namespace smolvlm::cli {

// Reads and parses the file (at most kMaxJsonFileBytes, a regular file); throws smolvlm::Error
// naming it.
Conversation read_messages(const std::string& path);
// The same from the file's text; `path` names it in messages.
Conversation parse_messages(const std::string& text, const std::string& path);

}  // namespace smolvlm::cli
