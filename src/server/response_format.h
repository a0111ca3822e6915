// OpenAI's response_format for `smolvlm serve`: {"type":"text"}, {"type":"json_object"} and
// {"type":"json_schema","json_schema":{"name","schema","strict","description"}} -> the
// GenerationOptions' constraint (structured outputs). Errors are RequestError 400s naming the
// parameter.
#pragma once

#include <smolvlm/smolvlm.h>

#include <nlohmann/json.hpp>
#include <string_view>

namespace smolvlm::server {

// `body` is the request's text: a json_schema's members are generated in the order written there
// (nlohmann::json, which parsed it, sorts an object's members by name).
void apply_response_format(const nlohmann::json& response_format, GenerationOptions& options,
                           std::string_view body = {});

}  // namespace smolvlm::server
