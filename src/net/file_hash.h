// SHA-256 of a downloaded file, for checking it against the hub's LFS object id.
#pragma once

#include <string>

namespace smolvlm::net {

// Hex SHA-256 of a file's bytes. Throws smolvlm::Error when it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace smolvlm::net
