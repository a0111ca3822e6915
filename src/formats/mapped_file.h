// A read-only memory map of a whole file. Model weights are used in place from it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace smolvlm {

class MappedFile {
 public:
  MappedFile() = default;
  explicit MappedFile(const std::string& path);  // throws smolvlm::Error
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

// Drops the pages of [p, p + bytes) from this process's resident set when the range lies in a
// live MappedFile (whole pages inside it only): they stay in the page cache and come back on
// the next read, unchanged. Returns false, touching nothing, for memory that is not a mapped
// file (e.g. weights converted at load time), where dropping would lose the data.
bool drop_mapped_pages(const void* p, size_t bytes);

// Whole file into memory; throws smolvlm::Error naming the file.
std::string read_text_file(const std::string& path);

}  // namespace smolvlm
