// What the process holds in memory, as the operating system counts it.
#pragma once

#include <cstdint>

namespace smolvlm {

// The process's peak resident set size so far (getrusage), in bytes; 0 where it cannot be read.
int64_t peak_rss_bytes();

}  // namespace smolvlm
