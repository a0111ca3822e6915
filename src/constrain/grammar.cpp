#include "constrain/grammar.h"

#include <smolvlm/error.h>

#include <algorithm>
#include <functional>
#include <map>
#include <unordered_map>

namespace smolvlm::constrain {

void utf8_ranges(uint32_t lo, uint32_t hi,
                 std::vector<std::vector<std::pair<uint8_t, uint8_t>>>& out) {
  if (lo > hi) return;
  if (hi > 0x10FFFF) hi = 0x10FFFF;
  if (lo > hi) return;
  // Surrogates are no characters.
  if (lo <= 0xDFFF && hi >= 0xD800) {
    if (lo < 0xD800) utf8_ranges(lo, 0xD7FF, out);
    if (hi > 0xDFFF) utf8_ranges(0xE000, hi, out);
    return;
  }
  // One encoded length at a time.
  for (uint32_t b : {0x7Fu, 0x7FFu, 0xFFFFu}) {
    if (lo <= b && b < hi) {
      utf8_ranges(lo, b, out);
      utf8_ranges(b + 1, hi, out);
      return;
    }
  }
  const int n = lo <= 0x7F ? 1 : lo <= 0x7FF ? 2 : lo <= 0xFFFF ? 3 : 4;
  if (n == 1) {
    out.push_back({{static_cast<uint8_t>(lo), static_cast<uint8_t>(hi)}});
    return;
  }
  // Split until every continuation byte spans a whole 0x80..0xBF block below the first that
  // differs, so the range is a product of byte ranges.
  for (int i = 1; i < n; ++i) {
    const uint32_t m = (1u << (6 * i)) - 1;
    if ((lo & ~m) != (hi & ~m)) {
      if ((lo & m) != 0) {
        utf8_ranges(lo, lo | m, out);
        utf8_ranges((lo | m) + 1, hi, out);
        return;
      }
      if ((hi & m) != m) {
        utf8_ranges(lo, (hi & ~m) - 1, out);
        utf8_ranges(hi & ~m, hi, out);
        return;
      }
    }
  }
  auto encode = [n](uint32_t c, uint8_t* b) {
    if (n == 2) {
      b[0] = static_cast<uint8_t>(0xC0 | (c >> 6));
      b[1] = static_cast<uint8_t>(0x80 | (c & 0x3F));
    } else if (n == 3) {
      b[0] = static_cast<uint8_t>(0xE0 | (c >> 12));
      b[1] = static_cast<uint8_t>(0x80 | ((c >> 6) & 0x3F));
      b[2] = static_cast<uint8_t>(0x80 | (c & 0x3F));
    } else {
      b[0] = static_cast<uint8_t>(0xF0 | (c >> 18));
      b[1] = static_cast<uint8_t>(0x80 | ((c >> 12) & 0x3F));
      b[2] = static_cast<uint8_t>(0x80 | ((c >> 6) & 0x3F));
      b[3] = static_cast<uint8_t>(0x80 | (c & 0x3F));
    }
  };
  uint8_t a[4], z[4];
  encode(lo, a);
  encode(hi, z);
  std::vector<std::pair<uint8_t, uint8_t>> seq;
  for (int i = 0; i < n; ++i) seq.emplace_back(a[i], z[i]);
  out.push_back(std::move(seq));
}

namespace {

constexpr int kMaxRepeat = 10000;

using Seq = std::vector<Element>;

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  Grammar run() {
    skip_space(true);
    while (pos_ < s_.size()) {
      const std::string name = identifier();
      if (name.empty()) fail("expected a rule name");
      skip_space(false);
      if (s_.substr(pos_, 3) != "::=") fail("expected '::=' after '" + name + "'");
      pos_ += 3;
      const int32_t r = rule_id(name);
      if (defined_[static_cast<size_t>(r)]) fail("rule '" + name + "' is defined twice");
      defined_[static_cast<size_t>(r)] = true;
      current_ = name;
      alts_[static_cast<size_t>(r)] = alternatives(/*nested=*/false);
      skip_space(true);
    }
    for (size_t r = 0; r < names_.size(); ++r)
      if (!defined_[r]) throw Error("grammar: rule '" + names_[r] + "' is used but not defined");
    const auto root = ids_.find("root");
    if (root == ids_.end()) throw Error("grammar: no 'root' rule");
    check_left_recursion();
    Grammar g;
    g.root = root->second;
    g.rule_names = names_;
    g.byte_sets = sets_;
    g.rules.resize(alts_.size());
    for (size_t r = 0; r < alts_.size(); ++r) {
      for (const Seq& seq : alts_[r]) {
        g.rules[r].push_back(static_cast<int32_t>(g.elements.size()));
        g.elements.insert(g.elements.end(), seq.begin(), seq.end());
        g.elements.push_back({Element::Kind::End, 0});
      }
    }
    return g;
  }

