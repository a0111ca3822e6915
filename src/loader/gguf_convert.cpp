// HF SmolVLM2 folder → llama.cpp's GGUF pair, written the way llama.cpp's convert_hf_to_gguf.py
// writes it: same tensor names, order, types and Q8_0 rounding, same metadata keys, value types and
// key order, so the files are interchangeable with (and for the tiny fixture byte-identical to) its
// own. Where llama.cpp's converter guesses (the vision LayerNorm epsilon of configs that omit it)
// we write the model's true value.
#include <smolvlm/error.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "formats/gguf.h"
#include "formats/kquants.h"
#include "formats/output_file.h"
#include "formats/quantize.h"
#include "formats/safetensors.h"
#include "loader/gguf_model.h"
#include "model/config.h"
#include "text/tokenizer.h"
#include "util/input_text.h"

namespace smolvlm {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json read_json_file(const fs::path& p, const std::string& kind = "JSON file",
                    uint64_t max_bytes = kMaxJsonFileBytes) {
  return parse_json_bounded(read_file(p.string(), kind, max_bytes), "'" + p.string() + "'");
}

// llama.cpp's general.file_type (LlamaFileType) for a whole-file type.
// llama.cpp's general.file_type of a whole file (LLAMA_FTYPE_*).
uint32_t file_type(DType t, bool kquant_small = false) {
  switch (t) {
    case DType::F32:
      return 0;
    case DType::F16:
      return 1;
    case DType::Q8_0:
      return 7;
    case DType::Q4_0:
      return 2;
    case DType::BF16:
      return 32;
    case DType::Q2_K:
      return 10;
    case DType::Q3_K:  // the Q3_K_M mix (kquant_tensor_type)
      return 12;
    case DType::Q4_K:  // the Q4_K_M or Q4_K_S mix
      return kquant_small ? 14 : 15;
    case DType::Q5_K:
      return kquant_small ? 16 : 17;
    case DType::Q6_K:
      return 18;
    default:
      throw Error(std::string("cannot convert to ") + dtype_name(t));
  }
}

// The file name label of a whole-file type (llama.cpp's: "Q8_0", "F16", "Q4_K_M", ...).
std::string type_label(DType t, bool kquant_small = false) {
  file_type(t);  // refuses the types a file cannot be converted to
  if (t == DType::Q3_K) return "Q3_K_M";
  if (t == DType::Q4_K || t == DType::Q5_K)
    return std::string(dtype_name(t)) + (kquant_small ? "_S" : "_M");
  return dtype_name(t);
}

// The type of one text matrix in a K-quant file, after llama-quantize's recipes for a
// llama-architecture model (llama_tensor_get_type; checked against its output for each mix):
//   output head (the embedding when it is tied)  Q6_K in every mix
//   attn_v      Q2_K: Q4_K where 4+ query heads share a KV head, else Q3_K; Q3_K_M: Q5_K in
//               the first 2 layers, else Q4_K; Q4_K_M, Q5_K_M: Q6_K in the "more bits" layers
//               (the first and last eighth, every third between); Q4_K_S: Q5_K in the first 4
//   ffn_down    Q2_K: Q3_K; Q3_K_M: Q5_K in the first sixteenth, else Q4_K; Q4_K_M, Q5_K_M:
//               Q6_K in the "more bits" layers; Q4_K_S: Q5_K in the first eighth
//   attn_output Q2_K: Q3_K; Q3_K_M: Q4_K
// and the mix's main type elsewhere. Rows that are not whole 256-value blocks fall back to Q8_0
// (llama-quantize picks IQ4_NL, Q5_0, Q5_1 or Q8_0 by type, which convert does not write), or
// F16 where not whole 32-value blocks.
DType kquant_tensor_type(DType file, bool small, const std::string& name, const TextConfig& tc,
                         int64_t cols) {
  DType t = file;
  int layer = -1;
  if (name.starts_with("blk.")) layer = std::atoi(name.c_str() + 4);
  const int n = tc.layers;
  const bool more_bits =
      layer >= 0 && (layer < n / 8 || layer >= 7 * n / 8 || (layer - n / 8) % 3 == 2);
  const bool m_mix = !small && (file == DType::Q4_K || file == DType::Q5_K);
  const bool s_mix = small && file == DType::Q4_K;
  if (name == "output.weight" || (tc.tie_word_embeddings && name == "token_embd.weight")) {
    t = DType::Q6_K;
  } else if (name.ends_with(".attn_v.weight")) {
    if (file == DType::Q2_K) {
      t = tc.kv_heads > 0 && tc.heads / tc.kv_heads >= 4 ? DType::Q4_K : DType::Q3_K;
    } else if (file == DType::Q3_K) {
      t = layer < 2 ? DType::Q5_K : DType::Q4_K;
    } else if (m_mix && more_bits) {
      t = DType::Q6_K;
    } else if (s_mix && layer < 4) {
      t = DType::Q5_K;
    }
  } else if (name.ends_with(".ffn_down.weight")) {
    if (file == DType::Q2_K) {
      t = DType::Q3_K;
    } else if (file == DType::Q3_K) {
      t = layer < n / 16 ? DType::Q5_K : DType::Q4_K;
    } else if (m_mix && more_bits) {
      t = DType::Q6_K;
    } else if (s_mix && layer < n / 8) {
      t = DType::Q5_K;
    }
  } else if (name.ends_with(".attn_output.weight")) {
    if (file == DType::Q2_K) t = DType::Q3_K;
    if (file == DType::Q3_K) t = DType::Q4_K;
  }
  if (cols % 256 != 0) t = cols % kQ8BlockSize == 0 ? DType::Q8_0 : DType::F16;
  return t;
}

// ---- general.name and friends: gguf-py's Metadata heuristics on the model id ----

std::string title_word(const std::string& w) {
  // Python's str.title(): a letter after a non-letter is upper case, other letters lower case.
  std::string out = w;
  bool prev_alpha = false;
  for (char& ch : out) {
    const bool alpha = std::isalpha(static_cast<unsigned char>(ch)) != 0;
    if (alpha) ch = static_cast<char>(prev_alpha ? std::tolower(ch) : std::toupper(ch));
    prev_alpha = alpha;
  }
  return out;
}

bool is_lower(const std::string& w) {  // Python's str.islower()
  bool cased = false;
  for (char ch : w) {
    if (std::isupper(static_cast<unsigned char>(ch))) return false;
    cased |= std::islower(static_cast<unsigned char>(ch)) != 0;
  }
  return cased;
}

// Whole-word matchers for the patterns gguf-py's name heuristics use (written out: GCC 12 warns
// inside <regex> in sanitizer builds).
bool is_digit(char ch) { return ch >= '0' && ch <= '9'; }
char lower(char ch) { return static_cast<char>(std::tolower(static_cast<unsigned char>(ch))); }

// \d+([.]\d+)* from w[i] to the end.
bool dotted_number(const std::string& w, size_t i) {
  if (i >= w.size() || !is_digit(w[i])) return false;
  while (i < w.size()) {
    if (is_digit(w[i])) {
      ++i;
    } else if (w[i] == '.' && i + 1 < w.size() && is_digit(w[i + 1])) {
      ++i;
    } else {
      return false;
    }
  }
  return true;
}

bool starts_icase(const std::string& w, const char* prefix) {
  size_t k = 0;
  for (; prefix[k]; ++k) {
    if (k >= w.size() || lower(w[k]) != prefix[k]) return false;
  }
  return true;
}

// (v|iter)?\d+([.]\d+)*, any case.
bool is_version(const std::string& w) {
  return dotted_number(w, 0) || (starts_icase(w, "v") && dotted_number(w, 1)) ||
         (starts_icase(w, "iter") && dotted_number(w, 4));
}

// i?q\d(_\w)*|b?fp?(16|32), any case: a quantisation type in a name.
bool is_quant_type(const std::string& w) {
  size_t i = starts_icase(w, "iq") ? 1 : 0;
  if (i < w.size() && lower(w[i]) == 'q' && i + 1 < w.size() && is_digit(w[i + 1])) {
    for (i += 2; i < w.size(); i += 2) {
      const bool word = i + 1 < w.size() &&
                        (std::isalnum(static_cast<unsigned char>(w[i + 1])) || w[i + 1] == '_');
      if (w[i] != '_' || !word) return false;
    }
    return true;
  }
  i = starts_icase(w, "b") ? 1 : 0;
  if (i >= w.size() || lower(w[i]) != 'f') return false;
  ++i;
  if (i < w.size() && lower(w[i]) == 'p') ++i;
  const std::string rest = w.substr(i);
  return rest == "16" || rest == "32";
}

// (A|\d+x)?\d+([._]\d+)?[KMBT]\d?|small|mini|medium|large|x?xl, any case: a size label.
bool is_size_label(const std::string& w) {
  std::string l;
  for (char ch : w) l += lower(ch);
  for (const char* word : {"small", "mini", "medium", "large", "xl", "xxl"}) {
    if (l == word) return true;
  }
  auto rest = [&](size_t i) {
    const size_t start = i;
    while (i < l.size() && is_digit(l[i])) ++i;
    if (i == start) return false;
    if (i + 1 < l.size() && (l[i] == '.' || l[i] == '_') && is_digit(l[i + 1])) {
      for (++i; i < l.size() && is_digit(l[i]);) ++i;
    }
    if (i >= l.size() || !std::strchr("kmbt", l[i])) return false;
    ++i;
    if (i < l.size() && is_digit(l[i])) ++i;
    return i == l.size();
  };
  if (rest(0) || (!l.empty() && l[0] == 'a' && rest(1))) return true;
  size_t d = 0;
  while (d < l.size() && is_digit(l[d])) ++d;
  return d > 0 && d < l.size() && l[d] == 'x' && rest(d + 1);
}

std::string id_to_title(const std::string& id) {
  // Python's title() for lower-case words, unless a version ("v2") or a number ("256m").
  auto keep = [](const std::string& w) {
    return is_digit(w[0]) || (w[0] == 'v' && dotted_number(w, 1));
  };
  std::string spaced = id;
  std::replace(spaced.begin(), spaced.end(), '-', ' ');
  std::string out, word;
  auto flush = [&] {
    if (word.empty()) return;
    if (!out.empty()) out += ' ';
    out += is_lower(word) && !keep(word) ? title_word(word) : word;
    word.clear();
  };
  for (char ch : spaced) {
    if (ch == ' ') {
      flush();
    } else {
      word += ch;
    }
  }
  flush();
  return out;
}

struct NameParts {
  std::string full;  // the model name component (no organisation)
  std::string org;   // "HuggingFaceTB" of "HuggingFaceTB/SmolVLM2-256M-Video-Instruct"
  std::string basename, finetune, version, size_label;  // empty when none
};

// gguf-py's get_size_label_params: "1.5B" → 1.5e9; nullopt where Python's float() would fail.
std::optional<double> size_label_params(const std::string& label) {
  const size_t scale = std::string(" KMBT").find(label.back());
  const std::string num = label.substr(0, label.size() - 1);
  if (scale == std::string::npos || scale == 0 || num.empty() || num.front() == '.' ||
      num.back() == '.' || std::count(num.begin(), num.end(), '.') > 1 ||
      !std::all_of(num.begin(), num.end(), [](char ch) { return is_digit(ch) || ch == '.'; })) {
    return std::nullopt;
  }
  return std::stod(num) * std::pow(1000.0, static_cast<double>(scale));
}

// Splits "SmolVLM2-256M-Video-Instruct" into basename / size label / finetune / version.
NameParts model_id_parts(const std::string& id, int64_t total_params) {
  NameParts r;
  if (id.find(' ') != std::string::npos) {
    r.full = id;
    return r;
  }
  r.full = id.find('/') == std::string::npos ? id : id.substr(id.find('/') + 1);
  if (id.find('/') != std::string::npos && id[0] != '.') r.org = id.substr(0, id.find('/'));
  std::vector<std::string> parts;
  for (size_t start = 0; start <= r.full.size();) {
    const size_t dash = std::min(r.full.find('-', start), r.full.size());
    if (dash > start) parts.push_back(r.full.substr(start, dash - start));
    start = dash + 1;
  }
  std::vector<std::set<std::string>> types(parts.size());
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string& part = parts[i];
    if (is_version(part)) {
      types[i].insert("version");
    } else if (is_quant_type(part)) {
      types[i].insert("type");
      for (char& ch : part) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    } else if (i > 0 && is_size_label(part)) {
      // normalize_size_label: "1_5b" → "1.5B", bloom's "7b1" → "7.1B".
      std::replace(part.begin(), part.end(), '_', '.');
      if (is_digit(part.back()) && part.size() >= 2) {
        part = part.substr(0, part.size() - 2) + "." + part.back() + part[part.size() - 2];
      }
      if (part.size() > 1 && is_digit(part[part.size() - 2]) && std::strchr("kmbt", part.back())) {
        part.back() = static_cast<char>(std::toupper(static_cast<unsigned char>(part.back())));
      }
      if (total_params != 0) {
        // A label far from the real size is a context length or the like: a finetune tag.
        const std::optional<double> label = size_label_params(part);
        if (label && std::fabs(*label - static_cast<double>(total_params)) >
                         static_cast<double>(7 * total_params / 8)) {
          types[i].insert("finetune");
          part.back() = lower(part.back());
        }
      }
      if (types[i].empty()) types[i].insert("size_label");
    } else if (i > 0) {
      std::string l;
      for (char ch : part) l += lower(ch);
      if (l == "chat" || l == "instruct" || l == "vision" || l == "lora")
        types[i].insert("finetune");
    }
  }
  bool numeric_size = false;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (types[i].count("size_label") && std::any_of(parts[i].begin(), parts[i].end(), [](char ch) {
          return std::isdigit(static_cast<unsigned char>(ch));
        })) {
      numeric_size = true;
    }
  }
  if (numeric_size) {
    for (size_t i = 0; i < parts.size(); ++i) {
      if (types[i].count("size_label") &&
          std::all_of(parts[i].begin(), parts[i].end(),
                      [](char ch) { return std::isalpha(static_cast<unsigned char>(ch)); })) {
        types[i].erase("size_label");
      }
    }
  }
  bool at_start = true;
  for (size_t i = 0; i < parts.size(); ++i) {
    auto& t = types[i];
    if (at_start && ((t.empty() && std::isalpha(static_cast<unsigned char>(parts[i][0]))) ||
                     t.count("version"))) {
      t.insert("basename");
    } else {
      at_start = false;
      if (t.empty()) t.insert("finetune");
    }
  }
  for (size_t i = parts.size(); i-- > 0;) {
    if (types[i].count("basename") && types[i].size() > 1) {
      types[i].erase("basename");
    } else {
      break;
    }
  }
  auto join = [&](const char* kind, bool skip_basename) {
    std::string s;
    std::set<std::string> seen;
    for (size_t i = 0; i < parts.size(); ++i) {
      if (!types[i].count(kind) || (skip_basename && types[i].count("basename"))) continue;
      if (std::string(kind) == "size_label" && !seen.insert(parts[i]).second) continue;
      s += (s.empty() ? "" : "-") + parts[i];
    }
    return s;
  };
  r.basename = join("basename", false);
  r.size_label = join("size_label", false);
  r.finetune = join("finetune", false);
  r.version = join("version", true);
  if (r.size_label.empty() && r.finetune.empty() && r.version.empty()) r.basename.clear();
  return r;
}

