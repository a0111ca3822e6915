#include "kernels/workspace.h"

#include <algorithm>
#include <cstring>

namespace smolvlm::kernels {

void Scratch::grow(Buffer& b, size_t bytes) {
  // At least half as much again: a buffer asked for slowly rising sizes (attention's scores as
  // the context grows) reallocates a logarithmic number of times, not once a token.
  const size_t want = std::max(bytes, b.bytes + b.bytes / 2);
  const size_t size = (want + kAlign - 1) / kAlign * kAlign;
  std::unique_ptr<std::byte[], Free> data(new (std::align_val_t{kAlign}) std::byte[size]);
  if (b.bytes) std::memcpy(data.get(), b.data.get(), b.bytes);
  std::memset(data.get() + b.bytes, 0, size - b.bytes);
  b.data = std::move(data);
  b.bytes = size;
}

}  // namespace smolvlm::kernels