 private:
  std::string_view s_;
  size_t pos_ = 0;
  std::string current_;
  std::vector<std::string> names_;
  std::vector<bool> defined_;
  std::vector<std::vector<Seq>> alts_;
  std::unordered_map<std::string, int32_t> ids_;
  std::vector<std::bitset<256>> sets_;
  std::map<std::string, int32_t> set_ids_;
  int helpers_ = 0;
  int32_t any_char_ = -1;

  [[noreturn]] void fail(const std::string& what) const {
    size_t line = 1;
    for (size_t i = 0; i < pos_ && i < s_.size(); ++i) line += s_[i] == '\n';
    throw Error("grammar: line " + std::to_string(line) + ": " + what);
  }

  int32_t rule_id(const std::string& name) {
    const auto it = ids_.find(name);
    if (it != ids_.end()) return it->second;
    const auto id = static_cast<int32_t>(names_.size());
    ids_.emplace(name, id);
    names_.push_back(name);
    defined_.push_back(false);
    alts_.emplace_back();
    return id;
  }

  int32_t helper(std::vector<Seq> alts) {
    const int32_t id = rule_id(current_ + "@" + std::to_string(++helpers_));
    defined_[static_cast<size_t>(id)] = true;
    alts_[static_cast<size_t>(id)] = std::move(alts);
    return id;
  }

  Element bytes(const std::bitset<256>& set) {
    const std::string key = set.to_string();
    auto it = set_ids_.find(key);
    if (it == set_ids_.end()) {
      it = set_ids_.emplace(key, static_cast<int32_t>(sets_.size())).first;
      sets_.push_back(set);
    }
    return {Element::Kind::Bytes, it->second};
  }
  Element byte(uint8_t b) {
    std::bitset<256> set;
    set.set(b);
    return bytes(set);
  }

  static bool name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
  }
  std::string identifier() {
    const size_t start = pos_;
    while (pos_ < s_.size() && name_char(s_[pos_])) ++pos_;
    return std::string(s_.substr(start, pos_ - start));
  }

  // Skips blanks and comments; newlines too when `newlines`.
  void skip_space(bool newlines) {
    while (pos_ < s_.size()) {
      const char c = s_[pos_];
      if (c == '#') {
        while (pos_ < s_.size() && s_[pos_] != '\n') ++pos_;
      } else if (c == ' ' || c == '\t' || c == '\r' || (newlines && c == '\n')) {
        ++pos_;
      } else {
        break;
      }
    }
  }

  // True when the text at pos_ starts the next rule ("name ::=").
  bool at_rule_start() {
    const size_t save = pos_;
    const std::string name = identifier();
    skip_space(false);
    const bool yes = !name.empty() && s_.substr(pos_, 3) == "::=";
    pos_ = save;
    return yes;
  }

  std::vector<Seq> alternatives(bool nested) {
    std::vector<Seq> alts;
    alts.push_back(sequence(nested));
    while (pos_ < s_.size() && s_[pos_] == '|') {
      ++pos_;
      alts.push_back(sequence(nested));
    }
    return alts;
  }

  Seq sequence(bool nested) {
    Seq seq;
    for (;;) {
      skip_space(true);
      if (pos_ >= s_.size()) break;
      const char c = s_[pos_];
      if (c == '|') break;
      if (c == ')') {
        if (!nested) fail("unmatched ')'");
        break;
      }
      if (name_char(c) && at_rule_start()) break;
      Seq item = primary();
      postfix(item);
      seq.insert(seq.end(), item.begin(), item.end());
    }
    return seq;
  }

  uint32_t hex(int digits) {
    uint32_t v = 0;
    for (int i = 0; i < digits; ++i) {
      if (pos_ >= s_.size()) fail("truncated escape");
      const char c = s_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= static_cast<uint32_t>(c - 'A' + 10);
      else
        fail("bad hex digit in escape");
    }
    return v;
  }