// gguf-py's model_weight_count_rounded_notation: "10M", "182K", "1.7B".
std::string size_label_for(int64_t n) {
  double scaled;
  const char* suffix;
  if (n > 1e12) {
    scaled = static_cast<double>(n) * 1e-12, suffix = "T";
  } else if (n > 1e9) {
    scaled = static_cast<double>(n) * 1e-9, suffix = "B";
  } else if (n > 1e6) {
    scaled = static_cast<double>(n) * 1e-6, suffix = "M";
  } else {
    scaled = static_cast<double>(n) * 1e-3, suffix = "K";
  }
  std::string digits = std::to_string(static_cast<int64_t>(std::nearbyint(scaled)));
  digits.erase(0, digits.find_first_not_of('0'));
  const int fix = std::max(2 - static_cast<int>(digits.size()), 0);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f%s", fix, scaled, suffix);
  return buf;
}

void set_general_names(GgufWriter& w, const std::string& model_id, int64_t params) {
  const NameParts p = model_id_parts(model_id, params);
  w.set("general.name", GgufValue::string(id_to_title(p.full)));
  if (!p.version.empty()) w.set("general.version", GgufValue::string(p.version));
  if (!p.org.empty()) w.set("general.organization", GgufValue::string(id_to_title(p.org)));
  if (!p.finetune.empty()) w.set("general.finetune", GgufValue::string(p.finetune));
  if (!p.basename.empty()) w.set("general.basename", GgufValue::string(p.basename));
  w.set("general.size_label",
        GgufValue::string(p.size_label.empty() ? size_label_for(params) : p.size_label));
}

