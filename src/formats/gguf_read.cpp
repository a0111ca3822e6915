// GGUF reading: the value types, the parser and GgufFile; writing is gguf_write.cpp.
#include <smolvlm/error.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>

#include "formats/gguf.h"
#include "util/input_text.h"

namespace smolvlm {

namespace {

constexpr uint64_t kMaxDim = uint64_t{1} << 40;  // per dimension; far beyond any real model
// Counts a file states, checked before anything of that count is allocated. Real GGUFs hold tens
// of keys, hundreds to a few thousand tensors, and arrays of up to a few hundred thousand
// elements (the tokenizer's); a name is a few dozen bytes (the GGUF spec caps keys at 65535).
constexpr uint64_t kMaxKeys = uint64_t{1} << 16;
constexpr uint64_t kMaxTensors = uint64_t{1} << 16;
constexpr uint64_t kMaxArrayElements = uint64_t{1} << 22;  // all arrays of a file together
constexpr uint64_t kMaxNameBytes = 65535;

bool mul_ok(uint64_t a, uint64_t b, uint64_t& out) {
  if (a != 0 && b > std::numeric_limits<uint64_t>::max() / a) return false;
  out = a * b;
  return true;
}

size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::U8:
    case GgufType::I8:
    case GgufType::Bool:
      return 1;
    case GgufType::U16:
    case GgufType::I16:
      return 2;
    case GgufType::U32:
    case GgufType::I32:
    case GgufType::F32:
      return 4;
    case GgufType::U64:
    case GgufType::I64:
    case GgufType::F64:
      return 8;
    case GgufType::String:  // the length prefix; the bytes come on top
      return 8;
    case GgufType::Array:
      return 12;
  }
  return 0;
}

bool valid_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::F64); }

