// A JSON value from outside named in a one-line message without serialising it whole: a config
// key can hold a 7 MB string or an object nested hundreds deep, and dump() would put all of it
// (or overflow the stack) into the message.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace smolvlm {

// Numbers, booleans and null as JSON writes them (non-finite numbers as "inf"/"nan", which
// dump() would write as null); strings through quote_input (at most 80 bytes, escaped); arrays
// and objects by their kind and size ("an array of 3 items").
std::string brief_json(const nlohmann::json& v);

}  // namespace smolvlm
