// safetensors reader: an 8-byte little-endian header length, a JSON header, then raw tensor data.
// Every offset and shape is checked against the file before a tensor is handed out.
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "formats/mapped_file.h"
#include "formats/tensor.h"

namespace smolvlm {

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);  // throws smolvlm::Error
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  const TensorView* find(const std::string& name) const;
  const TensorView& get(const std::string& name) const;  // throws if absent
  const std::string& path() const { return file_.path(); }

 private:
  MappedFile file_;
  std::map<std::string, TensorView> tensors_;
};

// The JSON header's size limit (the safetensors format's own, as its Rust reader has it).
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;

// Parses from a buffer (the fuzz target and tests use this); `data` must outlive the views.
std::map<std::string, TensorView> parse_safetensors(const uint8_t* data, size_t size,
                                                    const std::string& name_for_errors);

// All tensors of a HF model folder: model.safetensors.index.json (sharded) or *.safetensors.
class TensorStore {
 public:
  static TensorStore open_hf_folder(const std::string& dir);
  const TensorView* find(const std::string& name) const;
  std::vector<std::string> names() const;

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorView*> index_;
};

}  // namespace smolvlm

namespace smolvlm {

// One tensor to write: raw little-endian bytes in `dtype`, shape as given.
struct TensorData {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

struct TensorSpec {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  size_t nbytes() const;
};

// Streams a safetensors file: every tensor is declared up front (the header comes first),
// then their bytes are written one tensor at a time, in the declared order.
class SafetensorsWriter {
 public:
  SafetensorsWriter(const std::string& path, std::vector<TensorSpec> specs);
  void write_next(const void* bytes, size_t n);  // the next declared tensor, whole
  void finish();                                 // checks every tensor was written

 private:
  std::string path_;
  std::vector<TensorSpec> specs_;
  size_t next_ = 0;
  std::unique_ptr<std::ofstream> out_;
};

// Writes a whole safetensors file (tensors in the given order, 8-byte aligned header).
void write_safetensors(const std::string& path, const std::vector<TensorData>& tensors);

}  // namespace smolvlm