// Bounds-checked little-endian reads from the mapped bytes.
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size, const std::string& where)
      : data_(data), size_(size), where_(where) {}

  size_t pos() const { return pos_; }
  size_t left() const { return size_ - pos_; }

  void need(uint64_t n, const char* what) const {
    if (n > left()) {
      throw Error(where_ + " is truncated: " + what + " at byte " + std::to_string(pos_) +
                  " needs " + std::to_string(n) + " bytes, " + std::to_string(left()) + " remain");
    }
  }
  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string str(const char* what, uint64_t max_bytes = std::numeric_limits<uint64_t>::max()) {
    const uint64_t n = read<uint64_t>(what);
    need(n, what);
    if (n > max_bytes) {
      throw Error(where_ + ": " + what + " at byte " + std::to_string(pos_ - 8) + " is " +
                  std::to_string(n) + " bytes long, over the limit of " +
                  std::to_string(max_bytes));
    }
    std::string s(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return s;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& where_;
};

void read_scalar(Cursor& c, GgufType t, GgufValue& v, const char* what) {
  switch (t) {
    case GgufType::U8:
      v.u = c.read<uint8_t>(what);
      break;
    case GgufType::I8:
      v.i = c.read<int8_t>(what);
      break;
    case GgufType::U16:
      v.u = c.read<uint16_t>(what);
      break;
    case GgufType::I16:
      v.i = c.read<int16_t>(what);
      break;
    case GgufType::U32:
      v.u = c.read<uint32_t>(what);
      break;
    case GgufType::I32:
      v.i = c.read<int32_t>(what);
      break;
    case GgufType::U64:
      v.u = c.read<uint64_t>(what);
      break;
    case GgufType::I64:
      v.i = c.read<int64_t>(what);
      break;
    case GgufType::F32:
      v.f = c.read<float>(what);
      break;
    case GgufType::F64:
      v.f = c.read<double>(what);
      break;
    case GgufType::Bool:
      v.u = c.read<uint8_t>(what);
      break;
    case GgufType::String:
      v.str = c.str(what);
      break;
    case GgufType::Array:
      break;  // handled by the caller
  }
}

GgufValue read_value(Cursor& c, GgufType t, const std::string& key, const std::string& where,
                     uint64_t& array_budget) {
  GgufValue v;
  v.type = t;
  if (t != GgufType::Array) {
    read_scalar(c, t, v, "a metadata value");
    if (t == GgufType::Bool && v.u > 1) {
      throw Error(where + ": key " + quote_input(key) + " holds a bool that is neither 0 nor 1");
    }
    return v;
  }
  const uint32_t et = c.read<uint32_t>("an array type");
  if (!valid_type(et)) {
    throw Error(where + ": key " + quote_input(key) + " is an array of unknown type " +
                std::to_string(et));
  }
  v.elem = static_cast<GgufType>(et);
  if (v.elem == GgufType::Array) {
    throw Error(where + ": key " + quote_input(key) +
                " is an array of arrays, which is not supported");
  }
  const uint64_t n = c.read<uint64_t>("an array length");
  // Every element takes at least scalar_size bytes: a length that cannot fit is refused before
  // anything is allocated.
  if (n > c.left() / scalar_size(v.elem)) {
    throw Error(where + " is truncated: array " + quote_input(key) + " of " + std::to_string(n) +
                " elements does not fit in the " + std::to_string(c.left()) + " bytes left");
  }
  // Each element costs up to 32 bytes of memory for 1 to 8 in the file: the arrays of a file
  // together are held to a count far above any tokenizer's.
  if (n > array_budget) {
    throw Error(where + ": array " + quote_input(key) + " of " + std::to_string(n) +
                " elements takes the file past " + std::to_string(kMaxArrayElements) +
                " array elements in all");
  }
  array_budget -= n;
  GgufValue e;
  if (v.elem == GgufType::String) {
    v.strs.reserve(static_cast<size_t>(n));
    for (uint64_t k = 0; k < n; ++k) v.strs.push_back(c.str("an array string"));
  } else if (v.elem == GgufType::F32 || v.elem == GgufType::F64) {
    v.floats.reserve(static_cast<size_t>(n));
    for (uint64_t k = 0; k < n; ++k) {
      read_scalar(c, v.elem, e, "an array element");
      v.floats.push_back(e.f);
    }
  } else {
    v.ints.reserve(static_cast<size_t>(n));
    for (uint64_t k = 0; k < n; ++k) {
      read_scalar(c, v.elem, e, "an array element");
      const bool is_unsigned = v.elem == GgufType::U8 || v.elem == GgufType::U16 ||
                               v.elem == GgufType::U32 || v.elem == GgufType::U64 ||
                               v.elem == GgufType::Bool;
      if (is_unsigned && e.u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        throw Error(where + ": array " + quote_input(key) +
                    " holds a value too large for this reader");
      }
      v.ints.push_back(is_unsigned ? static_cast<int64_t>(e.u) : e.i);
    }
  }
  return v;
}

struct GgmlTypeInfo {
  uint32_t id;
  const char* name;
};
// All of ggml's type numbers, so that an unsupported one is reported by name.
constexpr GgmlTypeInfo kGgmlTypes[] = {
    {0, "F32"},     {1, "F16"},    {2, "Q4_0"},     {3, "Q4_1"},    {6, "Q5_0"},     {7, "Q5_1"},
    {8, "Q8_0"},    {9, "Q8_1"},   {10, "Q2_K"},    {11, "Q3_K"},   {12, "Q4_K"},    {13, "Q5_K"},
    {14, "Q6_K"},   {15, "Q8_K"},  {16, "IQ2_XXS"}, {17, "IQ2_XS"}, {18, "IQ3_XXS"}, {19, "IQ1_S"},
    {20, "IQ4_NL"}, {21, "IQ3_S"}, {22, "IQ2_S"},   {23, "IQ4_XS"}, {24, "I8"},      {25, "I16"},
    {26, "I32"},    {27, "I64"},   {28, "F64"},     {29, "IQ1_M"},  {30, "BF16"},    {34, "TQ1_0"},
    {35, "TQ2_0"},  {39, "MXFP4"},
};

constexpr std::pair<uint32_t, DType> kSupported[] = {
    {0, DType::F32},
    {1, DType::F16},
    {2, DType::Q4_0},
    {8, DType::Q8_0},
    {24, DType::I8},
    {26, DType::I32},
    {27, DType::I64},
    {28, DType::F64},
    {30, DType::BF16},
    // The block types of formats/kquants.h.
    {3, DType::Q4_1},
    {6, DType::Q5_0},
    {7, DType::Q5_1},
    {10, DType::Q2_K},
    {11, DType::Q3_K},
    {12, DType::Q4_K},
    {13, DType::Q5_K},
    {14, DType::Q6_K},
    {20, DType::IQ4_NL},
    {23, DType::IQ4_XS},
};

std::string format_float(double f) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", f);
  return buf;
}

