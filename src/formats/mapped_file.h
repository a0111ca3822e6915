// A read-only memory map of a whole file (model weights are used in place from it), and InputFile,
// the one way outside files are opened. A declared internal interface for apps too: `smolvlm ask`
// reads --messages through it (scripts/check-layers.py).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace smolvlm {

// Every file that comes from outside (pictures, conversations, configs, tokenizers, weights) is
// opened through InputFile: without blocking (opening a FIFO waits for a writer forever) and only
// when it is a regular file no larger than the caller's limit, so a named pipe, a device such as
// /dev/zero or a directory gets a one-line refusal instead of a hang or an unbounded read. `kind`
// names the file in messages ("image", "config file", ...): "cannot open image 'p': is a FIFO,
// not a regular file".
class InputFile {
 public:
  static constexpr uint64_t kNoLimit = ~uint64_t{0};
  InputFile(const std::string& path, const std::string& kind, uint64_t max_bytes);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  int fd() const { return fd_; }
  size_t size() const { return size_; }
  // The whole file: exactly size() bytes (a file that shrinks meanwhile is an error).
  std::string read_all() const;

 private:
  int fd_ = -1;
  size_t size_ = 0;
  std::string path_, kind_;
};

// What outside files may hold at most. Generous for every legitimate file, small enough that
// reading one cannot exhaust memory.
inline constexpr uint64_t kMaxImageFileBytes = uint64_t{256} << 20;     // a 2^28-pixel PNG fits
inline constexpr uint64_t kMaxJsonFileBytes = uint64_t{8} << 20;        // configs, conversations
inline constexpr uint64_t kMaxTokenizerFileBytes = uint64_t{64} << 20;  // the real one is 3.5 MB

// "256 MiB", "8 MiB", "1.5 KiB": sizes in messages.
std::string format_bytes(uint64_t bytes);

// `s` with control characters (a newline in a file name, say) replaced by '?': messages stay on
// one line. Past kMaxOneLineBytes (far longer than any real path) it is cut there and its length
// given: a 10 MB file name does not become a 10 MB message.
inline constexpr size_t kMaxOneLineBytes = 300;
std::string one_line(const std::string& s);

class MappedFile {
 public:
  MappedFile() = default;
  // Maps a regular file (see InputFile; weights have no size limit); throws smolvlm::Error.
  explicit MappedFile(const std::string& path, const std::string& kind = "model file");
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

// Makes `path` a file of `bytes` bytes that `fill` writes through a shared mapping (so the bytes
// go to the page cache, never to this process's anonymous memory), atomically: a temporary file
// beside it, renamed into place only when complete, so a concurrent reader sees the old file,
// the whole new one, or none. False, leaving nothing behind, where the file cannot be made (no
// directory, no space, read-only); `fill`'s exceptions propagate, after the same clean-up.
bool create_file_by_mapping(const std::string& path, size_t bytes,
                            const std::function<void(uint8_t*)>& fill);

// A whole outside file of at most max_bytes into memory (see InputFile); throws smolvlm::Error
// naming the file.
std::string read_file(const std::string& path, const std::string& kind, uint64_t max_bytes);

// read_file without a size limit, for files the program made or was shipped with (tests, tools).
inline std::string read_text_file(const std::string& path) {
  return read_file(path, "file", InputFile::kNoLimit);
}

}  // namespace smolvlm
