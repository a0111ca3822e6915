// Helpers for text that comes from outside (files, requests, command lines): quoting a piece of it
// in a one-line message, and parsing JSON with a bounded nesting depth. A declared internal
// interface for apps too: the commands quote their arguments with it (scripts/check-layers.py).
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace smolvlm {

// Deepest nesting of arrays and objects any JSON input may have. Real files (config.json,
// tokenizer.json, a conversation) stay under 10 levels; a bound keeps a hostile file from
// exhausting the stack in the parser, the destructor or a later dump.
inline constexpr int kMaxJsonDepth = 256;

// `text` quoted for a one-line message: at most `max_chars` bytes of it (then "..." and the full
// length), control characters and non-ASCII bytes escaped (\n, \x1b), so a hostile input can
// neither flood a terminal nor send it escape sequences.
std::string quote_input(std::string_view text, std::size_t max_chars = 80);

// The deepest nesting of `text` read as JSON (brackets outside strings), stopping early once it
// passes `limit`. Linear, no recursion.
int json_nesting_depth(std::string_view text, int limit = kMaxJsonDepth);

// json::parse with the nesting bound first: throws smolvlm::Error "WHERE: ..." naming `where`
// (a file or "the request body") for nesting past kMaxJsonDepth or text that is not JSON.
nlohmann::json parse_json_bounded(std::string_view text, const std::string& where);

}  // namespace smolvlm