std::string quoted(const std::string& s, size_t max_chars = 60) {
  return quote_input(s, max_chars);
}

}  // namespace

const char* gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::U8:
      return "U8";
    case GgufType::I8:
      return "I8";
    case GgufType::U16:
      return "U16";
    case GgufType::I16:
      return "I16";
    case GgufType::U32:
      return "U32";
    case GgufType::I32:
      return "I32";
    case GgufType::F32:
      return "F32";
    case GgufType::Bool:
      return "BOOL";
    case GgufType::String:
      return "STRING";
    case GgufType::Array:
      return "ARRAY";
    case GgufType::U64:
      return "U64";
    case GgufType::I64:
      return "I64";
    case GgufType::F64:
      return "F64";
  }
  return "?";
}

GgufValue GgufValue::u32(uint32_t v) {
  GgufValue g;
  g.type = GgufType::U32;
  g.u = v;
  return g;
}
GgufValue GgufValue::i32(int32_t v) {
  GgufValue g;
  g.type = GgufType::I32;
  g.i = v;
  return g;
}
GgufValue GgufValue::f32(float v) {
  GgufValue g;
  g.type = GgufType::F32;
  g.f = v;
  return g;
}
GgufValue GgufValue::boolean(bool v) {
  GgufValue g;
  g.type = GgufType::Bool;
  g.u = v ? 1 : 0;
  return g;
}
GgufValue GgufValue::string(std::string v) {
  GgufValue g;
  g.type = GgufType::String;
  g.str = std::move(v);
  return g;
}
GgufValue GgufValue::string_array(std::vector<std::string> v) {
  GgufValue g;
  g.type = GgufType::Array;
  g.elem = GgufType::String;
  g.strs = std::move(v);
  return g;
}
GgufValue GgufValue::i32_array(std::vector<int32_t> v) {
  GgufValue g;
  g.type = GgufType::Array;
  g.elem = GgufType::I32;
  g.ints.assign(v.begin(), v.end());
  return g;
}
GgufValue GgufValue::f32_array(std::vector<float> v) {
  GgufValue g;
  g.type = GgufType::Array;
  g.elem = GgufType::F32;
  g.floats.assign(v.begin(), v.end());
  return g;
}

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufType::U8:
    case GgufType::I8:
    case GgufType::U16:
    case GgufType::I16:
    case GgufType::U32:
    case GgufType::I32:
    case GgufType::U64:
    case GgufType::I64:
      return true;
    default:
      return false;
  }
}

size_t GgufValue::array_size() const {
  if (type != GgufType::Array) return 0;
  return elem == GgufType::String                           ? strs.size()
         : (elem == GgufType::F32 || elem == GgufType::F64) ? floats.size()
                                                            : ints.size();
}

std::string GgufValue::to_string(size_t max_items) const {
  switch (type) {
    case GgufType::U8:
    case GgufType::U16:
    case GgufType::U32:
    case GgufType::U64:
      return std::to_string(u) + " (" + gguf_type_name(type) + ")";
    case GgufType::I8:
    case GgufType::I16:
    case GgufType::I32:
    case GgufType::I64:
      return std::to_string(i) + " (" + gguf_type_name(type) + ")";
    case GgufType::F32:
    case GgufType::F64:
      return format_float(f) + " (" + gguf_type_name(type) + ")";
    case GgufType::Bool:
      return u ? "true" : "false";
    case GgufType::String:
      return quoted(str);
    case GgufType::Array: {
      std::string s = "[" + std::to_string(array_size()) + " x " + gguf_type_name(elem) + ":";
      for (size_t k = 0; k < array_size() && k < max_items; ++k) {
        s += k ? ", " : " ";
        if (elem == GgufType::String)
          s += quoted(strs[k], 30);
        else if (elem == GgufType::F32 || elem == GgufType::F64)
          s += format_float(floats[k]);
        else
          s += std::to_string(ints[k]);
      }
      if (array_size() > max_items) s += ", ...";
      return s + "]";
    }
  }
  return "?";
}

