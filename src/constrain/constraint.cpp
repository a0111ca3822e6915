#include <smolvlm/constraint.h>
#include <smolvlm/error.h>

#include "constrain/grammar.h"
#include "constrain/json_schema.h"

namespace smolvlm {

std::shared_ptr<const Constraint> Constraint::grammar(const std::string& gbnf) {
  auto g = std::make_shared<const constrain::Grammar>(constrain::parse_gbnf(gbnf));
  return std::shared_ptr<const Constraint>(new Constraint(gbnf, std::move(g)));
}

std::shared_ptr<const Constraint> Constraint::json_schema(const std::string& schema_json) {
  nlohmann::ordered_json schema;  // members keep their order
  try {
    schema = nlohmann::ordered_json::parse(schema_json);
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("json schema: not valid JSON: ") + e.what());
  }
  return grammar(constrain::json_schema_to_gbnf(schema));
}

std::shared_ptr<const Constraint> Constraint::json_object() {
  return grammar(constrain::any_json_object_gbnf());
}

}  // namespace smolvlm
