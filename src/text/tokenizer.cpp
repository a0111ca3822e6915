#include "text/tokenizer.h"

#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>
#include <queue>

#include "formats/mapped_file.h"
#include "smolvlm/error.h"
#include "text/unicode.h"
#include "util/input_text.h"
#include "util/json_brief.h"

namespace smolvlm {
namespace {

using json = nlohmann::json;

// GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68 bytes are
// moved to U+0100.. in byte order, so every byte has a visible, non-space character.
std::array<char32_t, 256> make_byte_to_char() {
  std::array<char32_t, 256> table{};
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    table[b] = printable ? static_cast<char32_t>(b) : next++;
  }
  return table;
}

const std::array<char32_t, 256>& byte_to_char() {
  static const std::array<char32_t, 256> table = make_byte_to_char();
  return table;
}

// Inverse of byte_to_char() over U+0000..U+0143; -1 where a character stands for no byte.
int char_to_byte(char32_t cp) {
  static const std::array<int16_t, 324> table = [] {
    std::array<int16_t, 324> t{};
    t.fill(-1);
    for (int b = 0; b < 256; ++b) t[byte_to_char()[b]] = static_cast<int16_t>(b);
    return t;
  }();
  return cp < table.size() ? table[cp] : -1;
}

// A token's byte-level string back to bytes. Like HF's ByteLevel decoder, a string holding a
// character outside the table is taken verbatim.
std::string token_string_to_bytes(const std::string& token) {
  std::string bytes;
  for (size_t i = 0; i < token.size();) {
    const Utf8Char c = utf8_decode(token, i);
    const int b = c.status == Utf8Status::kValid ? char_to_byte(c.cp) : -1;
    if (b < 0) return token;
    bytes += static_cast<char>(b);
    i += c.len;
  }
  return bytes;
}

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

// One code point of the text being pre-tokenized. Invalid UTF-8 comes as U+FFFD of class kOther
// covering its bytes, so it sticks to neighbouring punctuation and keeps its original bytes.
struct CharInfo {
  uint32_t offset;
  uint32_t len;
  char32_t cp;
  CharClass cls;
};

// Length in characters of the GPT-2 pattern's match at c[i] (i < end), the pattern being
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// tried in that order (leftmost alternative wins, as in a backtracking regex engine).
size_t match_gpt2(const CharInfo* c, size_t i, size_t end) {
  if (c[i].cp == '\'' && i + 1 < end) {
    const char32_t a = c[i + 1].cp;
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (i + 2 < end) {
      const char32_t b = c[i + 2].cp;
      if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    }
  }
  // The three " ?X+" alternatives: the classes are disjoint, so at most one applies.
  const size_t first = c[i].cp == ' ' ? i + 1 : i;
  if (first < end && c[first].cls != CharClass::kSpace) {
    const CharClass cls = c[first].cls;
    size_t j = first + 1;
    while (j < end && c[j].cls == cls) ++j;
    return j - i;
  }
  if (c[i].cls != CharClass::kSpace) return 1;  // unreachable: a lone ' ' is kSpace
  size_t j = i + 1;
  while (j < end && c[j].cls == CharClass::kSpace) ++j;
  if (j == end) return j - i;        // \s+(?!\S) up to the end of the piece
  if (j - i >= 2) return j - i - 1;  // \s+(?!\S) backs off one, which goes to the next word
  return 1;                          // \s+
}

[[noreturn]] void fail_file(const std::string& path, const std::string& why) {
  std::string msg = "invalid tokenizer file '" + path + "': " + why;
  for (char& ch : msg) {
    if (ch == '\n' || ch == '\r') ch = ' ';  // Error messages are one line
  }
  throw Error(msg);
}

// nlohmann's message without its "[json.exception.type_error.302] " prefix, which means nothing
// to a person; what remains ("key 'model' not found", "type must be string, but is number")
// names only keys and types of the file, never its values.
std::string json_failure(const nlohmann::json::exception& e) {
  const std::string what = e.what();
  const size_t end = what.rfind("] ", what.find(' '));
  return what.rfind("[json.exception.", 0) == 0 && end != std::string::npos ? what.substr(end + 2)
                                                                            : what;
}

// A token id as written in the file: an integer from 0 to vocab_size - 1.
int32_t token_id_in(const json& id, const std::string& what, int64_t vocab_size) {
  if (!id.is_number_integer()) throw Error(what + " has id " + brief_json(id) + ", not an integer");
  const bool in_range = id.is_number_unsigned() ? id.get<uint64_t>() < uint64_t(vocab_size)
                                                : id.get<int64_t>() >= 0;  // negative otherwise
  if (!in_range) {
    throw Error(what + " has id " + brief_json(id) + ", outside the vocabulary (ids 0 to " +
                std::to_string(vocab_size - 1) + ": the vocab and the added tokens)");
  }
  return static_cast<int32_t>(id.get<int64_t>());
}

bool is_type(const json& node, const char* type) {
  return node.is_object() && node.value("type", std::string()) == type;
}

// Returns whether the pre-tokenizer splits digits first; throws on layouts we do not implement.
bool check_pre_tokenizer(const json& pre) {
  const auto check_byte_level = [](const json& bl) {
    if (!is_type(bl, "ByteLevel") || bl.value("add_prefix_space", false) ||
        !bl.value("use_regex", true)) {
      throw Error("unsupported ByteLevel pre_tokenizer settings");
    }
  };
  if (is_type(pre, "ByteLevel")) {
    check_byte_level(pre);
    return false;
  }
  if (is_type(pre, "Sequence")) {
    const json& seq = pre.at("pretokenizers");
    if (seq.size() == 2 && is_type(seq[0], "Digits") && seq[0].value("individual_digits", false)) {
      check_byte_level(seq[1]);
      return true;
    }
  }
  throw Error("unsupported pre_tokenizer (want [Digits(individual_digits), ByteLevel])");
}

}  // namespace

