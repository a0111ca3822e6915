// GGUF (llama.cpp's model format, version 3; version 2 has the same layout): a header, typed
// key/value metadata, tensor descriptions, then the tensor data, each tensor at an offset that is
// a multiple of `general.alignment` (32 when absent) from the aligned start of the data section.
//
// The reader maps the file and hands out zero-copy TensorViews in our DType. Every count, length,
// offset and size is checked against the file before anything is allocated or read, so a corrupt
// or hostile file gives a one-line smolvlm::Error, never a crash. The writer lays files out exactly
// as llama.cpp's gguf-py does (same padding, same alignment), so its files load in llama.cpp.
//
// Shapes: GGUF lists dimensions fastest-varying first (ggml's ne[0] = row length); TensorView
// shapes are row-major like PyTorch's, so the reader reverses them (and the writer reverses back).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "formats/mapped_file.h"
#include "formats/tensor.h"

namespace smolvlm {

// The metadata value types, with their numbers in the file.
enum class GgufType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};
const char* gguf_type_name(GgufType t);

// One metadata value. Scalars live in the member their type family uses; an array keeps its
// element type and its elements (nested arrays are not supported: no model uses them).
struct GgufValue {
  GgufType type = GgufType::U32;
  GgufType elem = GgufType::U8;  // element type when type == Array
  uint64_t u = 0;                // unsigned integers and Bool
  int64_t i = 0;                 // signed integers
  double f = 0;                  // F32 and F64 (F32 values are exact in a double)
  std::string str;
  std::vector<std::string> strs;  // array of String
  std::vector<int64_t> ints;      // array of any integer type or Bool
  std::vector<double> floats;     // array of F32 / F64

  static GgufValue u32(uint32_t v);
  static GgufValue i32(int32_t v);
  static GgufValue f32(float v);
  static GgufValue boolean(bool v);
  static GgufValue string(std::string v);
  static GgufValue string_array(std::vector<std::string> v);
  static GgufValue i32_array(std::vector<int32_t> v);
  static GgufValue f32_array(std::vector<float> v);

  bool is_integer() const;  // any integer type (not Bool)
  bool is_float() const { return type == GgufType::F32 || type == GgufType::F64; }
  size_t array_size() const;
  // A readable rendering for error messages and the metadata comparison ("[3 × F32: 0.5, ...]").
  std::string to_string(size_t max_items = 8) const;
  bool operator==(const GgufValue& o) const;
};

// ggml's tensor type numbers for the types we read and write; others are named in errors.
constexpr uint32_t kGgmlF32 = 0, kGgmlF16 = 1, kGgmlQ8_0 = 8, kGgmlBF16 = 30;
std::string ggml_type_name(uint32_t ggml_type);  // "Q4_K", or "#99" when unknown
// Our DType for a ggml type; nullopt when we do not support it.
std::optional<DType> dtype_from_ggml(uint32_t ggml_type);
uint32_t ggml_from_dtype(DType t);  // throws for types GGUF has no number for

// The parsed contents of a GGUF file: metadata in file order, tensors in file order.
struct GgufContents {
  uint32_t version = 3;
  size_t alignment = 32;
  size_t data_offset = 0;  // where the data section starts in the file
  std::vector<std::pair<std::string, GgufValue>> metadata;
  std::vector<TensorView> tensors;  // views into the parsed buffer; shapes row-major
};

// Parses a whole GGUF file held in memory (the fuzz target and tests use this directly);
// `data` must outlive the views. Throws smolvlm::Error naming `name_for_errors`.
GgufContents parse_gguf(const uint8_t* data, size_t size, const std::string& name_for_errors);

// True when the file starts with the GGUF magic (a cheap check). Throws smolvlm::Error when it
// cannot be opened or is not a regular file (see InputFile).
bool is_gguf_file(const std::string& path);

class GgufFile {
 public:
  explicit GgufFile(const std::string& path);  // maps and parses; throws smolvlm::Error

  const std::string& path() const { return file_.path(); }
  uint32_t version() const { return c_.version; }
  size_t alignment() const { return c_.alignment; }
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return c_.metadata; }
  const std::vector<TensorView>& tensors() const { return c_.tensors; }

  const GgufValue* find(const std::string& key) const;
  const TensorView* find_tensor(const std::string& name) const;

  // Typed getters. The `required` forms throw "'file': missing required key 'k'"; all throw when a
  // present key has the wrong type or an out-of-range value.
  std::string get_string(const std::string& key) const;
  std::optional<std::string> get_string_opt(const std::string& key) const;
  int64_t get_int(const std::string& key) const;  // any integer type
  std::optional<int64_t> get_int_opt(const std::string& key) const;
  double get_float(const std::string& key) const;  // F32 / F64
  std::optional<double> get_float_opt(const std::string& key) const;
  std::optional<bool> get_bool_opt(const std::string& key) const;
  const GgufValue& get_array(const std::string& key, GgufType elem) const;
  const GgufValue* get_array_opt(const std::string& key, GgufType elem) const;

 private:
  MappedFile file_;
  GgufContents c_;
  std::map<std::string, size_t> meta_index_, tensor_index_;
};

// Writes a GGUF v3 file. Metadata keeps insertion order; tensors are declared with their type and
// (row-major) shape first, and their bytes are produced one at a time while the file is written,
// so a whole model never has to sit in memory.
class GgufWriter {
 public:
  using Producer = std::function<std::vector<uint8_t>()>;
  using Progress = std::function<void(size_t bytes_done, size_t bytes_total)>;

  void set(const std::string& key, GgufValue v);  // replaces an existing key in place
  void add_tensor(const std::string& name, DType type, std::vector<int64_t> shape, Producer bytes);
  size_t data_bytes() const;  // the data section's size, padding included
  size_t tensor_count() const { return tensors_.size(); }
  // Writes to `path` (via a temporary file renamed at the end, so a failed write leaves nothing).
  void write(const std::string& path, const Progress& progress = nullptr) const;

  // 32 (llama.cpp's default), or general.alignment when it has been set.
  size_t alignment() const;

 private:
  struct Pending {
    std::string name;
    DType type;
    std::vector<int64_t> shape;
    size_t nbytes;
    Producer bytes;
  };
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<Pending> tensors_;
};

}  // namespace smolvlm
