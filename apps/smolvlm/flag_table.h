// A subcommand's flags declared once, as a table: each entry has its spellings, the name of its
// value, its help and what it does with the value. The parser and the help both read the table,
// so the help lists exactly the flags that parse (the idea of gemma.cpp's ArgsBase::ForEach).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace smolvlm::cli {

struct Flag {
  std::vector<std::string> names;  // "-m", "--model": the short one first
  std::string value;               // "DIR"; empty: a switch, which takes no value
  std::string help;                // lines separated by '\n'
  // Called with the spelling used and the value ("" for a switch); throws UsageError (or
  // smolvlm::Error) for a bad value.
  std::function<void(const std::string& name, const std::string& value)> apply;
};

class FlagTable {
 public:
  // -h/--help is the first entry of every table.
  FlagTable();

  // Throws std::logic_error when a spelling is already taken (a programming error).
  void add(Flag flag);
  void add(std::vector<std::string> names, std::string value, std::string help,
           std::function<void(const std::string& name, const std::string& value)> apply) {
    add(Flag{std::move(names), std::move(value), std::move(help), std::move(apply)});
  }
  // The entry spelled `name`, to reword a shared flag's help for one subcommand; throws
  // std::logic_error when there is none.
  Flag& operator[](std::string_view name);

  // Parses argv[1..]: every argument must be a flag of the table (else UsageError "unknown
  // option"). Returns false at -h/--help, which stops the parse: print help() and exit 0.
  bool parse(int argc, char** argv) const;
  // Consumes argv[i] (and its value, advancing i) when it is a flag of the table.
  bool parse_one(int argc, char** argv, int& i) const;

  // One entry a flag, in the order added: "  -m, --model DIR         help", continued lines
  // indented to the help column.
  std::string help() const;

  const std::vector<Flag>& flags() const { return flags_; }

 private:
  const Flag* find(std::string_view name) const;
  std::vector<Flag> flags_;
};

}  // namespace smolvlm::cli