bool GgufValue::operator==(const GgufValue& o) const {
  return type == o.type && (type != GgufType::Array || elem == o.elem) && u == o.u && i == o.i &&
         f == o.f && str == o.str && strs == o.strs && ints == o.ints && floats == o.floats;
}

std::string ggml_type_name(uint32_t t) {
  for (const auto& info : kGgmlTypes) {
    if (info.id == t) return info.name;
  }
  return "#" + std::to_string(t);
}

std::optional<DType> dtype_from_ggml(uint32_t t) {
  for (const auto& [id, d] : kSupported) {
    if (id == t) return d;
  }
  return std::nullopt;
}

uint32_t ggml_from_dtype(DType t) {
  for (const auto& [id, d] : kSupported) {
    if (d == t) return id;
  }
  throw Error(std::string("GGUF has no tensor type for ") + dtype_name(t));
}

GgufContents parse_gguf(const uint8_t* data, size_t size, const std::string& file) {
  const std::string where = "GGUF file '" + file + "'";
  Cursor c(data, size, where);
  GgufContents out;
  if (size < 4 || std::memcmp(data, "GGUF", 4) != 0) {
    throw Error("'" + file + "' is not a GGUF file (it does not start with the magic 'GGUF')");
  }
  c.read<uint32_t>("the magic");
  out.version = c.read<uint32_t>("the version");
  if (out.version != 2 && out.version != 3) {
    if (out.version != 0 && (out.version & 0xffffu) == 0) {
      throw Error(where + " is big-endian; only little-endian GGUF files are supported");
    }
    throw Error(where + " has GGUF version " + std::to_string(out.version) +
                ", which is not supported (versions 2 and 3 are)");
  }
  const uint64_t n_tensors = c.read<uint64_t>("the tensor count");
  const uint64_t n_kv = c.read<uint64_t>("the metadata count");
  // The smallest key/value takes 13 bytes and the smallest tensor description 32.
  if (n_kv > c.left() / 13 || n_tensors > c.left() / 32) {
    throw Error(where + " is truncated or corrupt: it claims " + std::to_string(n_kv) +
                " metadata entries and " + std::to_string(n_tensors) + " tensors in " +
                std::to_string(size) + " bytes");
  }
  if (n_kv > kMaxKeys || n_tensors > kMaxTensors) {
    throw Error(where + " claims " + std::to_string(n_kv) + " metadata entries and " +
                std::to_string(n_tensors) + " tensors, over the limits of " +
                std::to_string(kMaxKeys) + " and " + std::to_string(kMaxTensors));
  }
  uint64_t array_budget = kMaxArrayElements;

  std::map<std::string, size_t> seen_keys;
  out.metadata.reserve(static_cast<size_t>(n_kv));
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = c.str("a metadata key", kMaxNameBytes);
    const uint32_t t = c.read<uint32_t>("a metadata type");
    if (!valid_type(t)) {
      throw Error(where + ": key " + quote_input(key) + " has unknown value type " +
                  std::to_string(t));
    }
    GgufValue v = read_value(c, static_cast<GgufType>(t), key, where, array_budget);
    if (!seen_keys.emplace(key, out.metadata.size()).second) {
      throw Error(where + ": key " + quote_input(key) + " appears twice");
    }
    out.metadata.emplace_back(std::move(key), std::move(v));
  }
  if (auto it = seen_keys.find("general.alignment"); it != seen_keys.end()) {
    const GgufValue& a = out.metadata[it->second].second;
    if (a.type != GgufType::U32 || a.u == 0 || (a.u & (a.u - 1)) != 0) {
      throw Error(where + ": general.alignment must be a power of two (U32), got " + a.to_string());
    }
    out.alignment = static_cast<size_t>(a.u);
  }

  struct Info {
    std::vector<uint64_t> ne;
    uint64_t offset;
  };
  std::vector<Info> infos;
  std::map<std::string, size_t> seen_tensors;
  out.tensors.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t k = 0; k < n_tensors; ++k) {
    TensorView v;
    v.name = c.str("a tensor name", kMaxNameBytes);
    const std::string tensor = where + ", tensor " + quote_input(v.name);
    if (!seen_tensors.emplace(v.name, out.tensors.size()).second) {
      throw Error(tensor + " appears twice");
    }
    const uint32_t n_dims = c.read<uint32_t>("a tensor's dimension count");
    if (n_dims == 0 || n_dims > kGgufMaxDims) {
      throw Error(tensor + ": " + std::to_string(n_dims) + " dimensions (1 to 4 are allowed)");
    }
    Info info;
    uint64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t ne = c.read<uint64_t>("a tensor dimension");
      if (ne > kMaxDim || !mul_ok(numel, ne, numel)) throw Error(tensor + ": impossible shape");
      info.ne.push_back(ne);
    }
    const uint32_t type = c.read<uint32_t>("a tensor type");
    info.offset = c.read<uint64_t>("a tensor offset");
    const std::optional<DType> dt = dtype_from_ggml(type);
    if (!dt) {
      const std::string name = ggml_type_name(type);
      throw Error(tensor +
                  (name[0] == '#' ? " has unknown tensor type " + name.substr(1)
                                  : " has type " + name + ", which is not supported") +
                  " (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K,"
                  " Q5_K, Q6_K, IQ4_NL, IQ4_XS)");
    }
    v.dtype = *dt;
    if ((v.dtype == DType::Q8_0 || v.dtype == DType::Q4_0) && info.ne[0] % kQ8BlockSize != 0) {
      throw Error(tensor + ": rows of " + std::to_string(info.ne[0]) +
                  " values are not whole Q8_0 blocks of 32");
    }
    if (is_block_type(v.dtype) && info.ne[0] % block_elems(v.dtype) != 0) {
      throw Error(tensor + ": rows of " + std::to_string(info.ne[0]) + " values are not whole " +
                  dtype_name(v.dtype) + " blocks of " + std::to_string(block_elems(v.dtype)));
    }
    uint64_t nbytes = 0;
    const uint64_t rows = info.ne[0] ? numel / info.ne[0] : 0;
    if (!mul_ok(row_bytes(v.dtype, static_cast<int64_t>(info.ne[0])), rows, nbytes)) {
      throw Error(tensor + ": impossible shape");
    }
    if (info.offset % out.alignment != 0) {
      throw Error(tensor + ": data offset " + std::to_string(info.offset) +
                  " is not a multiple of the alignment " + std::to_string(out.alignment));
    }
    for (auto it = info.ne.rbegin(); it != info.ne.rend(); ++it) {
      v.shape.push_back(static_cast<int64_t>(*it));
    }
    v.nbytes = static_cast<size_t>(nbytes);
    infos.push_back(std::move(info));
    out.tensors.push_back(std::move(v));
  }

  // The data section starts at the next multiple of the alignment.
  const size_t header_end = c.pos();
  const size_t pad = (out.alignment - header_end % out.alignment) % out.alignment;
  out.data_offset = header_end + pad;
  if (!out.tensors.empty() && out.data_offset > size) {
    throw Error(where + " is truncated: it ends before its tensor data begins");
  }
  const uint64_t data_size = out.data_offset <= size ? size - out.data_offset : 0;
  for (size_t k = 0; k < out.tensors.size(); ++k) {
    TensorView& v = out.tensors[k];
    const uint64_t begin = infos[k].offset;
    if (begin > data_size || v.nbytes > data_size - begin) {
      throw Error(where + ", tensor " + quote_input(v.name) + ": data [" + std::to_string(begin) +
                  ", " + std::to_string(begin + v.nbytes) + ") lies past the end of the " +
                  std::to_string(data_size) + " data bytes (file truncated?)");
    }
    v.data = data + out.data_offset + begin;
  }
  // Two tensors may not share bytes: sorted by offset, each must end before the next begins.
  std::vector<size_t> order;
  for (size_t k = 0; k < out.tensors.size(); ++k) {
    if (out.tensors[k].nbytes > 0) order.push_back(k);
  }
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return infos[a].offset < infos[b].offset; });
  for (size_t k = 1; k < order.size(); ++k) {
    const size_t a = order[k - 1], b = order[k];
    if (infos[a].offset + out.tensors[a].nbytes > infos[b].offset) {
      throw Error(where + ": tensors " + quote_input(out.tensors[a].name) + " and " +
                  quote_input(out.tensors[b].name) + " share data bytes (at offset " +
                  std::to_string(infos[b].offset) + ")");
    }
  }
  return out;
}

