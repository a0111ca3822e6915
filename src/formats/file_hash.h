// SHA-256 of a file's bytes: downloads are checked against the hub's LFS object ids, and the
// Scheduler keys a video's features by it.
#pragma once

#include <string>

namespace smolvlm {

// Hex SHA-256 of a file's bytes. Throws smolvlm::Error when it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace smolvlm
