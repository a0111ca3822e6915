// The kernels' scratch memory, owned by the Compute context that runs them (no hidden
// per-thread buffers): a few growable buffers per pool participant and a shared set that the
// calling thread fills for the others to read. A buffer grows to the largest size a call has
// asked of it and keeps it, so a steady state (a token loop) allocates nothing.
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>
#include <vector>

namespace smolvlm::kernels {

// The buffers one function uses for its temporaries, numbered (slots) by that function. A buffer
// is 64-byte aligned; growing it keeps what it held and zeroes the rest, as std::vector::resize.
class Scratch {
 public:
  static constexpr int kSlots = 6;
  static constexpr size_t kAlign = 64;

  // Room for `count` values of T in buffer `slot`; valid until that slot is asked for more.
  template <class T>
  T* get(int slot, size_t count) {
    static_assert(std::is_trivially_copyable_v<T> && alignof(T) <= kAlign);
    Buffer& b = buffers_[static_cast<size_t>(slot)];
    if (count * sizeof(T) > b.bytes) grow(b, count * sizeof(T));
    return std::launder(reinterpret_cast<T*>(b.data.get()));
  }

 private:
  struct Free {
    void operator()(std::byte* p) const { ::operator delete[](p, std::align_val_t{kAlign}); }
  };
  struct Buffer {
    std::unique_ptr<std::byte[], Free> data;
    size_t bytes = 0;
  };
  static void grow(Buffer& b, size_t bytes);
  std::array<Buffer, kSlots> buffers_;
};

// One Scratch pair per pool participant (0 the calling thread, 1 … the pool's threads, as
// ThreadPool::parallel_for numbers them) and a shared Scratch. `op` is for the kernel entry
// points (kernels.cpp), `path` for the path kernel an entry point calls: each numbers its own
// slots without knowing the other's.
class Workspace {
 public:
  struct alignas(64) Participant {
    Scratch op;
    Scratch path;
  };
  explicit Workspace(int participants) : participants_(static_cast<size_t>(participants)) {}

  Participant& participant(int index) { return participants_[static_cast<size_t>(index)]; }
  // Filled by the calling thread before a parallel loop, read by every participant in it (the
  // quantised activation rows, say).
  Scratch& shared() { return shared_; }

 private:
  std::vector<Participant> participants_;
  Scratch shared_;
};

}  // namespace smolvlm::kernels
