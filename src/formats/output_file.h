// Files the program writes (downloads, converted models, generated model folders) get the care
// outside inputs get: a FIFO where an output goes must not block the program, and a directory of
// the output's name is found before the work, not after it.
#pragma once

#include <cstdio>
#include <memory>
#include <string>

namespace smolvlm {

// Throws smolvlm::Error "cannot write 'PATH': is a directory" (or a FIFO, a device, a socket)
// when `path` exists and is not a regular file; a link to a regular file is fine.
void check_output_path(const std::string& path);

using OutputFile = std::unique_ptr<std::FILE, int (*)(std::FILE*)>;

// `path` opened for writing, appending or truncated, without blocking (a FIFO is refused, not
// waited on) and only as a regular file. Throws smolvlm::Error naming the file.
OutputFile open_output_file(const std::string& path, bool append = false);

}  // namespace smolvlm
