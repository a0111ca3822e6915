#include "formats/file_hash.h"

#include <smolvlm/error.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "formats/mapped_file.h"
#include "util/sha256.h"

namespace smolvlm {

std::string sha256_file(const std::string& path) {
  // Through InputFile: a FIFO or a device where a download should be is refused, not waited on.
  const InputFile f(path, "file", InputFile::kNoLimit);
  Sha256 h;
  std::vector<char> buf(1 << 20);
  for (;;) {
    const ssize_t n = ::read(f.fd(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error("cannot read '" + path + "': " + std::strerror(errno));
    if (n == 0) break;
    h.update(buf.data(), static_cast<size_t>(n));
  }
  return h.hex_digest();
}

}  // namespace smolvlm
