#include "formats/mapped_file.h"

#include <fcntl.h>
#include <smolvlm/error.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <mutex>
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

std::string one_line(const std::string& s) {
  std::string r = s.substr(0, kMaxOneLineBytes);
  for (char& c : r) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  if (s.size() > r.size()) r += "... (" + std::to_string(s.size()) + " bytes)";
  return r;
}

std::string format_bytes(uint64_t bytes) {
  static const char* const kUnits[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return std::to_string(bytes) + " bytes";
  double v = static_cast<double>(bytes);
  int unit = 0;
  while (v >= 1024 && unit < 6) {
    v /= 1024;
    ++unit;
  }
  char text[32];
  // One decimal below 10 ("1.5 GiB"), none where it says nothing ("256 MiB", "32 KiB").
  const bool decimal = v < 10 && v != std::floor(v);
  std::snprintf(text, sizeof text, decimal ? "%.1f %s" : "%.0f %s", v, kUnits[unit]);
  return text;
}

namespace {
const char* file_type_name(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a plain file";
}
}  // namespace

InputFile::InputFile(const std::string& path, const std::string& kind, uint64_t max_bytes)
    : path_(path), kind_(kind) {
  const std::string what = "cannot open " + kind + " '" + one_line(path) + "': ";
  // O_NONBLOCK: opening a FIFO would otherwise wait for a writer; it does nothing to regular
  // files, the only kind read on.
  fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd_ < 0) throw Error(what + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const int e = errno;
    ::close(fd_);
    throw Error(what + std::strerror(e));
  }
  std::string refusal;
  if (S_ISDIR(st.st_mode)) {
    refusal = "is a directory";
  } else if (!S_ISREG(st.st_mode)) {
    refusal = std::string("is ") + file_type_name(st.st_mode) + ", not a regular file";
  } else if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    refusal = "the file is " + format_bytes(static_cast<uint64_t>(st.st_size)) + ", over the " +
              format_bytes(max_bytes) + " limit for " + kind + "s";
  } else if (static_cast<uint64_t>(st.st_size) > std::numeric_limits<size_t>::max()) {
    refusal = "the file is too large to address";
  }
  if (!refusal.empty()) {
    ::close(fd_);
    throw Error(what + refusal);
  }
  size_ = static_cast<size_t>(st.st_size);
}

InputFile::~InputFile() { ::close(fd_); }

std::string InputFile::read_all() const {
  std::string bytes(size_, '\0');
  size_t got = 0;
  while (got < size_) {
    const ssize_t n = ::pread(fd_, bytes.data() + got, size_ - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      throw Error("cannot read " + kind_ + " '" + one_line(path_) + "': " + std::strerror(errno));
    }
    if (n == 0) {
      throw Error("cannot read " + kind_ + " '" + one_line(path_) +
                  "': it shrank while being read");
    }
    got += static_cast<size_t>(n);
  }
  return bytes;
}

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

MappedFile::MappedFile(const std::string& path, const std::string& kind) : path_(path) {
  const InputFile file(path, kind, InputFile::kNoLimit);
  size_ = file.size();
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, file.fd(), 0);
    if (p == MAP_FAILED) {
      throw Error("cannot map " + kind + " '" + one_line(path) + "': " + std::strerror(errno));
    }
    data_ = static_cast<const uint8_t*>(p);
    add_range(data_, size_);
  }
  // The mapping keeps the file alive once `file` closes it.
}

bool create_file_by_mapping(const std::string& path, size_t bytes,
                            const std::function<void(uint8_t*)>& fill) {
  std::string tmp = path + ".XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) return false;
  void* p = MAP_FAILED;
  bool made = false;
  try {
    if (bytes > 0 && ::posix_fallocate(fd, 0, static_cast<off_t>(bytes)) == 0) {
      p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      if (p != MAP_FAILED) {
        fill(static_cast<uint8_t*>(p));
        made = ::munmap(p, bytes) == 0;
        p = MAP_FAILED;
      }
    }
  } catch (...) {
    if (p != MAP_FAILED) ::munmap(p, bytes);
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  made = ::close(fd) == 0 && made && ::rename(tmp.c_str(), path.c_str()) == 0;
  if (!made) ::unlink(tmp.c_str());
  return made;
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

std::string read_file(const std::string& path, const std::string& kind, uint64_t max_bytes) {
  return InputFile(path, kind, max_bytes).read_all();
}

}  // namespace smolvlm