// ---- the tokenizer, as gguf-py's gpt2 vocabulary and SpecialVocab write it ----

struct VocabData {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::vector<std::string> merges;
  std::vector<std::pair<std::string, uint32_t>> special_ids;  // key suffix → id, in write order
  std::optional<std::string> chat_template;
  bool add_space_prefix = false;
};

bool looks_special(const std::string& t) {
  auto wrapped = [&](const std::string& a, const std::string& b) {
    return t.size() >= a.size() + b.size() && t.rfind(a, 0) == 0 &&
           t.compare(t.size() - b.size(), b.size(), b) == 0;
  };
  return t == "<pad>" || t == "<mask>" || t == "<2mass>" || t == "[@BOS@]" || wrapped("<|", "|>") ||
         wrapped("<\xef\xbd\x9c", "\xef\xbd\x9c>") || wrapped("<unused", ">");
}

VocabData read_vocab(const fs::path& dir, int vocab_size) {
  const fs::path tok_path = dir / "tokenizer.json";
  Tokenizer::from_hf_json_file(tok_path.string());  // refuses tokenizers the engine cannot run
  const json tj = read_json_file(tok_path, "tokenizer file", kMaxTokenizerFileBytes);
  VocabData v;
  v.tokens.assign(static_cast<size_t>(vocab_size), std::string());
  v.types.assign(static_cast<size_t>(vocab_size), 1);  // NORMAL
  std::vector<bool> have(static_cast<size_t>(vocab_size), false);
  for (const auto& [token, id_json] : tj.at("model").at("vocab").items()) {
    const int64_t id = id_json.get<int64_t>();
    if (id < 0 || id >= vocab_size) {
      throw Error("'" + tok_path.string() + "': token id " + std::to_string(id) +
                  " is outside the model's vocabulary of " + std::to_string(vocab_size));
    }
    v.tokens[static_cast<size_t>(id)] = token;
    have[static_cast<size_t>(id)] = true;
  }
  std::map<std::string, int32_t> added_ids;
  for (const json& a : tj.value("added_tokens", json::array())) {
    const int64_t id = a.at("id").get<int64_t>();
    const std::string content = a.at("content").get<std::string>();
    if (id < 0 || id >= vocab_size) {
      throw Error("'" + tok_path.string() + "': added token id " + std::to_string(id) +
                  " is outside the model's vocabulary");
    }
    added_ids.emplace(content, static_cast<int32_t>(id));
    v.tokens[static_cast<size_t>(id)] = content;
    have[static_cast<size_t>(id)] = true;
    v.types[static_cast<size_t>(id)] = a.value("special", false) || looks_special(content) ? 3 : 4;
  }
  for (size_t id = 0; id < have.size(); ++id) {
    if (!have[id]) {  // the embedding has rows the tokenizer never produces
      v.tokens[id] = "[PAD" + std::to_string(id) + "]";
      v.types[id] = 4;
    }
  }
  for (const json& m : tj.at("model").at("merges")) {
    v.merges.push_back(m.is_string()
                           ? m.get<std::string>()
                           : m.at(0).get<std::string>() + " " + m.at(1).get<std::string>());
  }

  json tc = json::object();
  if (fs::exists(dir / "tokenizer_config.json")) tc = read_json_file(dir / "tokenizer_config.json");
  v.add_space_prefix = tc.value("add_prefix_space", false);
  if (tc.contains("chat_template") && tc["chat_template"].is_string()) {
    v.chat_template = tc["chat_template"].get<std::string>();
  } else if (fs::exists(dir / "chat_template.jinja")) {
    v.chat_template =
        read_file((dir / "chat_template.jinja").string(), "chat template", kMaxJsonFileBytes);
  } else if (fs::exists(dir / "chat_template.json")) {
    const json ct = read_json_file(dir / "chat_template.json");
    if (ct.contains("chat_template") && ct["chat_template"].is_string()) {
      v.chat_template = ct["chat_template"].get<std::string>();
    }
  }
  // Special ids: tokenizer_config's `<kind>_token` (a string or {content}) matched to an added
  // token, else config.json's `<kind>_token_id` when it lies inside the vocabulary.
  json cfg = read_json_file(dir / "config.json");
  const std::pair<const char*, const char*> kinds[] = {
      {"bos", "bos_token_id"},       {"eos", "eos_token_id"},     {"unk", "unknown_token_id"},
      {"sep", "seperator_token_id"}, {"pad", "padding_token_id"}, {"cls", "cls_token_id"},
      {"mask", "mask_token_id"}};
  for (const auto& [kind, key] : kinds) {
    std::optional<int64_t> id;
    const std::string tk = std::string(kind) + "_token";
    if (tc.contains(tk)) {
      std::string content;
      if (tc[tk].is_string()) content = tc[tk].get<std::string>();
      if (tc[tk].is_object() && tc[tk].contains("content") && tc[tk]["content"].is_string()) {
        content = tc[tk]["content"].get<std::string>();
      }
      if (auto it = added_ids.find(content); !content.empty() && it != added_ids.end())
        id = it->second;
    }
    const std::string ck = std::string(kind) + "_token_id";
    if (!id && cfg.contains(ck) && cfg[ck].is_number_integer()) {
      const int64_t c = cfg[ck].get<int64_t>();
      if (c >= 0 && c < vocab_size) id = c;
    }
    if (id) v.special_ids.emplace_back(key, static_cast<uint32_t>(*id));
  }
  return v;
}

