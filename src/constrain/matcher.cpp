#include "constrain/matcher.h"

#include <algorithm>

namespace smolvlm::constrain {

namespace {
constexpr size_t kMaxStates = 20000;  // then the DFA is forgotten and rebuilt as needed
constexpr size_t kMaxMasks = 1024;    // cached masks (6 KB each for 49k tokens)
}  // namespace

TokenIndex::TokenIndex(std::vector<std::string> token_bytes, const std::vector<bool>& excluded)
    : bytes_(std::move(token_bytes)), allowed_(bytes_.size(), false) {
  std::vector<int32_t> order;
  for (size_t id = 0; id < bytes_.size(); ++id) {
    const bool skip = id < excluded.size() && excluded[id];
    if (!skip && !bytes_[id].empty()) {
      order.push_back(static_cast<int32_t>(id));
      allowed_[id] = true;
    }
  }
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    const auto& x = bytes_[static_cast<size_t>(a)];
    const auto& y = bytes_[static_cast<size_t>(b)];
    return x < y || (x == y && a < b);
  });
  std::vector<int32_t> path;  // the open nodes, by depth
  const std::string* prev = nullptr;
  for (int32_t id : order) {
    const std::string& s = bytes_[static_cast<size_t>(id)];
    size_t common = 0;
    if (prev)
      while (common < prev->size() && common < s.size() && (*prev)[common] == s[common]) ++common;
    while (path.size() > common) {
      subtree_end_[static_cast<size_t>(path.back())] = static_cast<int32_t>(byte_.size());
      path.pop_back();
    }
    for (size_t i = common; i < s.size(); ++i) {
      path.push_back(static_cast<int32_t>(byte_.size()));
      byte_.push_back(static_cast<uint8_t>(s[i]));
      depth_.push_back(static_cast<uint16_t>(i + 1));
      subtree_end_.push_back(-1);
      token_begin_.push_back(static_cast<int32_t>(tokens_.size()));
      max_depth_ = std::max(max_depth_, static_cast<uint16_t>(i + 1));
    }
    tokens_.push_back(id);
    prev = &s;
  }
  for (int32_t n : path) subtree_end_[static_cast<size_t>(n)] = static_cast<int32_t>(byte_.size());
  token_begin_.push_back(static_cast<int32_t>(tokens_.size()));
}

Matcher::Matcher(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const TokenIndex> index)
    : g_(std::move(grammar)), index_(std::move(index)) {
  std::vector<int32_t> stacks;
  bool accept = false;
  std::vector<uint64_t> seen;
  for (int32_t start : g_->rules[static_cast<size_t>(g_->root)]) {
    expand(start, -1, stacks, accept, seen);
  }
  current_ = intern(std::move(stacks), accept);
}

int32_t Matcher::node(int32_t pos, int32_t parent) {
  const uint64_t key =
      (static_cast<uint64_t>(static_cast<uint32_t>(pos)) << 32) | static_cast<uint32_t>(parent);
  const auto [it, fresh] = node_ids_.emplace(key, static_cast<int32_t>(nodes_.size()));
  if (fresh) nodes_.push_back({pos, parent});
  return it->second;
}

// Adds the stacks that reading on from `pos` (with `parent` below) reaches at a byte set.
void Matcher::expand(int32_t pos, int32_t parent, std::vector<int32_t>& out, bool& accept,
                     std::vector<uint64_t>& seen) {
  for (;;) {
    const uint64_t key =
        (static_cast<uint64_t>(static_cast<uint32_t>(pos)) << 32) | static_cast<uint32_t>(parent);
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) return;
    seen.push_back(key);
    const Element& e = g_->elements[static_cast<size_t>(pos)];
    if (e.kind == Element::Kind::Bytes) {
      out.push_back(node(pos, parent));
      return;
    }
    if (e.kind == Element::Kind::End) {
      if (parent < 0) {
        accept = true;
        return;
      }
      const Node below = nodes_[static_cast<size_t>(parent)];
      pos = below.pos;
      parent = below.parent;
      continue;
    }
    // A rule: its alternatives, with the rest of this run below (or, at the run's end, the
    // stack below directly).
    const bool tail = g_->elements[static_cast<size_t>(pos) + 1].kind == Element::Kind::End;
    const int32_t cont = tail ? parent : node(pos + 1, parent);
    for (int32_t start : g_->rules[static_cast<size_t>(e.index)]) {
      expand(start, cont, out, accept, seen);
    }
    return;
  }
}