Tokenizer Tokenizer::from_hf_json_file(const std::string& path) {
  return from_hf_json(read_file(path, "tokenizer file", kMaxTokenizerFileBytes), path);
}

Tokenizer Tokenizer::from_hf_json(const std::string& text, const std::string& path) {
  Tokenizer tok;
  const json root = parse_json_bounded(text, "invalid tokenizer file '" + one_line(path) + "'");
  try {
    const json& model = root.at("model");
    if (model.at("type") != "BPE") throw Error("model.type is not \"BPE\"");
    if (model.value("byte_fallback", false) || model.value("ignore_merges", false)) {
      throw Error("byte_fallback / ignore_merges are not supported");
    }
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      if (model.contains(key) && !model[key].is_null() && model[key] != "") {
        throw Error(std::string(key) + " is not supported");
      }
    }
    if (model.contains("dropout") && !model["dropout"].is_null() && model["dropout"] != 0) {
      throw Error("BPE dropout is not supported");
    }
    if (root.contains("normalizer") && !root["normalizer"].is_null()) {
      throw Error("normalizers are not supported");
    }
    tok.split_digits_ = check_pre_tokenizer(root.at("pre_tokenizer"));

    // Ids must be dense: the model's vocab plus added tokens above it, so every id lies below
    // the count of both (checked before a table of that size is made).
    const json& vocab = model.at("vocab");
    if (!vocab.is_object()) throw Error("model.vocab is not an object");
    const json no_added = json::array();
    const json& added_json = root.contains("added_tokens") && !root["added_tokens"].is_null()
                                 ? root["added_tokens"]
                                 : no_added;
    if (!added_json.is_array()) throw Error("added_tokens is not a list");
    const int64_t vocab_size = static_cast<int64_t>(vocab.size() + added_json.size());
    if (vocab_size >= (int64_t{1} << 24)) throw Error("too many tokens");
    std::vector<AddedToken> added;
    for (const json& a : added_json) {
      if (a.value("lstrip", false) || a.value("rstrip", false) || a.value("single_word", false)) {
        throw Error("added token options lstrip/rstrip/single_word are not supported");
      }
      added.push_back({a.at("content").get<std::string>(), 0, a.value("special", false)});
      added.back().id =
          token_id_in(a.at("id"), "added token " + quote_input(added.back().content), vocab_size);
    }
    int64_t max_id = -1;
    for (const auto& [token, id_json] : vocab.items()) {
      max_id = std::max<int64_t>(
          max_id, token_id_in(id_json, "vocab token " + quote_input(token), vocab_size));
    }
    for (const AddedToken& a : added) max_id = std::max<int64_t>(max_id, a.id);
    std::vector<std::string> tokens(static_cast<size_t>(max_id + 1));
    std::vector<bool> seen(tokens.size(), false);
    for (const auto& [token, id_json] : vocab.items()) {
      const int64_t id = id_json.get<int64_t>();
      if (id < 0 || seen[id]) throw Error("bad or duplicate vocab id " + std::to_string(id));
      tokens[id] = token;
      seen[id] = true;
    }
    for (const AddedToken& a : added) {
      if (a.id < 0) throw Error("negative added token id");
      if (!seen[a.id]) tokens[a.id] = a.content;
      seen[a.id] = true;
    }
    const auto gap = std::find(seen.begin(), seen.end(), false);
    if (gap != seen.end()) throw Error("no token has id " + std::to_string(gap - seen.begin()));

    tok.set_vocab(std::move(tokens));
    tok.merges_.reserve(model.at("merges").size());
    int32_t rank = 0;
    for (const json& m : model.at("merges")) {
      if (m.is_string()) {
        const std::string& s = m.get_ref<const std::string&>();
        const size_t sp = s.find(' ');
        if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos) {
          throw Error("merge " + quote_input(s) + " is not two tokens");
        }
        tok.add_merge(std::string_view(s).substr(0, sp), std::string_view(s).substr(sp + 1), rank);
      } else {
        if (!m.is_array() || m.size() != 2) throw Error("a merge is neither \"a b\" nor [a, b]");
        tok.add_merge(m[0].get_ref<const std::string&>(), m[1].get_ref<const std::string&>(), rank);
      }
      ++rank;
    }
    tok.index_bytes();
    tok.set_added(added);
  } catch (const json::exception& e) {
    fail_file(path, json_failure(e));
  } catch (const Error& e) {
    fail_file(path, e.what());
  }
  return tok;
}