  // One character (code point) of a literal or class, escapes resolved.
  uint32_t character() {
    if (pos_ >= s_.size()) fail("unexpected end of text");
    const auto c = static_cast<unsigned char>(s_[pos_]);
    if (c == '\\') {
      ++pos_;
      if (pos_ >= s_.size()) fail("truncated escape");
      const char e = s_[pos_++];
      switch (e) {
        case 'n':
          return '\n';
        case 't':
          return '\t';
        case 'r':
          return '\r';
        case '\\':
          return '\\';
        case '"':
          return '"';
        case '\'':
          return '\'';
        case '[':
          return '[';
        case ']':
          return ']';
        case '-':
          return '-';
        case '^':
          return '^';
        case '/':
          return '/';
        case 'x':
          return hex(2);
        case 'u':
          return hex(4);
        case 'U':
          return hex(8);
        default:
          fail(std::string("unknown escape '\\") + e + "'");
      }
    }
    // A UTF-8 character of the text itself.
    int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || pos_ + static_cast<size_t>(n) > s_.size()) fail("invalid UTF-8 in the text");
    uint32_t v = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
    for (int i = 1; i < n; ++i) {
      const auto d = static_cast<unsigned char>(s_[pos_ + static_cast<size_t>(i)]);
      if ((d & 0xC0) != 0x80) fail("invalid UTF-8 in the text");
      v = (v << 6) | (d & 0x3F);
    }
    pos_ += static_cast<size_t>(n);
    return v;
  }

  void append_utf8(uint32_t cp, Seq& seq) {
    std::vector<std::vector<std::pair<uint8_t, uint8_t>>> r;
    utf8_ranges(cp, cp, r);
    if (r.size() != 1) fail("a literal holds a code point that is no character");
    for (const auto& range : r[0]) seq.push_back(byte(range.first));
  }

  // Code point ranges -> one element (a byte set when all are ASCII, else a helper rule).
  Element char_class(const std::vector<std::pair<uint32_t, uint32_t>>& ranges) {
    std::vector<std::vector<std::pair<uint8_t, uint8_t>>> seqs;
    for (const auto& [lo, hi] : ranges) utf8_ranges(lo, hi, seqs);
    std::bitset<256> single;
    std::vector<Seq> alts;
    for (const auto& seq : seqs) {
      if (seq.size() == 1) {
        for (unsigned b = seq[0].first; b <= seq[0].second; ++b) single.set(b);
        continue;
      }
      Seq alt;
      for (const auto& [lo, hi] : seq) {
        std::bitset<256> set;
        for (unsigned b = lo; b <= hi; ++b) set.set(b);
        alt.push_back(bytes(set));
      }
      alts.push_back(std::move(alt));
    }
    if (alts.empty()) {
      if (single.none()) fail("an empty character class");
      return bytes(single);
    }
    if (single.any()) alts.insert(alts.begin(), Seq{bytes(single)});
    return {Element::Kind::Rule, helper(std::move(alts))};
  }

  Seq primary() {
    const char c = s_[pos_];
    if (c == '"') {
      ++pos_;
      Seq seq;
      while (pos_ < s_.size() && s_[pos_] != '"') {
        if (s_[pos_] == '\n') fail("newline inside a literal");
        const size_t start = pos_;
        const uint32_t cp = character();
        if (s_[start] == '\\') {
          append_utf8(cp, seq);
        } else {
          for (size_t i = start; i < pos_; ++i) seq.push_back(byte(static_cast<uint8_t>(s_[i])));
        }
      }
      if (pos_ >= s_.size()) fail("unterminated literal");
      ++pos_;
      return seq;
    }
    if (c == '[') {
      ++pos_;
      bool negate = false;
      if (pos_ < s_.size() && s_[pos_] == '^') negate = true, ++pos_;
      std::vector<std::pair<uint32_t, uint32_t>> ranges;
      while (pos_ < s_.size() && s_[pos_] != ']') {
        const uint32_t lo = character();
        uint32_t hi = lo;
        if (pos_ + 1 < s_.size() && s_[pos_] == '-' && s_[pos_ + 1] != ']') {
          ++pos_;
          hi = character();
          if (hi < lo) fail("a character range runs backwards");
        }
        ranges.emplace_back(lo, hi);
      }
      if (pos_ >= s_.size()) fail("unterminated character class");
      ++pos_;
      if (negate) {
        std::sort(ranges.begin(), ranges.end());
        std::vector<std::pair<uint32_t, uint32_t>> rest;
        uint32_t next = 0;
        for (const auto& [lo, hi] : ranges) {
          if (lo > next) rest.emplace_back(next, lo - 1);
          next = std::max(next, hi + 1);
        }
        if (next <= 0x10FFFF) rest.emplace_back(next, 0x10FFFF);
        ranges = std::move(rest);
      }
      return {char_class(ranges)};
    }
    if (c == '.') {
      ++pos_;
      if (any_char_ < 0) any_char_ = char_class({{0, 0x10FFFF}}).index;
      return {{Element::Kind::Rule, any_char_}};
    }
    if (c == '(') {
      ++pos_;
      std::vector<Seq> alts = alternatives(/*nested=*/true);
      skip_space(true);
      if (pos_ >= s_.size() || s_[pos_] != ')') fail("expected ')'");
      ++pos_;
      if (alts.size() == 1) return alts[0];
      return {{Element::Kind::Rule, helper(std::move(alts))}};
    }
    if (name_char(c)) return {{Element::Kind::Rule, rule_id(identifier())}};
    fail(std::string("unexpected character '") + c + "'");
  }

  int number() {
    const size_t start = pos_;
    long v = 0;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
      v = v * 10 + (s_[pos_++] - '0');
      if (v > kMaxRepeat) fail("a repetition count above " + std::to_string(kMaxRepeat));
    }
    if (pos_ == start) fail("expected a number in '{...}'");
    return static_cast<int>(v);
  }

  void postfix(Seq& item) {
    for (;;) {
      if (pos_ >= s_.size()) return;
      const char c = s_[pos_];
      int lo = 0, hi = -1;  // hi -1: no upper bound
      if (c == '*') {
        ++pos_;
      } else if (c == '+') {
        ++pos_;
        lo = 1;
      } else if (c == '?') {
        ++pos_;
        hi = 1;
      } else if (c == '{') {
        ++pos_;
        skip_space(false);
        lo = number();
        skip_space(false);
        hi = lo;
        if (pos_ < s_.size() && s_[pos_] == ',') {
          ++pos_;
          skip_space(false);
          hi = (pos_ < s_.size() && s_[pos_] == '}') ? -1 : number();
          skip_space(false);
        }
        if (pos_ >= s_.size() || s_[pos_] != '}') fail("expected '}'");
        ++pos_;
        if (hi >= 0 && hi < lo) fail("a repetition {m,n} with n < m");
      } else {
        return;
      }
      item = repeat(item, lo, hi);
    }
  }

  Seq repeat(const Seq& item, int lo, int hi) {
    Element x = item.size() == 1 ? item[0] : Element{Element::Kind::Rule, helper({item})};
    Seq out(static_cast<size_t>(lo), x);
    if (hi < 0) {
      // star ::= x star | ""
      const int32_t star = rule_id(current_ + "@" + std::to_string(++helpers_));
      defined_[static_cast<size_t>(star)] = true;
      alts_[static_cast<size_t>(star)] = {Seq{x, {Element::Kind::Rule, star}}, Seq{}};
      out.push_back({Element::Kind::Rule, star});
    } else if (hi > lo) {
      // opt_k ::= x opt_(k-1) | ""
      int32_t prev = -1;
      for (int k = 0; k < hi - lo; ++k) {
        Seq take{x};
        if (prev >= 0) take.push_back({Element::Kind::Rule, prev});
        prev = helper({std::move(take), Seq{}});
      }
      out.push_back({Element::Kind::Rule, prev});
    }
    return out;
  }

  void check_left_recursion() const {
    const size_t n = alts_.size();
    std::vector<bool> nullable(n, false);
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t r = 0; r < n; ++r) {
        if (nullable[r]) continue;
        for (const Seq& seq : alts_[r]) {
          bool all = true;
          for (const Element& e : seq) {
            if (e.kind != Element::Kind::Rule || !nullable[static_cast<size_t>(e.index)]) {
              all = false;
              break;
            }
          }
          if (all) {
            nullable[r] = true;
            changed = true;
            break;
          }
        }
      }
    }
    std::vector<std::vector<int32_t>> left(n);
    for (size_t r = 0; r < n; ++r)
      for (const Seq& seq : alts_[r])
        for (const Element& e : seq) {
          if (e.kind != Element::Kind::Rule) break;
          left[r].push_back(e.index);
          if (!nullable[static_cast<size_t>(e.index)]) break;
        }
    std::vector<int> mark(n, 0);  // 0 new, 1 on the path, 2 done
    std::function<void(size_t)> visit = [&](size_t r) {
      mark[r] = 1;
      for (int32_t t : left[r]) {
        const auto u = static_cast<size_t>(t);
        if (mark[u] == 1)
          throw Error("grammar: rule '" + names_[u] +
                      "' is left-recursive (it can reach itself before reading a character; a "
                      "repetition of something that can be empty does too)");
        if (mark[u] == 0) visit(u);
      }
      mark[r] = 2;
    };
    for (size_t r = 0; r < n; ++r)
      if (mark[r] == 0) visit(r);
  }
};

}  // namespace

Grammar parse_gbnf(std::string_view text) { return Parser(text).run(); }

}  // namespace smolvlm::constrain