// ---- tensors ----

// The tensors of a HF folder in the order llama.cpp's converter meets them: shard by shard (file
// names sorted), each shard's names sorted.
std::vector<std::string> tensor_order(const fs::path& dir, const TensorStore& store) {
  const fs::path index = dir / "model.safetensors.index.json";
  std::vector<std::string> names = store.names();  // sorted
  if (!fs::exists(index)) return names;
  const json j = read_json_file(index);
  std::map<std::string, std::vector<std::string>> by_shard;
  for (const auto& [name, shard] : j.at("weight_map").items()) {
    by_shard[shard.get<std::string>()].push_back(name);
  }
  std::vector<std::string> out;
  for (auto& [shard, list] : by_shard) {
    std::sort(list.begin(), list.end());
    out.insert(out.end(), list.begin(), list.end());
  }
  return out;
}

std::vector<uint8_t> encode(const std::vector<float>& x, DType t, int64_t rows, int64_t cols) {
  std::vector<uint8_t> out;
  switch (t) {
    case DType::F32:
      out.resize(x.size() * 4);
      std::memcpy(out.data(), x.data(), out.size());
      break;
    case DType::F16:
    case DType::BF16:
      out.resize(x.size() * 2);
      for (size_t k = 0; k < x.size(); ++k) {
        const uint16_t h = t == DType::F16 ? f32_to_f16(x[k]) : f32_to_bf16(x[k]);
        std::memcpy(out.data() + 2 * k, &h, 2);
      }
      break;
    case DType::Q8_0:
      out = quantize_q8_0(x, static_cast<int>(rows), static_cast<int>(cols));
      break;
    case DType::Q4_0:
      out = quantize_q4_0(x, static_cast<int>(rows), static_cast<int>(cols));
      break;
    case DType::Q2_K:
    case DType::Q3_K:
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
      out = quantize_rows(t, x, static_cast<int>(rows), static_cast<int>(cols));
      break;
    default:
      throw Error(std::string("cannot encode ") + dtype_name(t));
  }
  return out;
}

}  // namespace

