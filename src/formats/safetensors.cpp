#include "formats/safetensors.h"

#include <smolvlm/error.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "formats/output_file.h"
#include "util/input_text.h"

namespace smolvlm {

namespace {

bool parse_dtype(const std::string& s, DType& out) {
  static const std::pair<const char*, DType> kTable[] = {
      {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16}, {"I32", DType::I32},
      {"I64", DType::I64}, {"U8", DType::U8},   {"I8", DType::I8},     {"F64", DType::F64}};
  for (const auto& [name, t] : kTable) {
    if (s == name) {
      out = t;
      return true;
    }
  }
  return false;
}

// a*b with overflow detection (shapes come from untrusted files).
bool mul_ok(uint64_t a, uint64_t b, uint64_t& out) {
  if (a != 0 && b > std::numeric_limits<uint64_t>::max() / a) return false;
  out = a * b;
  return true;
}

// The header as a JSON DOM, built from nlohmann's SAX events. nlohmann::json keeps the last of
// repeated keys; a header that names a tensor (or its dtype, shape, offsets) twice is ambiguous,
// so the first repeat stops the parse and is noted. (nlohmann's parser callback would do the same
// but rescans the parent object at every object end: quadratic, 85,000 entries took minutes.)
// Nesting is bounded too, so no later recursion over the DOM can run out of stack.
class HeaderBuilder {
 public:
  using json = nlohmann::json;
  explicit HeaderBuilder(json& root) : root_(root) {}

  std::string duplicate;  // the first key seen twice in one object
  bool too_deep = false;

  bool null() { return put(nullptr) != nullptr; }
  bool boolean(bool v) { return put(v) != nullptr; }
  bool number_integer(json::number_integer_t v) { return put(v) != nullptr; }
  bool number_unsigned(json::number_unsigned_t v) { return put(v) != nullptr; }
  bool number_float(json::number_float_t v, const json::string_t&) { return put(v) != nullptr; }
  bool string(json::string_t& v) { return put(std::move(v)) != nullptr; }
  bool binary(json::binary_t& v) { return put(json::binary(std::move(v))) != nullptr; }
  bool start_object(std::size_t) { return open(json::object()); }
  bool start_array(std::size_t) { return open(json::array()); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }
  bool key(json::string_t& k) {
    if (open_.back()->contains(k)) {
      duplicate = std::move(k);
      return false;
    }
    key_ = std::move(k);
    return true;
  }
  template <class Exception>
  bool parse_error(std::size_t, const std::string&, const Exception&) {
    return false;
  }

