#include "server/response_format.h"

#include "server/request.h"
#include "util/input_text.h"

namespace smolvlm::server {

using nlohmann::json;

void apply_response_format(const json& rf, GenerationOptions& options, std::string_view body) {
  auto fail = [](const std::string& what) {
    return RequestError(400, "response_format: " + what, "invalid_request_error",
                        "response_format");
  };
  if (!rf.is_object() || !rf.contains("type") || !rf["type"].is_string())
    throw fail("must be an object with a 'type'");
  const std::string type = rf["type"].get<std::string>();
  if (type == "text") return;
  try {
    if (type == "json_object") {
      options.constraint = Constraint::json_object();
      return;
    }
    if (type != "json_schema")
      throw fail("type " + quote_input(type) + " is not one of text, json_object, json_schema");
    if (!rf.contains("json_schema") || !rf["json_schema"].is_object())
      throw fail("'json_schema' must be an object with the schema");
    const json& js = rf["json_schema"];
    for (const auto& [key, value] : js.items()) {
      if (key != "name" && key != "schema" && key != "strict" && key != "description")
        throw fail("json_schema has an unknown field " + quote_input(key));
    }
    if (js.contains("name") && !js["name"].is_string())
      throw fail("json_schema.name must be a string");
    if (js.contains("strict") && !js["strict"].is_boolean() && !js["strict"].is_null())
      throw fail("json_schema.strict must be true or false");
    // No schema: any JSON object, as OpenAI does.
    if (!js.contains("schema") || js["schema"].is_null()) {
      options.constraint = Constraint::json_object();
      return;
    }
    std::string schema = js["schema"].dump();
    if (!body.empty()) {
      // The same schema with its members in their written order (the body parsed once already,
      // within the parser's bounds).
      const auto ordered = nlohmann::ordered_json::parse(body, nullptr, false);
      if (ordered.is_object() && ordered.contains("response_format") &&
          ordered["response_format"].is_object() &&
          ordered["response_format"].contains("json_schema") &&
          ordered["response_format"]["json_schema"].is_object() &&
          ordered["response_format"]["json_schema"].contains("schema"))
        schema = ordered["response_format"]["json_schema"]["schema"].dump();
    }
    options.constraint = Constraint::json_schema(schema);
  } catch (const RequestError&) {
    throw;
  } catch (const Error& e) {
    throw fail(e.what());
  }
}

}  // namespace smolvlm::server
