// Structured outputs: a constraint on what an answer may say (a JSON Schema, any JSON object, or
// a GBNF-style grammar), applied as a token mask at every sampling step. README "Structured
// outputs" documents the schema subset, the grammar syntax and the whitespace policy.
#pragma once

#include <memory>
#include <string>

namespace smolvlm {

namespace constrain {
struct Grammar;
}

class Constraint {
 public:
  // A JSON Schema (its text). Throws smolvlm::Error naming the first unsupported keyword, a bad
  // value, or JSON that does not parse.
  static std::shared_ptr<const Constraint> json_schema(const std::string& schema_json);
  // Any JSON object (OpenAI's response_format {"type": "json_object"}).
  static std::shared_ptr<const Constraint> json_object();
  // A GBNF-style grammar (start rule `root`). Throws smolvlm::Error on a syntax error.
  static std::shared_ptr<const Constraint> grammar(const std::string& gbnf);

  // The grammar text it was compiled from (for a schema: the generated grammar).
  const std::string& gbnf() const { return text_; }
  // The compiled grammar (for the engine).
  const std::shared_ptr<const constrain::Grammar>& compiled() const { return grammar_; }

 private:
  Constraint(std::string text, std::shared_ptr<const constrain::Grammar> g)
      : text_(std::move(text)), grammar_(std::move(g)) {}
  std::string text_;
  std::shared_ptr<const constrain::Grammar> grammar_;
};

}  // namespace smolvlm