bool is_gguf_file(const std::string& path) {
  // Through InputFile: a FIFO or a device named as a model is refused, not waited on.
  const InputFile f(path, "model file", InputFile::kNoLimit);
  char magic[4] = {};
  return f.size() >= 4 && ::pread(f.fd(), magic, 4, 0) == 4 && std::memcmp(magic, "GGUF", 4) == 0;
}

GgufFile::GgufFile(const std::string& path) : file_(path) {
  c_ = parse_gguf(file_.data(), file_.size(), path);
  for (size_t k = 0; k < c_.metadata.size(); ++k) meta_index_.emplace(c_.metadata[k].first, k);
  for (size_t k = 0; k < c_.tensors.size(); ++k) tensor_index_.emplace(c_.tensors[k].name, k);
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = meta_index_.find(key);
  return it == meta_index_.end() ? nullptr : &c_.metadata[it->second].second;
}

const TensorView* GgufFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &c_.tensors[it->second];
}

namespace {
[[noreturn]] void missing(const std::string& path, const std::string& key) {
  throw Error("'" + path + "': missing required key '" + key + "'");
}
[[noreturn]] void wrong_type(const std::string& path, const std::string& key, const GgufValue& v,
                             const char* want) {
  throw Error("'" + path + "': key '" + key + "' is " + gguf_type_name(v.type) + ", expected " +
              want);
}
}  // namespace

