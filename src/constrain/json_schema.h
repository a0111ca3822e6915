// A JSON Schema subset turned into the GBNF-style text of grammar.h (README "Structured outputs"
// lists the keywords, the regular-expression subset of `pattern` and the approximations of
// `format`). Output is compact JSON: no whitespace outside strings, members in `properties` order
// (hence ordered_json: a plain nlohmann::json would sort them by name).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace smolvlm::constrain {

// Throws smolvlm::Error naming the first unsupported keyword or bad value.
std::string json_schema_to_gbnf(const nlohmann::ordered_json& schema);

// Any JSON object (OpenAI's response_format {"type": "json_object"}).
std::string any_json_object_gbnf();

// A JSON-Schema `pattern` (the regular-expression subset) as a GBNF expression for the characters
// between a string's quotes. Exposed for the tests.
std::string regex_to_gbnf(const std::string& pattern);

}  // namespace smolvlm::constrain
