#include "constrain/json_schema.h"

#include <smolvlm/error.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <utility>
#include <vector>

namespace smolvlm::constrain {

namespace {

// Ordered: members are generated in the order of `properties`, as written.
using json = nlohmann::ordered_json;

const char* const kBase = R"(value ::= object | array | string | number | boolean | null
object ::= "{" ( string ":" value ( "," string ":" value )* )? "}"
array ::= "[" ( value ( "," value )* )? "]"
string ::= "\"" char* "\""
char ::= [^"\\\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} )
number ::= integer ( "." [0-9]+ )? ( [eE] [-+]? [0-9]+ )?
integer ::= "-"? ( "0" | [1-9] [0-9]* )
boolean ::= "true" | "false"
null ::= "null"
)";

// Keywords that only describe: accepted and ignored.
const std::set<std::string> kAnnotations = {"title",    "description", "$schema", "$id",
                                            "$comment", "examples",    "default", "deprecated",
                                            "readOnly", "writeOnly",   "$defs",   "definitions"};

// A GBNF literal for the bytes `s`.
std::string literal(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string cp_escape(uint32_t c) {
  char buf[16];
  if (c <= 0xFFFF)
    std::snprintf(buf, sizeof buf, "\\u%04X", c);
  else
    std::snprintf(buf, sizeof buf, "\\U%08X", c);
  return buf;
}

using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;

Ranges normalize(Ranges r) {
  std::sort(r.begin(), r.end());
  Ranges out;
  for (const auto& x : r) {
    if (!out.empty() && x.first <= out.back().second + 1)
      out.back().second = std::max(out.back().second, x.second);
    else
      out.push_back(x);
  }
  return out;
}

Ranges complement(const Ranges& r) {
  Ranges out;
  uint32_t next = 0;
  for (const auto& [lo, hi] : normalize(r)) {
    if (lo > next) out.emplace_back(next, lo - 1);
    next = std::max(next, hi + 1);
  }
  if (next <= 0x10FFFF) out.emplace_back(next, 0x10FFFF);
  return out;
}

// Characters a pattern may produce unescaped inside a JSON string: no '"', '\' or controls.
Ranges string_safe(const Ranges& r) {
  Ranges out;
  const Ranges banned = {{0, 0x1F}, {'"', '"'}, {'\\', '\\'}};
  for (const auto& [lo, hi] : normalize(r)) {
    uint32_t a = lo;
    for (const auto& [blo, bhi] : banned) {
      if (bhi < a || blo > hi) continue;
      if (blo > a) out.emplace_back(a, blo - 1);
      a = std::max(a, bhi + 1);
    }
    if (a <= hi) out.emplace_back(a, hi);
  }
  return out;
}

std::string class_text(const Ranges& r) {
  const Ranges safe = string_safe(r);
  if (safe.empty()) throw Error("json schema: a pattern's character class allows no character");
  std::string out = "[";
  for (const auto& [lo, hi] : safe) {
    out += cp_escape(lo);
    if (hi != lo) out += "-" + cp_escape(hi);
  }
  return out + "]";
}

// The regular-expression subset of `pattern` -> a GBNF expression (see README).
class Regex {
 public:
  explicit Regex(const std::string& p) : p_(p) {}
  std::string run() {
    size_t end = p_.size();
    if (pos_ < end && p_[pos_] == '^') ++pos_;
    if (end > pos_ && p_[end - 1] == '$' && (end < 2 || p_[end - 2] != '\\')) --end;
    limit_ = end;
    std::string e = alternatives();
    if (pos_ != limit_) fail("unexpected ')'");
    return e;
  }

 private:
  const std::string& p_;
  size_t pos_ = 0, limit_ = 0;

  [[noreturn]] void fail(const std::string& what) const {
    throw Error("json schema: pattern '" + p_ + "': " + what);
  }

  std::string alternatives() {
    std::vector<std::string> alts{sequence()};
    while (pos_ < limit_ && p_[pos_] == '|') {
      ++pos_;
      alts.push_back(sequence());
    }
    if (alts.size() == 1) return alts[0];
    std::string out = "(";
    for (size_t i = 0; i < alts.size(); ++i) out += (i ? " | " : " ") + alts[i];
    return out + " )";
  }

  std::string sequence() {
    std::string out = "\"\"";
    while (pos_ < limit_ && p_[pos_] != '|' && p_[pos_] != ')') {
      std::string atom = this->atom();
      atom += quantifier();
      out += " " + atom;
    }
    return "( " + out + " )";
  }

  std::string quantifier() {
    if (pos_ >= limit_) return "";
    const char c = p_[pos_];
    std::string q;
    if (c == '*' || c == '+' || c == '?') {
      ++pos_;
      q = std::string(1, c);
    } else if (c == '{') {
      const size_t close = p_.find('}', pos_);
      if (close == std::string::npos || close >= limit_) fail("unterminated '{'");
      const std::string body = p_.substr(pos_ + 1, close - pos_ - 1);
      if (body.empty() || body.find_first_not_of("0123456789,") != std::string::npos)
        fail("bad repetition '{" + body + "}'");
      q = "{" + body + "}";
      pos_ = close + 1;
    } else {
      return "";
    }
    if (pos_ < limit_ && (p_[pos_] == '?' || p_[pos_] == '+'))
      fail("lazy and possessive quantifiers are not supported");
    if (pos_ < limit_ && (p_[pos_] == '*' || p_[pos_] == '{'))
      fail("a quantifier after a quantifier");
    return q;
  }

  uint32_t utf8_char() {
    const auto c = static_cast<unsigned char>(p_[pos_]);
    const int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || pos_ + static_cast<size_t>(n) > limit_) fail("invalid UTF-8");
    uint32_t v = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
    for (int i = 1; i < n; ++i)
      v = (v << 6) | (static_cast<unsigned char>(p_[pos_ + static_cast<size_t>(i)]) & 0x3F);
    pos_ += static_cast<size_t>(n);
    return v;
  }

  static Ranges shorthand(char c) {
    switch (c) {
      case 'd':
        return {{'0', '9'}};
      case 'D':
        return complement({{'0', '9'}});
      case 'w':
        return {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
      case 'W':
        return complement({{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}});
      case 's':
        return {{' ', ' '}};
      case 'S':
        return complement({{' ', ' '}});
      default:
        return {};
    }
  }

  // After a backslash: a shorthand class, or one character.
  Ranges escape() {
    if (pos_ >= limit_) fail("a trailing backslash");
    const char e = p_[pos_++];
    Ranges r = shorthand(e);
    if (!r.empty()) return r;
    switch (e) {
      case 'n':
        return {{'\n', '\n'}};
      case 't':
        return {{'\t', '\t'}};
      case 'r':
        return {{'\r', '\r'}};
      default:
        break;
    }
    if (std::string(".^$|?*+()[]{}\\/-\"'").find(e) != std::string::npos)
      return {{static_cast<uint32_t>(e), static_cast<uint32_t>(e)}};
    fail(std::string("the escape '\\") + e + "' is not supported");
  }

  std::string atom() {
    const char c = p_[pos_];
    if (c == '(') {
      ++pos_;
      if (pos_ < limit_ && p_[pos_] == '?') {
        if (pos_ + 1 < limit_ && p_[pos_ + 1] == ':')
          pos_ += 2;
        else
          fail("only (?:...) groups are supported (no lookaround or named groups)");
      }
      std::string e = alternatives();
      if (pos_ >= limit_ || p_[pos_] != ')') fail("missing ')'");
      ++pos_;
      return "( " + e + " )";
    }
    if (c == '[') return bracket();
    if (c == '.') {
      ++pos_;
      return class_text({{0, 0x10FFFF}});
    }
    if (c == '^' || c == '$') fail("anchors are supported only at the start and end");
    if (c == '*' || c == '+' || c == '?' || c == '{') fail("a quantifier with nothing before it");
    if (c == '\\') {
      ++pos_;
      if (pos_ < limit_ && p_[pos_] >= '1' && p_[pos_] <= '9')
        fail("back-references are not supported");
      if (pos_ < limit_ && (p_[pos_] == 'b' || p_[pos_] == 'B')) fail("\\b is not supported");
      const Ranges r = escape();
      if (r.size() == 1 && r[0].first == r[0].second) return char_literal(r[0].first);
      return class_text(r);
    }
    return char_literal(utf8_char());
  }

  // One character as it appears inside a JSON string.
  static std::string char_literal(uint32_t cp) {
    if (cp == '"') return literal("\\\"");
    if (cp == '\\') return literal("\\\\");
    if (cp == '\n') return literal("\\n");
    if (cp == '\t') return literal("\\t");
    if (cp == '\r') return literal("\\r");
    if (cp < 0x20) throw Error("json schema: a pattern with a control character");
    return "\"" + cp_escape(cp) + "\"";
  }

  std::string bracket() {
    ++pos_;
    bool negate = false;
    if (pos_ < limit_ && p_[pos_] == '^') negate = true, ++pos_;
    Ranges r;
    bool first = true;
    while (pos_ < limit_ && (p_[pos_] != ']' || first)) {
      first = false;
      Ranges lo_set;
      if (p_[pos_] == '\\') {
        ++pos_;
        lo_set = escape();
      } else {
        const uint32_t ch = utf8_char();
        lo_set = {{ch, ch}};
      }
      if (lo_set.size() == 1 && lo_set[0].first == lo_set[0].second && pos_ + 1 < limit_ &&
          p_[pos_] == '-' && p_[pos_ + 1] != ']') {
        ++pos_;
        uint32_t hi;
        if (p_[pos_] == '\\') {
          ++pos_;
          const Ranges h = escape();
          if (h.size() != 1 || h[0].first != h[0].second) fail("a class range ends in a class");
          hi = h[0].first;
        } else {
          hi = utf8_char();
        }
        if (hi < lo_set[0].first) fail("a class range runs backwards");
        r.emplace_back(lo_set[0].first, hi);
      } else {
        r.insert(r.end(), lo_set.begin(), lo_set.end());
      }
    }
    if (pos_ >= limit_) fail("unterminated '['");
    ++pos_;
    return class_text(negate ? complement(r) : r);
  }
};

std::string digits_range(const std::string& a, const std::string& b);

std::string pow10_minus1(size_t n) { return std::string(n, '9'); }

// Same-length digit strings a <= b: every string of that length between them.
std::string digits_range(const std::string& a, const std::string& b) {
  if (a.empty()) return "\"\"";
  if (a == b) return literal(a);
  const std::string ra = a.substr(1), rb = b.substr(1);
  const size_t n = ra.size();
  if (a[0] == b[0]) return literal(a.substr(0, 1)) + " " + digits_range(ra, rb);
  auto any = [](size_t k) { return k == 0 ? std::string() : " [0-9]{" + std::to_string(k) + "}"; };
  if (ra == std::string(n, '0') && rb == pow10_minus1(n))
    return std::string("[") + a[0] + "-" + b[0] + "]" + any(n);
  std::vector<std::string> alts;
  alts.push_back(literal(a.substr(0, 1)) + " " + digits_range(ra, pow10_minus1(n)));
  if (a[0] + 1 <= b[0] - 1)
    alts.push_back(std::string("[") + static_cast<char>(a[0] + 1) + "-" +
                   static_cast<char>(b[0] - 1) + "]" + any(n));
  alts.push_back(literal(b.substr(0, 1)) + " " + digits_range(std::string(n, '0'), rb));
  std::string out = "(";
  for (size_t i = 0; i < alts.size(); ++i) out += (i ? " | " : " ") + alts[i];
  return out + " )";
}

// Non-negative integers lo..hi (hi < 0: no upper bound), written without leading zeros.
std::string nonneg_range(long long lo, long long hi) {
  std::vector<std::string> alts;
  const std::string slo = std::to_string(lo);
  const size_t top = hi < 0 ? slo.size() : std::to_string(hi).size();
  for (size_t len = slo.size(); len <= top; ++len) {
    const std::string first = len == 1 ? "0" : "1" + std::string(len - 1, '0');
    const std::string last = pow10_minus1(len);
    const std::string a = len == slo.size() ? slo : first;
    const std::string b = hi >= 0 && len == top ? std::to_string(hi) : last;
    alts.push_back(digits_range(a, b));
  }
  if (hi < 0) alts.push_back("[1-9] [0-9]{" + std::to_string(top) + ",}");
  if (alts.size() == 1) return alts[0];
  std::string out = "(";
  for (size_t i = 0; i < alts.size(); ++i) out += (i ? " | " : " ") + alts[i];
  return out + " )";
}

class Converter {
 public:
  explicit Converter(const json& root) : root_(root) {}

  std::string run() {
    const std::string root = visit(root_, "root");
    std::string out = "root ::= " + root + "\n";
    for (const auto& [name, body] : rules_) out += name + " ::= " + body + "\n";
    return out + kBase;
  }

 private:
  const json& root_;
  std::vector<std::pair<std::string, std::string>> rules_;
  std::set<std::string> used_ = {"root", "value",  "object",  "array",   "string",
                                 "char", "number", "integer", "boolean", "null"};
  std::map<std::string, std::string> refs_;

  std::string fresh(const std::string& hint) {
    std::string base;
    for (char c : hint)
      base +=
          ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) ? c : '-';
    if (base.empty()) base = "r";
    std::string name = base;
    for (int i = 2; used_.count(name); ++i) name = base + "-" + std::to_string(i);
    used_.insert(name);
    return name;
  }
  std::string add(const std::string& hint, const std::string& body) {
    const std::string name = fresh(hint);
    rules_.emplace_back(name, body);
    return name;
  }

  static std::string alts(const std::vector<std::string>& xs) {
    if (xs.size() == 1) return xs[0];
    std::string out = "(";
    for (size_t i = 0; i < xs.size(); ++i) out += (i ? " | " : " ") + xs[i];
    return out + " )";
  }

  [[noreturn]] static void fail(const std::string& what) { throw Error("json schema: " + what); }

  static void only(const json& s, const std::set<std::string>& allowed, const std::string& what) {
    for (const auto& [k, v] : s.items()) {
      if (kAnnotations.count(k) || allowed.count(k)) continue;
      fail("'" + k + "' together with " + what + " is not supported");
    }
  }

  const json& resolve(const std::string& ref) {
    if (ref.empty() || ref[0] != '#')
      fail("$ref '" + ref + "': only local references (#/...) are supported");
    const json* at = &root_;
    size_t pos = 1;
    while (pos < ref.size()) {
      if (ref[pos] != '/') fail("$ref '" + ref + "' is not a JSON pointer");
      const size_t next = ref.find('/', pos + 1);
      std::string part =
          ref.substr(pos + 1, next == std::string::npos ? std::string::npos : next - pos - 1);
      for (size_t i; (i = part.find("~1")) != std::string::npos;) part.replace(i, 2, "/");
      for (size_t i; (i = part.find("~0")) != std::string::npos;) part.replace(i, 2, "~");
      if (!at->is_object() || !at->contains(part)) fail("$ref '" + ref + "' points nowhere");
      at = &(*at)[part];
      pos = next == std::string::npos ? ref.size() : next;
    }
    return *at;
  }

  std::string visit(const json& s, const std::string& hint) {
    if (s.is_boolean()) {
      if (s.get<bool>()) return "value";
      fail("the schema 'false' allows nothing");
    }
    if (!s.is_object()) fail("a schema must be an object or a boolean");
    static const std::set<std::string> known = {"type",
                                                "properties",
                                                "required",
                                                "additionalProperties",
                                                "enum",
                                                "const",
                                                "items",
                                                "minItems",
                                                "maxItems",
                                                "anyOf",
                                                "oneOf",
                                                "allOf",
                                                "$ref",
                                                "minLength",
                                                "maxLength",
                                                "pattern",
                                                "minimum",
                                                "maximum",
                                                "exclusiveMinimum",
                                                "exclusiveMaximum",
                                                "format"};
    for (const auto& [k, v] : s.items())
      if (!kAnnotations.count(k) && !known.count(k)) fail("unsupported keyword '" + k + "'");
    if (s.contains("$ref")) {
      only(s, {"$ref"}, "$ref");
      const std::string ref = s["$ref"].get<std::string>();
      const auto it = refs_.find(ref);
      if (it != refs_.end()) return it->second;
      const std::string name = fresh(ref == "#" ? "root-ref" : ref.substr(ref.rfind('/') + 1));
      refs_.emplace(ref, name);
      const size_t slot = rules_.size();
      rules_.emplace_back(name, "");
      const std::string body = visit(resolve(ref), name);
      rules_[slot].second = body;
      return name;
    }
    if (s.contains("const")) {
      only(s, {"const", "type"}, "const");
      return literal(s["const"].dump());
    }
    if (s.contains("enum")) {
      only(s, {"enum", "type"}, "enum");
      if (!s["enum"].is_array() || s["enum"].empty()) fail("'enum' must be a non-empty list");
      std::vector<std::string> xs;
      for (const json& v : s["enum"]) xs.push_back(literal(v.dump()));
      return alts(xs);
    }
    for (const char* key : {"anyOf", "oneOf", "allOf"}) {
      if (!s.contains(key)) continue;
      only(s, {key}, std::string("'") + key + "'");
      const json& list = s[key];
      if (!list.is_array() || list.empty())
        fail(std::string("'") + key + "' must be a non-empty list");
      if (std::string(key) == "allOf" && list.size() != 1)
        fail("'allOf' with more than one schema is not supported");
      std::vector<std::string> xs;
      for (size_t i = 0; i < list.size(); ++i)
        xs.push_back(visit(list[i], hint + "-" + std::to_string(i)));
      return alts(xs);
    }
    std::vector<std::string> types;
    if (s.contains("type")) {
      const json& t = s["type"];
      if (t.is_string()) {
        types.push_back(t.get<std::string>());
      } else if (t.is_array() && !t.empty()) {
        for (const json& x : t) {
          if (!x.is_string()) fail("'type' lists names");
          types.push_back(x.get<std::string>());
        }
      } else {
        fail("'type' must be a name or a list of names");
      }
    } else if (s.contains("properties") || s.contains("additionalProperties") ||
               s.contains("required")) {
      types = {"object"};
    } else if (s.contains("items") || s.contains("minItems") || s.contains("maxItems")) {
      types = {"array"};
    } else if (s.contains("minLength") || s.contains("maxLength") || s.contains("pattern") ||
               s.contains("format")) {
      types = {"string"};
    } else if (s.contains("minimum") || s.contains("maximum")) {
      types = {"number"};
    } else {
      return "value";
    }
    std::vector<std::string> xs;
    for (const std::string& t : types) xs.push_back(typed(s, t, hint));
    return alts(xs);
  }

  static long long int_value(const json& v, const char* key) {
    if (v.is_number_integer()) return v.get<long long>();
    if (v.is_number_float()) {
      const double d = v.get<double>();
      if (d != static_cast<double>(static_cast<long long>(d)))
        fail(std::string("'") + key + "' must be a whole number for an integer");
      return static_cast<long long>(d);
    }
    fail(std::string("'") + key + "' must be a number");
  }

  static int count(const json& s, const char* key, int fallback) {
    if (!s.contains(key)) return fallback;
    const json& v = s[key];
    if (!v.is_number_integer() || v.get<long long>() < 0 || v.get<long long>() > 10000)
      fail(std::string("'") + key + "' must be a whole number from 0 to 10000");
    return v.get<int>();
  }

  static std::string repeat(const std::string& x, int lo, int hi) {
    if (hi < 0) return x + "{" + std::to_string(lo) + ",}";
    if (lo == hi) return x + "{" + std::to_string(lo) + "}";
    return x + "{" + std::to_string(lo) + "," + std::to_string(hi) + "}";
  }

  std::string typed(const json& s, const std::string& t, const std::string& hint) {
    if (t == "null") return "null";
    if (t == "boolean") return "boolean";
    if (t == "number") {
      for (const char* k : {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})
        if (s.contains(k))
          fail("'" + std::string(k) + "' is supported for integers only, not numbers");
      return "number";
    }
    if (t == "integer") return integer(s);
    if (t == "string") return string(s, hint);
    if (t == "array") {
      const int lo = count(s, "minItems", 0);
      const int hi = count(s, "maxItems", -1);
      if (hi >= 0 && hi < lo) fail("maxItems < minItems");
      std::string item = "value";
      if (s.contains("items")) {
        if (s["items"].is_array()) fail("'items' as a list (tuples) is not supported");
        item = visit(s["items"], hint + "-item");
      }
      std::string body;
      if (hi == 0) {
        body = "\"[]\"";
      } else if (lo == 0) {
        body = "\"[\" ( " + item + " " + repeat("( \",\" " + item + " )", 0, hi < 0 ? -1 : hi - 1) +
               " )? \"]\"";
      } else {
        body = "\"[\" " + item + " " +
               repeat("( \",\" " + item + " )", lo - 1, hi < 0 ? -1 : hi - 1) + " \"]\"";
      }
      return add(hint, body);
    }
    if (t == "object") return object(s, hint);
    fail("unknown type '" + t + "'");
  }

  std::string integer(const json& s) {
    bool has_lo = false, has_hi = false;
    long long lo = 0, hi = 0;
    if (s.contains("minimum")) has_lo = true, lo = int_value(s["minimum"], "minimum");
    if (s.contains("exclusiveMinimum")) {
      const long long v = int_value(s["exclusiveMinimum"], "exclusiveMinimum") + 1;
      lo = has_lo ? std::max(lo, v) : v;
      has_lo = true;
    }
    if (s.contains("maximum")) has_hi = true, hi = int_value(s["maximum"], "maximum");
    if (s.contains("exclusiveMaximum")) {
      const long long v = int_value(s["exclusiveMaximum"], "exclusiveMaximum") - 1;
      hi = has_hi ? std::min(hi, v) : v;
      has_hi = true;
    }
    const long long big = 1'000'000'000'000'000LL;
    if ((has_lo && (lo > big || lo < -big)) || (has_hi && (hi > big || hi < -big)))
      fail("integer bounds beyond 10^18 are not supported");
    if (!has_lo && !has_hi) return "integer";
    if (has_lo && has_hi && hi < lo) fail("the integer range is empty (maximum < minimum)");
    std::vector<std::string> xs;
    // Negative part: "-" then the magnitudes.
    if (!has_lo || lo < 0) {
      const long long mag_lo = has_hi && hi < 0 ? -hi : 1;
      xs.push_back("\"-\" " + nonneg_range(mag_lo, has_lo ? -lo : -1));
    }
    if (!has_hi || hi >= 0) xs.push_back(nonneg_range(has_lo && lo > 0 ? lo : 0, has_hi ? hi : -1));
    return alts(xs);
  }

  std::string string(const json& s, const std::string& hint) {
    const bool pattern = s.contains("pattern"), format = s.contains("format");
    const bool lengths = s.contains("minLength") || s.contains("maxLength");
    if ((pattern ? 1 : 0) + (format ? 1 : 0) + (lengths ? 1 : 0) > 1)
      fail("only one of pattern, format and minLength/maxLength per string is supported");
    if (pattern) {
      if (!s["pattern"].is_string()) fail("'pattern' must be a string");
      return add(hint, "\"\\\"\" " + regex_to_gbnf(s["pattern"].get<std::string>()) + " \"\\\"\"");
    }
    if (format) {
      const std::string f = s["format"].is_string() ? s["format"].get<std::string>() : "";
      return format_rule(f);
    }
    if (lengths) {
      const int lo = count(s, "minLength", 0);
      const int hi = count(s, "maxLength", -1);
      if (hi >= 0 && hi < lo) fail("maxLength < minLength");
      return add(hint, "\"\\\"\" " + repeat("char", lo, hi) + " \"\\\"\"");
    }
    return "string";
  }

  std::string format_rule(const std::string& f) {
    static const std::map<std::string, std::string> bodies = {
        {"date",
         R"([0-9]{4} "-" ( "0" [1-9] | "1" [0-2] ) "-" ( "0" [1-9] | [12] [0-9] | "3" [01] ))"},
        {"time",
         R"(( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{1,6} )? ( "Z" | [+-] ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ))"},
        {"uuid", R"([0-9a-f]{8} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{12})"},
        {"email",
         R"([a-zA-Z0-9_%+-]{1,32} ( "." [a-zA-Z0-9_%+-]{1,32} ){0,3} "@" [a-zA-Z0-9]{1,32} ( "." [a-zA-Z0-9]{1,32} ){0,3} "." [a-zA-Z]{2,12})"},
    };
    const std::string key = f == "date-time" ? "date-time" : f;
    const std::string name = "format-" + key;
    if (used_.count(name)) return "( \"\\\"\" " + name + " \"\\\"\" )";
    if (f == "date-time") {
      format_rule("date");
      format_rule("time");
      used_.insert(name);
      rules_.emplace_back(name, "format-date \"T\" format-time");
    } else {
      const auto it = bodies.find(f);
      if (it == bodies.end()) fail("unsupported format '" + f + "'");
      used_.insert(name);
      rules_.emplace_back(name, it->second);
    }
    return "( \"\\\"\" " + name + " \"\\\"\" )";
  }

  std::string object(const json& s, const std::string& hint) {
    const json* props = s.contains("properties") ? &s["properties"] : nullptr;
    if (props && !props->is_object()) fail("'properties' must be an object");
    std::set<std::string> required;
    if (s.contains("required")) {
      if (!s["required"].is_array()) fail("'required' must be a list");
      for (const json& r : s["required"]) {
        if (!r.is_string()) fail("'required' lists names");
        const std::string name = r.get<std::string>();
        if (!props || !props->contains(name))
          fail("required property '" + name + "' is not in 'properties'");
        required.insert(name);
      }
    }
    const json* extra = s.contains("additionalProperties") ? &s["additionalProperties"] : nullptr;
    if (!props || props->empty()) {
      if (extra && extra->is_boolean() && !extra->get<bool>()) return "\"{}\"";
      if (extra && extra->is_object()) {
        const std::string v = visit(*extra, hint + "-value");
        return add(hint,
                   "\"{\" ( string \":\" " + v + " ( \",\" string \":\" " + v + " )* )? \"}\"");
      }
      return "object";
    }
    if (extra && !extra->is_boolean())
      fail("'additionalProperties' as a schema together with 'properties' is not supported");
    // Members in order; optional ones may be left out. m(i, first): members i.. after `first`.
    std::vector<std::pair<std::string, std::string>> members;  // key literal + value
    std::vector<bool> needed;
    for (const auto& [k, v] : props->items()) {
      members.emplace_back(literal(json(k).dump()), visit(v, hint + "-" + k));
      needed.push_back(required.count(k) > 0);
    }
    const size_t n = members.size();
    // names[i][f]: the rule for members i.. when f (1: none written yet).
    std::vector<std::array<std::string, 2>> names(n + 1);
    std::vector<std::array<bool, 2>> empty(n + 1, {true, true});
    for (size_t i = n; i-- > 0;) {
      for (int f = 0; f < 2; ++f) {
        const std::string sep = f ? "" : "\",\" ";
        const std::string kv = sep + members[i].first + " \":\" " + members[i].second;
        auto rest = [&](int g) {
          return names[i + 1][g].empty() ? std::string() : " " + names[i + 1][g];
        };
        std::string body = kv + rest(0);
        if (!needed[i]) {
          const std::string skip = names[i + 1][f];
          body = "( " + body + " )" + (skip.empty() ? "?" : " | " + skip);
        }
        names[i][f] = add(hint + "-m" + std::to_string(i) + (f ? "f" : ""), body);
      }
    }
    return add(hint, "\"{\" " + names[0][1] + " \"}\"");
  }
};

}  // namespace

std::string regex_to_gbnf(const std::string& pattern) { return Regex(pattern).run(); }

std::string json_schema_to_gbnf(const json& schema) { return Converter(schema).run(); }

std::string any_json_object_gbnf() { return std::string("root ::= object\n") + kBase; }

}  // namespace smolvlm::constrain
