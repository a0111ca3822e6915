// A byte-level context-free grammar for constrained decoding, and its GBNF-style text form.
//
// The compiled form is flat: every rule is a list of alternatives, every alternative a run of
// elements ending in End. An element is a byte set (one byte out of 256) or a reference to a rule.
// Character classes over code points are turned into UTF-8 byte sequences when the text is parsed,
// and repetitions into right-recursive helper rules, so the matcher (matcher.h) only ever sees
// bytes. Left recursion (also through rules that can match nothing) is refused at parse time.
#pragma once

#include <bitset>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace smolvlm::constrain {

struct Element {
  enum class Kind : uint8_t { Bytes, Rule, End };
  Kind kind = Kind::End;
  int32_t index = 0;  // Bytes: into Grammar::byte_sets; Rule: the rule
};

struct Grammar {
  std::vector<Element> elements;            // every alternative's run, each ending in End
  std::vector<std::vector<int32_t>> rules;  // rule -> the start positions of its alternatives
  std::vector<std::string> rule_names;      // for messages
  std::vector<std::bitset<256>> byte_sets;  // the distinct byte sets
  int32_t root = 0;                         // the start rule
};

// Parses the GBNF-style text (documented in README "Structured outputs"):
//   name ::= alternative | alternative ...      # comment
// with "literals" (\n \t \r \\ \" \xHH \uHHHH escapes), [character classes] (ranges, ^ negation,
// the same escapes), . (any character), ( groups ), and the postfix operators * + ? {m} {m,} {m,n}.
// Rule names are letters, digits and '-' / '_'. The start rule is `root`. Throws smolvlm::Error
// with a one-line message on a syntax error, an undefined rule, or left recursion.
Grammar parse_gbnf(std::string_view text);

// Appends the alternatives matching exactly the UTF-8 encodings of code points lo..hi (surrogates
// excluded), each a list of byte ranges: {{lo0,hi0},{lo1,hi1},...}.
void utf8_ranges(uint32_t lo, uint32_t hi,
                 std::vector<std::vector<std::pair<uint8_t, uint8_t>>>& out);

}  // namespace smolvlm::constrain