std::optional<std::string> GgufFile::get_string_opt(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::String) wrong_type(path(), key, *v, "a string");
  return v->str;
}

std::string GgufFile::get_string(const std::string& key) const {
  auto v = get_string_opt(key);
  if (!v) missing(path(), key);
  return *v;
}

std::optional<int64_t> GgufFile::get_int_opt(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_integer()) wrong_type(path(), key, *v, "an integer");
  const bool is_unsigned = v->type == GgufType::U8 || v->type == GgufType::U16 ||
                           v->type == GgufType::U32 || v->type == GgufType::U64;
  if (is_unsigned && v->u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    throw Error("'" + path() + "': key '" + key + "' is out of range");
  }
  return is_unsigned ? static_cast<int64_t>(v->u) : v->i;
}

int64_t GgufFile::get_int(const std::string& key) const {
  auto v = get_int_opt(key);
  if (!v) missing(path(), key);
  return *v;
}

std::optional<double> GgufFile::get_float_opt(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_float()) wrong_type(path(), key, *v, "a float");
  return v->f;
}

double GgufFile::get_float(const std::string& key) const {
  auto v = get_float_opt(key);
  if (!v) missing(path(), key);
  return *v;
}

std::optional<bool> GgufFile::get_bool_opt(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::Bool) wrong_type(path(), key, *v, "a bool");
  return v->u != 0;
}

const GgufValue* GgufFile::get_array_opt(const std::string& key, GgufType elem) const {
  const GgufValue* v = find(key);
  if (!v) return nullptr;
  const bool float_ok = (elem == GgufType::F32 || elem == GgufType::F64) &&
                        (v->elem == GgufType::F32 || v->elem == GgufType::F64);
  const bool int_ok = elem != GgufType::String && elem != GgufType::F32 && elem != GgufType::F64 &&
                      v->elem != GgufType::String && v->elem != GgufType::F32 &&
                      v->elem != GgufType::F64;
  if (v->type != GgufType::Array || !(v->elem == elem || float_ok || int_ok)) {
    throw Error("'" + path() + "': key '" + key + "' is not an array of " + gguf_type_name(elem));
  }
  return v;
}

const GgufValue& GgufFile::get_array(const std::string& key, GgufType elem) const {
  const GgufValue* v = get_array_opt(key, elem);
  if (!v) missing(path(), key);
  return *v;
}

}  // namespace smolvlm
