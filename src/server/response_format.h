// OpenAI's response_format for `smolvlm serve`: {"type":"text"}, {"type":"json_object"} and
// {"type":"json_schema","json_schema":{"name","schema","strict","description"}} -> the
// GenerationOptions' constraint (structured outputs). Errors are RequestError 400s naming the
// parameter.
#pragma once

#include <smolvlm/smolvlm.h>

#include <nlohmann/json.hpp>

namespace smolvlm::server {

void apply_response_format(const nlohmann::json& response_format, GenerationOptions& options);

}  // namespace smolvlm::server
