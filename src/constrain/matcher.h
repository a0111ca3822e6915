// Runs a Grammar over bytes and turns its state into a token mask.
//
// The matcher's state is a set of parse stacks. Stacks are hash-consed (a stack is one node id:
// a grammar position and the id of the stack below it), and each distinct set of stacks is a
// state of a lazily built DFA over bytes: a (state, byte) step is computed once, then it is one
// table lookup. A mask walks the trie of every token's bytes (TokenIndex, built once per
// tokenizer) against the DFA from the current state, skipping a whole subtree at the first byte
// the grammar refuses; masks are cached per state, so states that recur (inside a string, between
// members) cost one lookup. Right recursion that ends a rule reuses the stack below (a repetition
// does not grow the stack).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "constrain/grammar.h"

namespace smolvlm::constrain {

// The tokens' bytes as a trie in preorder, built once per vocabulary.
class TokenIndex {
 public:
  // `excluded[id]` (special tokens) are never allowed; tokens with no bytes neither.
  TokenIndex(std::vector<std::string> token_bytes, const std::vector<bool>& excluded);
  size_t vocab_size() const { return bytes_.size(); }
  const std::string& bytes(int32_t id) const { return bytes_[static_cast<size_t>(id)]; }
  bool usable(int32_t id) const { return allowed_[static_cast<size_t>(id)]; }
  size_t nodes() const { return byte_.size(); }

 private:
  friend class Matcher;
  std::vector<std::string> bytes_;
  std::vector<bool> allowed_;         // id -> in the trie (not excluded, not empty)
  std::vector<uint8_t> byte_;         // node -> its byte
  std::vector<uint16_t> depth_;       // node -> depth (1 for a first byte)
  std::vector<int32_t> subtree_end_;  // node -> the first node after its subtree
  std::vector<int32_t> token_begin_;  // node -> its tokens, tokens_[begin, begin of node + 1)
  std::vector<int32_t> tokens_;
  uint16_t max_depth_ = 0;
};

class Matcher {
 public:
  Matcher(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const TokenIndex> index);

  // Sets bit id (of words of 64) for every token whose bytes the grammar can take next. The EOS
  // token is not part of it: see accepting().
  const std::vector<uint64_t>& mask();
  bool accepting() const;     // the text so far is a whole sentence of the grammar
  bool can_continue() const;  // some byte may still follow
  // Takes a token's bytes (false, state unchanged, when the grammar refuses them).
  bool accept_token(int32_t id);
  bool accept_bytes(std::string_view bytes);
  // Whether `bytes` could follow from the current state (state unchanged).
  bool allows(std::string_view bytes);
  size_t dfa_states() const { return states_.size(); }

 private:
  struct Node {
    int32_t pos;
    int32_t parent;  // -1: the bottom
  };
  struct State {
    std::vector<int32_t> stacks;  // node ids, sorted
    bool accept = false;
    std::vector<int32_t> next;  // byte -> state; -2 unknown, -1 dead
  };

  std::shared_ptr<const Grammar> g_;
  std::shared_ptr<const TokenIndex> index_;
  std::vector<Node> nodes_;
  std::unordered_map<uint64_t, int32_t> node_ids_;
  std::vector<State> states_;
  std::map<std::vector<int32_t>, int32_t> state_ids_;
  std::unordered_map<int32_t, std::vector<uint64_t>> masks_;
  std::vector<int32_t> walk_;
  int32_t current_ = -1;

  int32_t node(int32_t pos, int32_t parent);
  void expand(int32_t pos, int32_t parent, std::vector<int32_t>& out, bool& accept,
              std::vector<uint64_t>& seen);
  int32_t intern(std::vector<int32_t> stacks, bool accept);
  int32_t step(int32_t state, uint8_t byte);
  int32_t walk(int32_t state, std::string_view bytes);
  void maybe_reset();
};

}  // namespace smolvlm::constrain