int32_t Matcher::intern(std::vector<int32_t> stacks, bool accept) {
  if (stacks.empty() && !accept) return -1;
  std::sort(stacks.begin(), stacks.end());
  stacks.erase(std::unique(stacks.begin(), stacks.end()), stacks.end());
  std::vector<int32_t> key = stacks;
  key.push_back(accept ? -1 : -2);
  const auto [it, fresh] = state_ids_.emplace(std::move(key), static_cast<int32_t>(states_.size()));
  if (fresh) states_.push_back({std::move(stacks), accept, std::vector<int32_t>(256, -2)});
  return it->second;
}

int32_t Matcher::step(int32_t state, uint8_t byte) {
  int32_t known = states_[static_cast<size_t>(state)].next[byte];
  if (known != -2) return known;
  std::vector<int32_t> out;
  bool accept = false;
  std::vector<uint64_t> seen;
  const std::vector<int32_t> stacks = states_[static_cast<size_t>(state)].stacks;
  for (int32_t s : stacks) {
    const Node n = nodes_[static_cast<size_t>(s)];
    const Element& e = g_->elements[static_cast<size_t>(n.pos)];
    if (!g_->byte_sets[static_cast<size_t>(e.index)].test(byte)) continue;
    expand(n.pos + 1, n.parent, out, accept, seen);
  }
  const int32_t next = intern(std::move(out), accept);
  states_[static_cast<size_t>(state)].next[byte] = next;
  return next;
}

int32_t Matcher::walk(int32_t state, std::string_view bytes) {
  for (char c : bytes) {
    if (state < 0) break;
    state = step(state, static_cast<uint8_t>(c));
  }
  return state;
}

void Matcher::maybe_reset() {
  if (states_.size() <= kMaxStates) return;
  State keep = std::move(states_[static_cast<size_t>(current_)]);
  states_.clear();
  state_ids_.clear();
  masks_.clear();
  current_ = intern(std::move(keep.stacks), keep.accept);
}

const std::vector<uint64_t>& Matcher::mask() {
  maybe_reset();
  const auto cached = masks_.find(current_);
  if (cached != masks_.end()) return cached->second;
  if (masks_.size() >= kMaxMasks) masks_.clear();
  std::vector<uint64_t> bits((index_->vocab_size() + 63) / 64, 0);
  const TokenIndex& t = *index_;
  walk_.assign(static_cast<size_t>(t.max_depth_) + 1, -1);
  walk_[0] = current_;
  const auto n = static_cast<int32_t>(t.byte_.size());
  for (int32_t i = 0; i < n;) {
    const auto u = static_cast<size_t>(i);
    const int32_t s = step(walk_[t.depth_[u] - 1u], t.byte_[u]);
    if (s < 0) {
      i = t.subtree_end_[u];
      continue;
    }
    walk_[t.depth_[u]] = s;
    for (int32_t k = t.token_begin_[u]; k < t.token_begin_[u + 1]; ++k) {
      const auto id = static_cast<uint32_t>(t.tokens_[static_cast<size_t>(k)]);
      bits[id >> 6] |= uint64_t{1} << (id & 63);
    }
    ++i;
  }
  return masks_.emplace(current_, std::move(bits)).first->second;
}

bool Matcher::accepting() const { return states_[static_cast<size_t>(current_)].accept; }

bool Matcher::can_continue() const {
  return !states_[static_cast<size_t>(current_)].stacks.empty();
}

bool Matcher::accept_bytes(std::string_view bytes) {
  maybe_reset();
  const int32_t s = walk(current_, bytes);
  if (s < 0) return false;
  current_ = s;
  return true;
}

bool Matcher::accept_token(int32_t id) {
  if (id < 0 || static_cast<size_t>(id) >= index_->vocab_size()) return false;
  return index_->usable(id) && accept_bytes(index_->bytes(id));
}

bool Matcher::allows(std::string_view bytes) {
  maybe_reset();
  return walk(current_, bytes) >= 0;
}

}  // namespace smolvlm::constrain
