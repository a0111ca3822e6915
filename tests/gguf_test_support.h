// Helpers for the GGUF tests: the llama.cpp fixture files, byte-level damage, metadata diffs.
#pragma once

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "formats/mapped_file.h"
#include "test_support.h"

namespace smolvlm::test {

// Written by llama.cpp's convert_hf_to_gguf.py from tests/fixtures/tiny-smolvlm2 (convert.log).
inline std::string gguf_fixture(const std::string& name) {
  return fixtures() + "/tiny-smolvlm2-gguf/" + name;
}
inline std::string text_bf16() { return gguf_fixture("tiny-text-BF16.gguf"); }
inline std::string text_q8() { return gguf_fixture("tiny-text-Q8_0.gguf"); }
inline std::string mmproj_f32() { return gguf_fixture("tiny-mmproj-F32.gguf"); }
inline std::string mmproj_f16() { return gguf_fixture("tiny-mmproj-F16.gguf"); }
inline std::string mmproj_q8() { return gguf_fixture("tiny-mmproj-Q8_0.gguf"); }

inline std::string read_bytes(const std::string& path) { return read_text_file(path); }
inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// Position just after a tensor description's name (n_dims, dims, type and offset follow).
inline size_t tensor_info_pos(const std::string& bytes, const std::string& name) {
  std::string key(8, '\0');
  const uint64_t n = name.size();
  std::memcpy(key.data(), &n, 8);
  key += name;
  const size_t at = bytes.find(key);
  return at == std::string::npos ? at : at + key.size();
}

template <typename T>
void poke(std::string& bytes, size_t at, T v) {
  std::memcpy(bytes.data() + at, &v, sizeof v);
}
template <typename T>
T peek(const std::string& bytes, size_t at) {
  T v;
  std::memcpy(&v, bytes.data() + at, sizeof v);
  return v;
}

// Where a tensor description's type (u32) and offset (u64) sit.
inline size_t tensor_type_pos(const std::string& bytes, const std::string& name) {
  const size_t p = tensor_info_pos(bytes, name);
  return p + 4 + 8 * peek<uint32_t>(bytes, p);
}

// Copies a GGUF file through our writer, letting `edit` change the metadata and `keep` drop
// tensors; `reshape` may replace a tensor (name → new shape, zero bytes).
struct GgufEdit {
  std::function<void(std::vector<std::pair<std::string, GgufValue>>&)> metadata;
  std::function<bool(const TensorView&, std::vector<int64_t>& shape)> tensor;  // false: drop
};

inline void rewrite_gguf(const std::string& src, const std::string& dst, const GgufEdit& edit) {
  auto in = std::make_shared<GgufFile>(src);
  std::vector<std::pair<std::string, GgufValue>> meta = in->metadata();
  if (edit.metadata) edit.metadata(meta);
  GgufWriter w;
  for (auto& [k, v] : meta) w.set(k, v);
  for (const TensorView& t : in->tensors()) {
    std::vector<int64_t> shape = t.shape;
    if (edit.tensor && !edit.tensor(t, shape)) continue;
    const bool same = shape == t.shape;
    const TensorView* tp = &t;
    w.add_tensor(t.name, t.dtype, shape, [in, tp, same, shape, dtype = t.dtype]() {
      if (same) return std::vector<uint8_t>(tp->data, tp->data + tp->nbytes);
      int64_t rows = 1;
      for (size_t d = 0; d + 1 < shape.size(); ++d) rows *= shape[d];
      return std::vector<uint8_t>(row_bytes(dtype, shape.back()) * static_cast<size_t>(rows), 0);
    });
  }
  w.write(dst);
}

inline void set_meta(std::vector<std::pair<std::string, GgufValue>>& meta, const std::string& key,
                     const GgufValue& v) {
  for (auto& [k, old] : meta) {
    if (k == key) old = v;
  }
}
inline void drop_meta(std::vector<std::pair<std::string, GgufValue>>& meta,
                      const std::string& key) {
  std::erase_if(meta, [&](const auto& kv) { return kv.first == key; });
}

// Every difference between two files' metadata: missing keys, different values or types, order.
inline std::vector<std::string> metadata_diff(const GgufFile& ours, const GgufFile& theirs) {
  std::vector<std::string> out;
  for (const auto& [k, v] : theirs.metadata()) {
    const GgufValue* o = ours.find(k);
    if (!o) {
      out.push_back("missing key " + k + " = " + v.to_string());
    } else if (!(*o == v)) {
      out.push_back(k + ": ours " + o->to_string() + ", llama.cpp's " + v.to_string());
    }
  }
  for (const auto& [k, v] : ours.metadata()) {
    if (!theirs.find(k)) out.push_back("extra key " + k + " = " + v.to_string());
  }
  if (out.empty()) {
    for (size_t i = 0; i < ours.metadata().size(); ++i) {
      if (ours.metadata()[i].first != theirs.metadata()[i].first) {
        out.push_back("key order differs at " + std::to_string(i) + ": " +
                      ours.metadata()[i].first + " vs " + theirs.metadata()[i].first);
        break;
      }
    }
  }
  return out;
}

}  // namespace smolvlm::test
