// GGUF writing (GgufWriter); reading is gguf_read.cpp.
#include <smolvlm/error.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>

#include "formats/gguf.h"
#include "formats/output_file.h"

namespace smolvlm {

void GgufWriter::set(const std::string& key, GgufValue v) {
  for (auto& [k, old] : metadata_) {
    if (k == key) {
      old = std::move(v);
      return;
    }
  }
  metadata_.emplace_back(key, std::move(v));
}

void GgufWriter::add_tensor(const std::string& name, DType type, std::vector<int64_t> shape,
                            Producer bytes) {
  if (shape.empty() || shape.size() > kGgufMaxDims) {
    throw Error("GGUF writer: tensor '" + name + "' must have 1 to 4 dimensions");
  }
  ggml_from_dtype(type);  // throws for types GGUF cannot hold
  const int64_t cols = shape.back();
  int64_t rows = 1;
  for (size_t d = 0; d + 1 < shape.size(); ++d) rows *= shape[d];
  if ((type == DType::Q8_0 || type == DType::Q4_0) && cols % kQ8BlockSize != 0) {
    throw Error("GGUF writer: tensor '" + name + "' rows are not whole Q8_0 blocks");
  }
  if (is_block_type(type) && cols % block_elems(type) != 0) {
    throw Error("GGUF writer: tensor '" + name + "' rows are not whole " + dtype_name(type) +
                " blocks");
  }
  const size_t nbytes = row_bytes(type, cols) * static_cast<size_t>(rows);
  tensors_.push_back({name, type, std::move(shape), nbytes, std::move(bytes)});
}

size_t GgufWriter::alignment() const {
  for (const auto& [k, v] : metadata_) {
    if (k != "general.alignment") continue;
    if (v.type != GgufType::U32 || v.u == 0 || (v.u & (v.u - 1)) != 0) {
      throw Error("GGUF writer: general.alignment must be a power of two (U32)");
    }
    return static_cast<size_t>(v.u);
  }
  return 32;
}

size_t GgufWriter::data_bytes() const {
  const size_t align = alignment();
  size_t total = 0;
  for (const auto& t : tensors_) total += (t.nbytes + align - 1) / align * align;
  return total;
}

namespace {

class FileOut {
 public:
  // Opened without blocking and only as a regular file: a FIFO at the path is refused.
  FileOut(const std::string& path) : path_(path), file_(open_output_file(path)), f_(file_.get()) {}
  FileOut(const FileOut&) = delete;
  FileOut& operator=(const FileOut&) = delete;

  void bytes(const void* p, size_t n) {
    if (n && std::fwrite(p, 1, n, f_) != n)
      throw Error("cannot write '" + path_ + "' (disk full?)");
    pos_ += n;
  }
  template <typename T>
  void put(T v) {
    bytes(&v, sizeof v);
  }
  void str(const std::string& s) {
    put<uint64_t>(s.size());
    bytes(s.data(), s.size());
  }
  void pad(size_t align) {
    static const uint8_t zeros[64] = {};
    size_t n = (align - pos_ % align) % align;
    while (n > 0) {
      const size_t k = std::min(n, sizeof zeros);
      bytes(zeros, k);
      n -= k;
    }
  }
  void close() {
    const int rc = std::fclose(file_.release());
    f_ = nullptr;
    if (rc != 0) throw Error("cannot write '" + path_ + "' (disk full?)");
  }

 private:
  std::string path_;
  OutputFile file_;
  std::FILE* f_;
  size_t pos_ = 0;
};

void write_scalar(FileOut& out, GgufType t, uint64_t u, int64_t i, double f, const std::string& s) {
  switch (t) {
    case GgufType::U8:
      out.put<uint8_t>(static_cast<uint8_t>(u));
      break;
    case GgufType::I8:
      out.put<int8_t>(static_cast<int8_t>(i));
      break;
    case GgufType::U16:
      out.put<uint16_t>(static_cast<uint16_t>(u));
      break;
    case GgufType::I16:
      out.put<int16_t>(static_cast<int16_t>(i));
      break;
    case GgufType::U32:
      out.put<uint32_t>(static_cast<uint32_t>(u));
      break;
    case GgufType::I32:
      out.put<int32_t>(static_cast<int32_t>(i));
      break;
    case GgufType::U64:
      out.put<uint64_t>(u);
      break;
    case GgufType::I64:
      out.put<int64_t>(i);
      break;
    case GgufType::F32:
      out.put<float>(static_cast<float>(f));
      break;
    case GgufType::F64:
      out.put<double>(f);
      break;
    case GgufType::Bool:
      out.put<uint8_t>(u ? 1 : 0);
      break;
    case GgufType::String:
      out.str(s);
      break;
    case GgufType::Array:
      break;
  }
}

bool unsigned_type(GgufType t) {
  return t == GgufType::U8 || t == GgufType::U16 || t == GgufType::U32 || t == GgufType::U64 ||
         t == GgufType::Bool;
}

}  // namespace

void GgufWriter::write(const std::string& path, const Progress& progress) const {
  const std::string tmp = path + ".part";
  const size_t align = alignment();
  // Both places are checked before any work: a directory named like the output would otherwise
  // fail only at the rename, after the whole file was written.
  check_output_path(path);
  check_output_path(tmp);
  try {
    FileOut out(tmp);
    out.bytes("GGUF", 4);
    out.put<uint32_t>(3);
    out.put<uint64_t>(tensors_.size());
    out.put<uint64_t>(metadata_.size());
    for (const auto& [key, v] : metadata_) {
      out.str(key);
      out.put<uint32_t>(static_cast<uint32_t>(v.type));
      if (v.type != GgufType::Array) {
        write_scalar(out, v.type, v.u, v.i, v.f, v.str);
        continue;
      }
      out.put<uint32_t>(static_cast<uint32_t>(v.elem));
      out.put<uint64_t>(v.array_size());
      for (size_t k = 0; k < v.array_size(); ++k) {
        if (v.elem == GgufType::String) {
          out.str(v.strs[k]);
        } else if (v.elem == GgufType::F32 || v.elem == GgufType::F64) {
          write_scalar(out, v.elem, 0, 0, v.floats[k], {});
        } else {
          const int64_t x = v.ints[k];
          write_scalar(out, v.elem, unsigned_type(v.elem) ? static_cast<uint64_t>(x) : 0, x, 0, {});
        }
      }
    }
    size_t offset = 0;
    for (const auto& t : tensors_) {
      out.str(t.name);
      out.put<uint32_t>(static_cast<uint32_t>(t.shape.size()));
      for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) out.put<uint64_t>(*it);
      out.put<uint32_t>(ggml_from_dtype(t.type));
      out.put<uint64_t>(offset);
      offset += (t.nbytes + align - 1) / align * align;
    }
    out.pad(align);
    const size_t total = data_bytes();
    size_t done = 0;
    for (const auto& t : tensors_) {
      const std::vector<uint8_t> bytes = t.bytes();
      if (bytes.size() != t.nbytes) {
        throw Error("GGUF writer: tensor '" + t.name + "' produced " +
                    std::to_string(bytes.size()) + " bytes, expected " + std::to_string(t.nbytes));
      }
      out.bytes(bytes.data(), bytes.size());
      out.pad(align);
      done += (t.nbytes + align - 1) / align * align;
      if (progress) progress(done, total);
    }
    out.close();
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);  // no half-finished .part is left behind
    throw Error("cannot write '" + path + "': " + ec.message());
  }
}

}  // namespace smolvlm