ConvertResult convert_hf_to_gguf(const std::string& hf_dir, const std::string& out_dir,
                                 const ConvertOptions& opt, const GgufWriter::Progress& progress) {
  for (DType t : {opt.text_type, opt.vision_type}) type_label(t);  // refuse unknown types early
  const ModelConfig cfg = load_hf_config(hf_dir);
  const fs::path dir(hf_dir);
  const json config_json = read_json_file(dir / "config.json");
  auto store = std::make_shared<TensorStore>(TensorStore::open_hf_folder(hf_dir));

  // Every tensor the config implies must be there with its shape (either text prefix).
  auto find = [&](const std::string& name) -> const TensorView* {
    if (const TensorView* t = store->find(name)) return t;
    const std::string a = "model.text_model.", b = "model.language_model.";
    if (name.rfind(a, 0) == 0) return store->find(b + name.substr(a.size()));
    return nullptr;
  };
  for (const NamedShape& ns : hf_tensor_shapes(cfg)) {
    const TensorView* t = find(ns.name);
    if (!t) throw Error("model folder '" + hf_dir + "' lacks tensor '" + ns.name + "'");
    if (t->shape != ns.shape) {
      TensorView want;
      want.shape = ns.shape;
      throw Error("model folder '" + hf_dir + "': tensor '" + ns.name + "' has shape " +
                  t->shape_str() + ", expected " + want.shape_str());
    }
  }
  // Read after the tensors are checked: the vocabulary size sizes its tables, and the embedding
  // matrix has now shown that the file backs it.
  const VocabData vocab = read_vocab(dir, cfg.text.vocab);

  std::string stem = opt.name;
  if (stem.empty()) stem = fs::path(hf_dir).lexically_normal().filename().string();
  if (stem.empty() || stem == "." || stem == "..")
    stem = fs::absolute(dir).lexically_normal().parent_path().filename().string();
  if (stem.empty()) stem = "model";
  std::string model_id = stem;
  if (config_json.contains("_name_or_path") && config_json["_name_or_path"].is_string()) {
    const std::string n = config_json["_name_or_path"].get<std::string>();
    if (!n.empty() && std::count(n.begin(), n.end(), '/') <= 1) model_id = n;
  }

  GgufWriter text, mmproj;
  int64_t text_params = 0, mmproj_params = 0;
  for (const std::string& name : tensor_order(dir, *store)) {
    const std::optional<GgufName> g = gguf_name_for(name);
    if (!g) {
      throw Error("tensor " + quote_input(name) + " in '" + hf_dir + "' is not part of SmolVLM2");
    }
    const TensorView* src = store->find(name);
    const bool vision = g->part == GgufPart::Mmproj;
    const int64_t cols = src->shape.back(), rows = src->numel() / std::max<int64_t>(cols, 1);
    // llama.cpp's choices: vectors (norms, biases) stay F32, and so do the vision embeddings;
    // rows that are not whole Q8_0 blocks fall back to F16.
    DType type = vision ? opt.vision_type : opt.text_type;
    if (src->shape.size() <= 1 || g->name.ends_with("_norm.weight") ||
        (vision && name.find(".embeddings.") != std::string::npos)) {
      type = DType::F32;
    }
    if ((type == DType::Q8_0 || type == DType::Q4_0) && cols % kQ8BlockSize != 0) type = DType::F16;
    if (is_kquant_type(type))
      type = kquant_tensor_type(type, opt.kquant_small, g->name, cfg.text, cols);
    int heads = 0;
    if (!vision && g->name.ends_with(".attn_q.weight")) heads = cfg.text.heads;
    if (!vision && g->name.ends_with(".attn_k.weight")) heads = cfg.text.kv_heads;
    auto produce = [src, type, rows, cols, heads, hf_dir]() {
      std::vector<float> x = to_f32(*src);
      // A NaN or infinity would make every answer garbage: the converter says so instead.
      const auto bad = std::find_if(x.begin(), x.end(), [](float f) { return !std::isfinite(f); });
      if (bad != x.end()) {
        throw Error("model folder '" + hf_dir + "': tensor '" + src->name + "' holds " +
                    (std::isnan(*bad) ? "NaN" : "an infinity") + " (element " +
                    std::to_string(bad - x.begin()) + "): the weights are corrupt");
      }
      if (heads > 0) {
        const auto* bytes = reinterpret_cast<const uint8_t*>(x.data());
        const std::vector<uint8_t> p = permute_qk_rows(bytes, static_cast<size_t>(cols) * 4,
                                                       static_cast<int>(rows), heads, true);
        std::memcpy(x.data(), p.data(), p.size());
      }
      return encode(x, type, rows, cols);
    };
    (vision ? mmproj : text).add_tensor(g->name, type, src->shape, produce);
    (vision ? mmproj_params : text_params) += src->numel();
  }

  // Text model metadata, in llama.cpp's order.
  namespace K = gguf_key;
  const TextConfig& tc = cfg.text;
  text.set("general.architecture", GgufValue::string("llama"));
  text.set("general.type", GgufValue::string("model"));
  set_general_names(text, model_id, text_params);
  auto u32 = [](int v) { return GgufValue::u32(static_cast<uint32_t>(v)); };
  text.set(K::kTextLayers, u32(tc.layers));
  text.set(K::kTextContext, u32(tc.max_positions));
  text.set(K::kTextHidden, u32(tc.hidden));
  text.set(K::kTextIntermediate, u32(tc.intermediate));
  text.set(K::kTextHeads, u32(tc.heads));
  text.set(K::kTextKvHeads, u32(tc.kv_heads));
  text.set(K::kTextRopeBase, GgufValue::f32(tc.rope_theta));
  text.set(K::kTextRmsEps, GgufValue::f32(tc.rms_norm_eps));
  text.set(K::kTextKeyLength, u32(tc.head_dim));
  text.set(K::kTextValueLength, u32(tc.head_dim));
  text.set("general.file_type", GgufValue::u32(file_type(opt.text_type, opt.kquant_small)));
  text.set(K::kTextVocab, u32(tc.vocab));
  text.set(K::kTextRopeDims, u32(tc.head_dim));
  text.set("general.quantization_version", GgufValue::u32(2));
  text.set("tokenizer.ggml.add_space_prefix", GgufValue::boolean(vocab.add_space_prefix));
  text.set("tokenizer.ggml.model", GgufValue::string("gpt2"));
  text.set("tokenizer.ggml.pre", GgufValue::string("smollm"));
  text.set("tokenizer.ggml.tokens", GgufValue::string_array(vocab.tokens));
  text.set("tokenizer.ggml.token_type", GgufValue::i32_array(vocab.types));
  text.set("tokenizer.ggml.merges", GgufValue::string_array(vocab.merges));
  for (const auto& [key, id] : vocab.special_ids)
    text.set("tokenizer.ggml." + key, GgufValue::u32(id));
  if (vocab.chat_template)
    text.set("tokenizer.chat_template", GgufValue::string(*vocab.chat_template));

  // Vision projector metadata, in llama.cpp's order.
  const VisionConfig& vc = cfg.vision;
  mmproj.set("general.architecture", GgufValue::string("clip"));
  mmproj.set("general.type", GgufValue::string("mmproj"));
  set_general_names(mmproj, model_id, mmproj_params);
  mmproj.set("general.file_type", GgufValue::u32(file_type(opt.vision_type)));
  mmproj.set("clip.has_vision_encoder", GgufValue::boolean(true));
  mmproj.set(K::kVisionProjection, u32(tc.hidden));
  mmproj.set(K::kVisionImageSize, u32(vc.image_size));
  mmproj.set(K::kVisionPatch, u32(vc.patch));
  mmproj.set(K::kVisionHidden, u32(vc.hidden));
  mmproj.set(K::kVisionIntermediate, u32(vc.intermediate));
  mmproj.set(K::kVisionLayers, u32(vc.layers));
  mmproj.set(K::kVisionHeads, u32(vc.heads));
  const auto& p = cfg.processor;
  mmproj.set(K::kVisionMean, GgufValue::f32_array({p.mean.begin(), p.mean.end()}));
  mmproj.set(K::kVisionStd, GgufValue::f32_array({p.std.begin(), p.std.end()}));
  mmproj.set("clip.projector_type", GgufValue::string("idefics3"));
  mmproj.set(K::kVisionNormEps, GgufValue::f32(vc.layer_norm_eps));
  mmproj.set(K::kVisionScaleFactor, u32(cfg.scale_factor));
  mmproj.set(K::kUseGelu, GgufValue::boolean(true));
  mmproj.set(K::kVisionLongestEdge, u32(p.longest_edge));
  mmproj.set("general.quantization_version", GgufValue::u32(2));

  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (!fs::is_directory(out_dir)) throw Error("cannot create output folder '" + out_dir + "'");
  ConvertResult r;
  r.text_path =
      (fs::path(out_dir) / (stem + "-" + type_label(opt.text_type, opt.kquant_small) + ".gguf"))
          .string();
  r.mmproj_path =
      (fs::path(out_dir) / ("mmproj-" + stem + "-" + type_label(opt.vision_type) + ".gguf"))
          .string();
  r.text_tensors = text.tensor_count();
  r.mmproj_tensors = mmproj.tensor_count();
  const size_t total = text.data_bytes() + mmproj.data_bytes(), first = text.data_bytes();
  // Every output place first: none is written when one of them cannot be.
  for (const std::string& out : {r.text_path, r.mmproj_path}) {
    check_output_path(out);
    check_output_path(out + ".part");
  }
  text.write(r.text_path, [&](size_t done, size_t) {
    if (progress) progress(done, total);
  });
  mmproj.write(r.mmproj_path, [&](size_t done, size_t) {
    if (progress) progress(first + done, total);
  });
  return r;
}

}  // namespace smolvlm