Tokenizer Tokenizer::from_vocab(std::vector<std::string> tokens,
                                const std::vector<std::string>& merges,
                                const std::vector<AddedToken>& added) {
  Tokenizer tok;
  try {
    tok.set_vocab(std::move(tokens));
    tok.merges_.reserve(merges.size());
    int32_t rank = 0;
    for (const std::string& m : merges) {
      const size_t sp = m.find(' ');
      if (sp == std::string::npos) throw Error("merge " + quote_input(m) + " is not two tokens");
      tok.add_merge(std::string_view(m).substr(0, sp), std::string_view(m).substr(sp + 1), rank++);
    }
    tok.index_bytes();
    tok.set_added(added);
  } catch (const Error& e) {
    throw Error(std::string("invalid tokenizer vocabulary: ") + e.what());
  }
  return tok;
}

void Tokenizer::set_vocab(std::vector<std::string> tokens) {
  if (tokens.empty() || tokens.size() >= (size_t{1} << 24)) throw Error("bad vocabulary size");
  id_to_token_ = std::move(tokens);
  token_to_id_.clear();
  token_to_id_.reserve(id_to_token_.size());
  for (size_t id = 0; id < id_to_token_.size(); ++id) {
    token_to_id_.emplace(id_to_token_[id], static_cast<int32_t>(id));  // first id wins
  }
  special_.assign(id_to_token_.size(), false);
}

void Tokenizer::add_merge(std::string_view left, std::string_view right, int32_t rank) {
  const auto id_of = [&](std::string_view s) {
    const auto it = token_to_id_.find(s);
    if (it == token_to_id_.end()) {
      throw Error("merge " + quote_input(std::string(left) + " " + std::string(right)) + " uses " +
                  quote_input(s) + ", which is not in the vocabulary");
    }
    return it->second;
  };
  const int32_t a = id_of(left);
  const int32_t b = id_of(right);
  merge_joined_.assign(left).append(right);
  const int32_t merged = id_of(merge_joined_);
  // A repeated pair keeps its last rank, as HF builds its merge map.
  merges_[pair_key(a, b)] = Merge{rank, merged};
}

void Tokenizer::index_bytes() {
  const auto& table = byte_to_char();
  for (int b = 0; b < 256; ++b) {
    std::string s;
    append_utf8(s, table[b]);
    const auto it = token_to_id_.find(s);
    byte_id_[b] = it == token_to_id_.end() ? -1 : it->second;  // missing bytes are dropped, as HF
  }
  id_to_bytes_.resize(id_to_token_.size());
  for (size_t id = 0; id < id_to_token_.size(); ++id) {
    id_to_bytes_[id] = token_string_to_bytes(id_to_token_[id]);
  }
}

