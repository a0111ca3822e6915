// Byte-level BPE tokenizer (GPT-2 / SmolLM2 style) as HF `tokenizers` runs it for SmolVLM2:
// added tokens matched whole first, then Digits(individual) + ByteLevel regex pre-tokenisation,
// then BPE merges by rank. No BOS/EOS is added: the chat template writes them.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace smolvlm {

// A byte range [begin, end) of a text.
struct TextSpan {
  size_t begin = 0, end = 0;
};

struct AddedToken {
  std::string content;
  int32_t id = 0;
  bool special = true;
};

class Tokenizer {
 public:
  // Reads a HF tokenizer.json (model.type == "BPE"). Throws smolvlm::Error on anything unexpected.
  static Tokenizer from_hf_json_file(const std::string& path);
  // The same from the file's text; `name` names it in messages.
  static Tokenizer from_hf_json(const std::string& text, const std::string& name);
  // For GGUF: the token strings (byte-level unicode form, index = id), the merges ("a b" per entry)
  // and which ids are added/special tokens (matched whole, skipped by decode(skip_special=true)).
  static Tokenizer from_vocab(std::vector<std::string> tokens,
                              const std::vector<std::string>& merges,
                              const std::vector<AddedToken>& added);

  std::vector<int32_t> encode(std::string_view text) const;
  // The same, but the bytes inside `plain` (sorted, disjoint ranges) are ordinary text: no added
  // token that overlaps one of them is matched, so text from outside cannot write a control
  // token. Pre-tokenisation runs over the text between added tokens as a whole, as encode() does.
  std::vector<int32_t> encode(std::string_view text, std::span<const TextSpan> plain) const;
  // Decodes ids to UTF-8 bytes. Invalid UTF-8 (a half character) is kept as raw bytes here; the
  // streaming decoder below is the one that holds incomplete characters back.
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;
  // The raw bytes one token stands for (an added token's content for added tokens).
  std::string token_bytes(int32_t id) const;

  std::optional<int32_t> find_token(std::string_view token) const;  // exact vocab/added lookup
  int32_t token_id(std::string_view token) const;                   // throws if absent
  bool is_special(int32_t id) const;
  size_t vocab_size() const { return id_to_token_.size(); }

 private:
  struct Merge {
    int32_t rank;
    int32_t id;  // the merged token
  };
  // Added tokens as a byte trie, so the longest one at a position is found in one walk.
  struct TrieNode {
    std::vector<std::pair<uint8_t, int32_t>> next;  // byte -> node index
    int32_t token = -1;                             // id when a token ends here
  };

  std::vector<std::string> id_to_token_;  // byte-level unicode strings (added: their content)
  std::vector<std::string> id_to_bytes_;  // what each id decodes to
  // Transparent hashing: lookups by string_view allocate nothing (loading does ~150k of them).
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> token_to_id_;
  std::unordered_map<uint64_t, Merge> merges_;  // key: left id << 32 | right id
  std::string merge_joined_;  // add_merge's buffer: one allocation for all the merges of a load
  std::array<int32_t, 256> byte_id_{};  // the one-byte token of each byte, -1 if absent
  std::vector<TrieNode> added_trie_;
  std::vector<bool> special_;
  bool split_digits_ = true;  // the Digits(individual_digits) pre-tokenizer step

  void set_vocab(std::vector<std::string> tokens);
  void add_merge(std::string_view left, std::string_view right, int32_t rank);
  void set_added(const std::vector<AddedToken>& added);
  void index_bytes();
  size_t match_added(std::string_view text, size_t pos, int32_t& id) const;
  void encode_plain(std::string_view text, std::vector<int32_t>& out) const;
  void bpe(std::string_view word, std::vector<int32_t>& out) const;
};

// Turns a stream of ids into text pieces that are always whole UTF-8 characters: bytes of a
// character split across tokens are held until the character completes.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool skip_special = true)
      : tok_(tok), skip_(skip_special) {}
  std::string push(int32_t id);  // returns the text that became complete (may be empty)
  std::string flush();           // whatever is left (invalid trailing bytes as U+FFFD)
 private:
  const Tokenizer& tok_;
  bool skip_;
  std::string pending_;
};

}  // namespace smolvlm
