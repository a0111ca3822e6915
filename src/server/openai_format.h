// The JSON the server answers with, in OpenAI's chat-completions shapes.
#pragma once

#include <smolvlm/smolvlm.h>

#include <nlohmann/json.hpp>
#include <string>

namespace smolvlm::server {

// {"error":{"message","type","param","code"}}; empty param/code are null.
nlohmann::json error_body(const std::string& message, const std::string& type,
                          const std::string& param = {}, const std::string& code = {});

// "stop" for an end-of-sequence token or a stop string, else "length".
std::string finish_reason(const Result& r, bool stopped_by_string);

nlohmann::json usage_json(const Result& r);
// Vision, prefill and decode times, speeds, tiles and picture-cache hits.
nlohmann::json timings_json(const Result& r);

// The identity every chunk of one answer repeats.
struct CompletionId {
  std::string id;  // "chatcmpl-..."
  int64_t created = 0;
  std::string model;
};
CompletionId new_completion_id(const std::string& model);

nlohmann::json completion_json(const CompletionId& id, const std::string& text, const Result& r,
                               bool stopped_by_string);
// One chat.completion.chunk; `delta` as given, finish_reason null when empty. usage: null when
// the client asked for a usage chunk (OpenAI puts a null usage on the others).
nlohmann::json chunk_json(const CompletionId& id, nlohmann::json delta,
                          const std::string& finish_reason, bool null_usage);
// The last chunk with include_usage: no choices, the usage.
nlohmann::json usage_chunk_json(const CompletionId& id, const Result& r);

// One Server-Sent Event: "data: <json>\n\n" (invalid UTF-8 replaced, never thrown).
std::string sse_event(const nlohmann::json& j);
// JSON text for a response body, with the same replacement.
std::string dump(const nlohmann::json& j);

}  // namespace smolvlm::server