 private:
  json* put(json&& v) {
    if (open_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    json& parent = *open_.back();
    if (parent.is_array()) {
      parent.push_back(std::move(v));
      return &parent.back();  // stays valid: nothing is added to `parent` while it is open
    }
    json& slot = parent[key_];
    slot = std::move(v);
    return &slot;
  }
  bool open(json&& container) {
    if (open_.size() >= static_cast<size_t>(kMaxJsonDepth)) {
      too_deep = true;
      return false;
    }
    open_.push_back(put(std::move(container)));
    return true;
  }
  bool close() {
    open_.pop_back();
    return true;
  }

  json& root_;
  std::vector<json*> open_;  // the arrays and objects not yet closed, innermost last
  std::string key_;
};

}  // namespace

std::map<std::string, TensorView> parse_safetensors(const uint8_t* data, size_t size,
                                                    const std::string& file) {
  const std::string where = "safetensors file '" + file + "'";
  if (size < 8) throw Error(where + " is truncated (" + std::to_string(size) + " bytes)");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = header_len << 8 | data[i];
  if (header_len > size - 8) {
    throw Error(where + " is truncated: header of " + std::to_string(header_len) +
                " bytes does not fit in " + std::to_string(size) + " bytes");
  }
  if (header_len > kMaxSafetensorsHeaderBytes) {
    throw Error(where + " has a header of " + std::to_string(header_len) +
                " bytes, over the limit of " + std::to_string(kMaxSafetensorsHeaderBytes));
  }
  nlohmann::json header;
  HeaderBuilder builder(header);
  bool parsed = false;
  try {
    parsed = nlohmann::json::sax_parse(data + 8, data + 8 + header_len, &builder);
  } catch (const std::exception&) {
    parsed = false;
  }
  if (!builder.duplicate.empty()) {
    throw Error(where + " has a JSON header with the key " + quote_input(builder.duplicate) +
                " twice in one object (ambiguous)");
  }
  if (builder.too_deep) {
    throw Error(where + " has a JSON header nested deeper than " + std::to_string(kMaxJsonDepth) +
                " levels");
  }
  if (!parsed) throw Error(where + " has a corrupt JSON header");
  if (!header.is_object()) throw Error(where + " header is not a JSON object");
  const uint8_t* base = data + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;

  std::map<std::string, TensorView> out;
  struct Span {
    uint64_t begin, end;
    const std::string* name;
  };
  std::vector<Span> spans;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const std::string tensor = where + ", tensor " + quote_input(it.key());
    const auto& e = it.value();
    if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") ||
        !e.contains("data_offsets") || !e["dtype"].is_string() || !e["shape"].is_array() ||
        !e["data_offsets"].is_array() || e["data_offsets"].size() != 2) {
      throw Error(tensor + ": malformed header entry");
    }
    TensorView v;
    v.name = it.key();
    const std::string dt = e["dtype"].get<std::string>();
    if (!parse_dtype(dt, v.dtype)) throw Error(tensor + ": unknown dtype " + quote_input(dt));
    uint64_t numel = 1;
    for (const auto& d : e["shape"]) {
      if (!d.is_number_unsigned()) throw Error(tensor + ": bad shape");
      const uint64_t dim = d.get<uint64_t>();
      if (dim > (uint64_t{1} << 40) || !mul_ok(numel, dim, numel))
        throw Error(tensor + ": bad shape");
      v.shape.push_back(static_cast<int64_t>(dim));
    }
    const auto& offs = e["data_offsets"];
    if (!offs[0].is_number_unsigned() || !offs[1].is_number_unsigned()) {
      throw Error(tensor + ": bad data_offsets");
    }
    const uint64_t begin = offs[0].get<uint64_t>(), end = offs[1].get<uint64_t>();
    uint64_t nbytes = 0;
    if (!mul_ok(numel, dtype_size(v.dtype), nbytes)) throw Error(tensor + ": bad shape");
    if (begin > end || end > data_size) {
      throw Error(tensor + ": data [" + std::to_string(begin) + ", " + std::to_string(end) +
                  ") lies past the end of the file (file truncated?)");
    }
    if (end - begin != nbytes) {
      throw Error(tensor + ": " + std::to_string(end - begin) + " data bytes do not match shape " +
                  v.shape_str() + " of " + dt);
    }
    v.data = base + begin;
    v.nbytes = static_cast<size_t>(nbytes);
    if (nbytes > 0) spans.push_back({begin, end, &it.key()});
    out.emplace(v.name, std::move(v));
  }
  // Two tensors may not share bytes: sorted by offset, each must end before the next begins.
  std::sort(spans.begin(), spans.end(),
            [](const Span& a, const Span& b) { return a.begin < b.begin; });
  for (size_t k = 1; k < spans.size(); ++k) {
    if (spans[k - 1].end > spans[k].begin) {
      throw Error(where + ": tensors " + quote_input(*spans[k - 1].name) + " and " +
                  quote_input(*spans[k].name) + " share data bytes (at offset " +
                  std::to_string(spans[k].begin) + ")");
    }
  }
  return out;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(path) {
  tensors_ = parse_safetensors(file_.data(), file_.size(), path);
}

const TensorView* SafetensorsFile::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

const TensorView& SafetensorsFile::get(const std::string& name) const {
  const TensorView* t = find(name);
  if (!t) throw Error("tensor '" + name + "' not found in '" + path() + "'");
  return *t;
}

TensorStore TensorStore::open_hf_folder(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error("model folder '" + dir + "' does not exist");
  std::vector<std::string> files;
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  if (fs::exists(index, ec)) {
    const nlohmann::json j = parse_json_bounded(
        read_file(index.string(), "index file", kMaxJsonFileBytes), "'" + index.string() + "'");
    if (!j.contains("weight_map") || !j["weight_map"].is_object()) {
      throw Error("'" + index.string() + "' has no weight_map");
    }
    std::set<std::string> shards;
    for (const auto& v : j["weight_map"]) {
      if (!v.is_string()) throw Error("'" + index.string() + "' has a bad weight_map entry");
      const std::string shard = v.get<std::string>();
      if (shard.find('/') != std::string::npos || shard.find("..") != std::string::npos) {
        throw Error("'" + index.string() +
                    "' names a shard outside the folder: " + quote_input(shard));
      }
      shards.insert(shard);
    }
    for (const auto& s : shards) {
      const fs::path p = fs::path(dir) / s;
      if (!fs::exists(p, ec)) {
        throw Error("'" + index.string() + "' names a missing shard " + quote_input(s) +
                    " (not in the folder)");
      }
      files.push_back(p.string());
    }
  } else {
    // An unsharded HF checkpoint is always named model.safetensors.
    const fs::path single = fs::path(dir) / "model.safetensors";
    if (!fs::exists(single, ec)) {
      throw Error("model folder '" + dir +
                  "' has neither model.safetensors nor model.safetensors.index.json");
    }
    files.push_back(single.string());
  }
  if (files.empty()) throw Error("no .safetensors weights in model folder '" + dir + "'");

  TensorStore store;
  for (const auto& f : files) {
    store.files_.push_back(std::make_unique<SafetensorsFile>(f));
    for (const auto& [name, view] : store.files_.back()->tensors()) {
      if (!store.index_.emplace(name, &view).second) {
        throw Error("tensor " + quote_input(name) + " appears in more than one shard of '" + dir +
                    "'");
      }
    }
  }
  return store;
}

const TensorView* TensorStore::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second;
}

