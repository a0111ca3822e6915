#include "formats/output_file.h"

#include <fcntl.h>
#include <smolvlm/error.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "formats/mapped_file.h"

namespace smolvlm {

namespace fs = std::filesystem;

void check_output_path(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st) || fs::is_regular_file(st)) return;
  const char* what = fs::is_directory(st) ? "is a directory"
                     : fs::is_fifo(st)    ? "is a FIFO, not a regular file"
                     : fs::is_socket(st)  ? "is a socket, not a regular file"
                     : fs::is_character_file(st) || fs::is_block_file(st)
                         ? "is a device, not a regular file"
                         : "is not a regular file";
  throw Error("cannot write '" + one_line(path) + "': " + what);
}

OutputFile open_output_file(const std::string& path, bool append) {
  // O_NONBLOCK: opening a FIFO without a reader fails (ENXIO) instead of waiting for one.
  const int fd =
      ::open(path.c_str(),
             O_WRONLY | O_CREAT | O_NONBLOCK | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0644);
  if (fd < 0) {
    const int e = errno;
    check_output_path(path);  // names what is in the way, where that is the reason
    throw Error("cannot write '" + one_line(path) + "': " + std::strerror(e));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    check_output_path(path);
    throw Error("cannot write '" + one_line(path) + "': not a regular file");
  }
  // Writes to a regular file never block: the flag can go (it would be inherited otherwise).
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  std::FILE* f = ::fdopen(fd, append ? "ab" : "wb");
  if (!f) {
    const int e = errno;
    ::close(fd);
    throw Error("cannot write '" + one_line(path) + "': " + std::strerror(e));
  }
  return {f, &std::fclose};
}

}  // namespace smolvlm
