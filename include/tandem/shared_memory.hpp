// SharedMemory: bytes that several processes map, the counterpart of Python's
// multiprocessing.shared_memory.SharedMemory, usable between threads and processes alike.
//
//   tandem::SharedMemory memory(1 << 20);                          // anonymous, zero-filled
//   pool.submit([](tandem::SharedMemory m) { m.data()[0] = std::byte{1}; }, memory).get();
//
// A SharedMemory is a handle: copies refer to the same bytes, and the bytes stay mapped in a
// process as long as one of its copies lives. Passed to a Thread, a Process (any start method)
// or a pool task, as an argument or by inheritance, the other side sees the same bytes.
//
// Two kinds:
// - anonymous (`SharedMemory(bytes)`): a memory file with no name at all, so nothing can leak
//   into /dev/shm. Another process reaches it through the creating process (its descriptor under
//   /proc), so a copy must reach that process while some holder of the memory is still alive;
// - named (`SharedMemory::create(bytes, name)`, `SharedMemory::open(name)`): for programs that
//   are not related. The name is created exclusively with owner-only permissions, unpredictable
//   when left empty. The creator owns the name: it is removed when the creator's last copy goes,
//   or, should the creator die first (even by SIGKILL), by a small helper process that outlives
//   it. Those who opened it never remove it; their mapping stays valid after the name is gone.
//
// The pages are reserved at creation, so a full /dev/shm is a tandem::Error at once (with what
// is free in the message), not a SIGBUS later.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>

#include "tandem/detail/traveller.hpp"

namespace tandem {

namespace detail {
struct Segment;
struct SegmentAccess;
}

class SharedMemory {
 public:
  // Anonymous memory of `bytes` (> 0), zero-filled.
  explicit SharedMemory(std::size_t bytes);
  // Named memory of `bytes` (> 0), zero-filled. `name` ("/name" or "name", at most 250
  // characters, no other '/'); empty: an unpredictable one. tandem::Error if it exists already.
  static SharedMemory create(std::size_t bytes, std::string name = {});
  // Named memory that another process created; tandem::Error if there is none by that name.
  static SharedMemory open(std::string name);

  std::byte* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  std::span<std::byte> bytes() const noexcept { return {data_, size_}; }
  // "/name" for named memory, empty for anonymous.
  const std::string& name() const noexcept;
  // Whether this process created the memory (and, when named, removes its name).
  bool is_creator() const noexcept;

 private:
  friend struct detail::Traveller<SharedMemory>;
  friend struct detail::SegmentAccess;
  explicit SharedMemory(std::shared_ptr<detail::Segment> segment) noexcept;

  std::shared_ptr<detail::Segment> segment_;
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

namespace detail {
// What tandem's own objects need to know of a SharedMemory.
struct SegmentAccess {
  // Whether `memory` is the last handle of its bytes in this process: they are unmapped with it.
  static bool last_handle_here(const SharedMemory& memory) noexcept {
    return memory.segment_ && memory.segment_.use_count() == 1;
  }
};

template <>
struct Traveller<SharedMemory> {
  static void encode(ByteWriter& out, const SharedMemory& memory);
  static SharedMemory decode(ByteReader& in);
};
}  // namespace detail

}  // namespace tandem