void Tokenizer::set_added(const std::vector<AddedToken>& added) {
  added_trie_.assign(1, TrieNode{});
  for (const AddedToken& a : added) {
    if (a.id < 0 || static_cast<size_t>(a.id) >= id_to_token_.size()) {
      throw Error("added token " + quote_input(a.content) + " has id " + std::to_string(a.id) +
                  " outside the vocabulary");
    }
    if (a.content.empty()) throw Error("empty added token");
    id_to_token_[a.id] = a.content;
    id_to_bytes_[a.id] = a.content;
    token_to_id_[a.content] = a.id;  // added tokens shadow vocab entries, as in HF
    special_[a.id] = a.special;
    int32_t node = 0;
    for (const char ch : a.content) {
      const auto byte = static_cast<uint8_t>(ch);
      auto& next = added_trie_[node].next;
      const auto it =
          std::find_if(next.begin(), next.end(), [&](auto& e) { return e.first == byte; });
      if (it != next.end()) {
        node = it->second;
      } else {
        const auto child = static_cast<int32_t>(added_trie_.size());
        next.emplace_back(byte, child);  // may reallocate added_trie_ below: index, not reference
        added_trie_.emplace_back();
        node = child;
      }
    }
    added_trie_[node].token = a.id;
  }
}

size_t Tokenizer::match_added(std::string_view text, size_t pos, int32_t& id) const {
  size_t best = 0;
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto byte = static_cast<uint8_t>(text[i]);
    const auto& next = added_trie_[node].next;
    const auto it =
        std::find_if(next.begin(), next.end(), [&](auto& e) { return e.first == byte; });
    if (it == next.end()) break;
    node = it->second;
    if (added_trie_[node].token >= 0) {
      best = i + 1 - pos;
      id = added_trie_[node].token;
    }
  }
  return best;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const { return encode(text, {}); }

std::vector<int32_t> Tokenizer::encode(std::string_view text,
                                       std::span<const TextSpan> plain) const {
  std::vector<int32_t> out;
  if (id_to_token_.empty()) return out;  // a default-constructed Tokenizer has no vocabulary
  out.reserve(text.size() / 3 + 4);
  size_t start = 0, next_plain = 0;
  for (size_t i = 0; i < text.size();) {
    while (next_plain < plain.size() && plain[next_plain].end <= i) ++next_plain;
    // An added token must end before the next plain range begins.
    size_t limit = text.size();
    if (next_plain < plain.size()) {
      if (plain[next_plain].begin <= i) {
        i = std::min(plain[next_plain].end, text.size());
        continue;
      }
      limit = std::min(plain[next_plain].begin, text.size());
    }
    int32_t id = -1;
    const size_t len = added_trie_.empty() ? 0 : match_added(text.substr(0, limit), i, id);
    if (len == 0) {
      ++i;
      continue;
    }
    encode_plain(text.substr(start, i - start), out);
    out.push_back(id);
    i += len;
    start = i;
  }
  encode_plain(text.substr(start), out);
  return out;
}

void Tokenizer::encode_plain(std::string_view text, std::vector<int32_t>& out) const {
  if (text.empty()) return;
  if (text.size() > UINT32_MAX) throw Error("text too long to tokenize");
  std::vector<CharInfo> chars;
  chars.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const Utf8Char c = utf8_decode(text, i);
    const CharClass cls = c.status == Utf8Status::kValid ? char_class(c.cp) : CharClass::kOther;
    chars.push_back({static_cast<uint32_t>(i), c.len, c.cp, cls});
    i += c.len;
  }
  const auto emit_words = [&](size_t begin, size_t end) {  // the regex over one Digits piece
    for (size_t i = begin; i < end;) {
      const size_t n = match_gpt2(chars.data(), i, end);
      const CharInfo& last = chars[i + n - 1];
      bpe(text.substr(chars[i].offset, last.offset + last.len - chars[i].offset), out);
      i += n;
    }
  };
  if (!split_digits_) {
    emit_words(0, chars.size());
    return;
  }
  // Digits(individual_digits): every numeric character is a piece of its own.
  size_t begin = 0;
  for (size_t i = 0; i < chars.size(); ++i) {
    if (chars[i].cls != CharClass::kNumber) continue;
    emit_words(begin, i);
    emit_words(i, i + 1);
    begin = i + 1;
  }
  emit_words(begin, chars.size());
}