std::vector<std::string> TensorStore::names() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : index_) out.push_back(k);
  return out;
}

}  // namespace smolvlm

#include <fstream>

namespace smolvlm {

size_t TensorSpec::nbytes() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return dtype == DType::Q8_0 ? row_bytes(dtype, n) : static_cast<size_t>(n) * dtype_size(dtype);
}

SafetensorsWriter::SafetensorsWriter(const std::string& path, std::vector<TensorSpec> specs)
    : path_(path), specs_(std::move(specs)) {
  nlohmann::json header = nlohmann::json::object();
  uint64_t offset = 0;
  for (const auto& t : specs_) {
    header[t.name] = {{"dtype", dtype_name(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
  }
  std::string h = header.dump();
  while ((h.size() + 8) % 8 != 0) h += ' ';  // the format pads the header with spaces
  check_output_path(path);                   // a FIFO there would block the open below
  out_ = std::make_unique<std::ofstream>(path, std::ios::binary | std::ios::trunc);
  if (!*out_) throw Error("cannot write '" + path + "'");
  uint8_t len[8];
  for (int i = 0; i < 8; ++i)
    len[i] = static_cast<uint8_t>(static_cast<uint64_t>(h.size()) >> (8 * i));
  out_->write(reinterpret_cast<const char*>(len), 8);
  out_->write(h.data(), static_cast<std::streamsize>(h.size()));
}

void SafetensorsWriter::write_next(const void* bytes, size_t n) {
  if (next_ >= specs_.size() || specs_[next_].nbytes() != n) {
    throw Error("safetensors writer: tensor data out of order or of the wrong size");
  }
  out_->write(static_cast<const char*>(bytes), static_cast<std::streamsize>(n));
  if (!*out_) throw Error("cannot write '" + path_ + "' (disk full?)");
  ++next_;
}

void SafetensorsWriter::finish() {
  if (next_ != specs_.size()) throw Error("safetensors writer: not every tensor was written");
  out_->close();
  if (!*out_) throw Error("cannot write '" + path_ + "' (disk full?)");
}

void write_safetensors(const std::string& path, const std::vector<TensorData>& tensors) {
  std::vector<TensorSpec> specs;
  for (const auto& t : tensors) specs.push_back({t.name, t.dtype, t.shape});
  SafetensorsWriter w(path, specs);
  for (const auto& t : tensors) w.write_next(t.bytes.data(), t.bytes.size());
  w.finish();
}

}  // namespace smolvlm
