// SHA-256 (FIPS 180-4): downloads are checked against the hub's LFS object ids, and pictures
// are keyed by it in the Scheduler's feature cache.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace smolvlm {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  std::string hex_digest();  // finishes; lower-case hex

 private:
  void block(const uint8_t* p);
  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buf_{};
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

}  // namespace smolvlm
