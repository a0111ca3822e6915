#include "formats/mapped_file.h"

#include <fcntl.h>
#include <smolvlm/error.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <utility>
#include <vector>

namespace smolvlm {

namespace {
// Live mappings, so drop_mapped_pages can refuse anything else.
struct Registry {
  std::mutex mu;
  std::vector<std::pair<const uint8_t*, size_t>> ranges;
};
// Never destroyed: static objects (a cached model, say) may unmap their files after every
// function-local static is gone, and must still find it.
Registry& registry() {
  static Registry* r = new Registry;
  return *r;
}
void add_range(const uint8_t* p, size_t n) {
  std::lock_guard<std::mutex> lock(registry().mu);
  registry().ranges.emplace_back(p, n);
}
void remove_range(const uint8_t* p) {
  std::lock_guard<std::mutex> lock(registry().mu);
  auto& r = registry().ranges;
  for (size_t i = 0; i < r.size(); ++i) {
    if (r[i].first == p) {
      r.erase(r.begin() + static_cast<std::ptrdiff_t>(i));
      return;
    }
  }
}
}  // namespace

bool drop_mapped_pages(const void* p, size_t bytes) {
  const auto* b = static_cast<const uint8_t*>(p);
  std::lock_guard<std::mutex> lock(registry().mu);
  for (const auto& [start, size] : registry().ranges) {
    if (b < start || b + bytes > start + size) continue;
    const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    const uintptr_t lo = (reinterpret_cast<uintptr_t>(b) + page - 1) / page * page;
    const uintptr_t hi = (reinterpret_cast<uintptr_t>(b) + bytes) / page * page;
    if (lo < hi) ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
    return true;
  }
  return false;
}

MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot open '" + path + "': " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error("'" + path + "' is not a regular file");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      throw Error("cannot map '" + path + "': " + std::strerror(e));
    }
    data_ = static_cast<const uint8_t*>(p);
    add_range(data_, size_);
  }
  ::close(fd);  // the mapping keeps the file alive
}

MappedFile::~MappedFile() {
  if (data_) {
    remove_range(data_);
    ::munmap(const_cast<uint8_t*>(data_), size_);
  }
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      path_(std::move(other.path_)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    if (data_) {
      remove_range(data_);
      ::munmap(const_cast<uint8_t*>(data_), size_);
    }
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    path_ = std::move(other.path_);
  }
  return *this;
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open '" + path + "': " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error("cannot read '" + path + "'");
  return ss.str();
}

}  // namespace smolvlm
