#include "util/json_brief.h"

#include <cmath>

#include "util/input_text.h"

namespace smolvlm {

std::string brief_json(const nlohmann::json& v) {
  if (v.is_string()) return quote_input(v.get_ref<const std::string&>());
  if (v.is_array()) return "an array of " + std::to_string(v.size()) + " items";
  if (v.is_object()) return "an object of " + std::to_string(v.size()) + " keys";
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isnan(d)) return "nan";
    if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  }
  if (v.is_binary()) return "binary data";
  return v.dump();  // a number, a boolean or null: short
}

}  // namespace smolvlm
