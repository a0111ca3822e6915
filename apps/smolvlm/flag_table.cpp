// The flag table: one parser and one help printer for every subcommand (see flag_table.h).
#include "flag_table.h"

#include <stdexcept>

#include "cli.h"
#include "util/input_text.h"

namespace smolvlm::cli {

namespace {

constexpr size_t kHelpColumn = 26;  // where the help text starts

}  // namespace

FlagTable::FlagTable() { flags_.push_back({{"-h", "--help"}, "", "this help", nullptr}); }

void FlagTable::add(Flag flag) {
  for (const std::string& n : flag.names) {
    if (find(n)) throw std::logic_error("flag " + n + " declared twice");
  }
  flags_.push_back(std::move(flag));
}

Flag& FlagTable::operator[](std::string_view name) {
  if (const Flag* f = find(name)) return const_cast<Flag&>(*f);
  throw std::logic_error("no flag " + std::string(name));
}

const Flag* FlagTable::find(std::string_view name) const {
  for (const Flag& f : flags_) {
    for (const std::string& n : f.names) {
      if (n == name) return &f;
    }
  }
  return nullptr;
}

bool FlagTable::parse_one(int argc, char** argv, int& i) const {
  const std::string name = argv[i];
  const Flag* f = find(name);
  if (!f || !f->apply) return false;
  f->apply(name, f->value.empty() ? std::string() : flag_value(argc, argv, i));
  return true;
}

bool FlagTable::parse(int argc, char** argv) const {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") return false;
    if (!parse_one(argc, argv, i)) throw UsageError("unknown option " + quote_input(a));
  }
  return true;
}

std::string FlagTable::help() const {
  std::string out;
  for (const Flag& f : flags_) {
    // A flag without a short spelling lines its long one up under the others' long ones.
    std::string label = f.names.front().size() == 2 ? "  " : "      ";
    for (size_t k = 0; k < f.names.size(); ++k) label += (k ? ", " : "") + f.names[k];
    if (!f.value.empty()) label += " " + f.value;
    label += label.size() + 2 <= kHelpColumn ? std::string(kHelpColumn - label.size(), ' ') : "  ";
    out += label;
    size_t start = 0;
    for (;;) {
      const size_t nl = f.help.find('\n', start);
      out += f.help.substr(start, nl - start) + "\n";
      if (nl == std::string::npos) break;
      out += std::string(kHelpColumn, ' ');
      start = nl + 1;
    }
  }
  return out;
}

}  // namespace smolvlm::cli