// HF's BPE: repeatedly merge the adjacent pair of lowest rank (leftmost on ties), using a heap of
// candidate pairs with lazy invalidation, so a word of n bytes costs O(n log n).
void Tokenizer::bpe(std::string_view word, std::vector<int32_t>& out) const {
  if (word.size() == 1) {
    const int32_t id = byte_id_[static_cast<uint8_t>(word[0])];
    if (id >= 0) out.push_back(id);
    return;
  }
  struct Symbol {
    int32_t id;  // -1 once merged into its left neighbour
    int32_t prev;
    int32_t next;
  };
  std::vector<Symbol> syms;
  syms.reserve(word.size());
  for (const char ch : word) {
    const int32_t id = byte_id_[static_cast<uint8_t>(ch)];
    if (id < 0) continue;
    const auto n = static_cast<int32_t>(syms.size());
    syms.push_back({id, n - 1, -1});
    if (n > 0) syms[n - 1].next = n;
  }
  if (syms.empty()) return;

  struct Candidate {
    int32_t rank;
    int32_t pos;  // index of the left symbol
    int32_t new_id;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
  const auto find_merge = [&](int32_t left, int32_t right) -> const Merge* {
    const auto it = merges_.find(pair_key(left, right));
    return it == merges_.end() ? nullptr : &it->second;
  };
  const auto push_pair = [&](int32_t pos) {
    const Symbol& s = syms[pos];
    if (s.next < 0) return;
    if (const Merge* m = find_merge(s.id, syms[s.next].id)) heap.push({m->rank, pos, m->id});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(syms.size()); ++i) push_pair(i);

  while (!heap.empty()) {
    const Candidate top = heap.top();
    heap.pop();
    Symbol& left = syms[top.pos];
    if (left.id < 0 || left.next < 0) continue;
    Symbol& right = syms[left.next];
    // Stale if the pair at this position changed since it was queued (same test as HF's).
    const Merge* m = find_merge(left.id, right.id);
    if (m == nullptr || m->id != top.new_id) continue;
    left.id = top.new_id;
    right.id = -1;
    left.next = right.next;
    if (left.next >= 0) syms[left.next].prev = top.pos;
    if (left.prev >= 0) push_pair(left.prev);
    push_pair(top.pos);
  }
  for (int32_t i = 0; i >= 0; i = syms[i].next) out.push_back(syms[i].id);
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string out;
  for (const int32_t id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= id_to_bytes_.size()) continue;  // HF skips unknown ids
    if (skip_special && special_[id]) continue;
    out += id_to_bytes_[id];
  }
  return out;
}

std::string Tokenizer::token_bytes(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_to_bytes_.size()) {
    throw Error("token id " + std::to_string(id) + " is outside the vocabulary");
  }
  return id_to_bytes_[id];
}

std::optional<int32_t> Tokenizer::find_token(std::string_view token) const {
  const auto it = token_to_id_.find(token);
  if (it == token_to_id_.end()) return std::nullopt;
  return it->second;
}

int32_t Tokenizer::token_id(std::string_view token) const {
  const auto id = find_token(token);
  if (!id) throw Error("token " + quote_input(token) + " is not in the vocabulary");
  return *id;
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < special_.size() && special_[id];
}

std::string StreamDecoder::push(int32_t id) {
  if (id < 0 || static_cast<size_t>(id) >= tok_.vocab_size()) return {};  // as decode()
  if (skip_ && tok_.is_special(id)) return {};
  pending_ += tok_.token_bytes(id);
  // Emit all but a trailing character that is still incomplete; sequences that can never become
  // valid go out as U+FFFD at once, so the output is always valid UTF-8.
  std::string out;
  size_t i = 0;
  while (i < pending_.size()) {
    const Utf8Char c = utf8_decode(pending_, i);
    if (c.status == Utf8Status::kTruncated) break;
    if (c.status == Utf8Status::kValid) {
      out.append(pending_, i, c.len);
    } else {
      out.append(kReplacementChar);
    }
    i += c.len;
  }
  pending_.erase(0, i);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out = utf8_lossy(pending_);
  pending_.clear();
  return out;
}

}  // namespace smolvlm
