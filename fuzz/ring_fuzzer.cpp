// The ring a pool and a worker share (src/ipc/byte_ring.hpp), with every shared word and every byte
// chosen by the fuzzer, as a task that scribbles over its worker's memory could: reading it must
// stay inside the ring, end, and report what makes no sense as corrupt.
//
// Input: [head: 8][tail: 8][ring bytes ...] (the ring is 4 KiB; missing bytes are zero).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "ipc/byte_ring.hpp"

namespace {
constexpr std::size_t kCapacity = 4096;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using tandem::detail::ByteRing;
  if (size < 16) return 0;
  std::uint64_t head = 0, tail = 0;
  std::memcpy(&head, data, 8);
  std::memcpy(&tail, data + 8, 8);
  // Exactly the ring's bytes, so that AddressSanitizer sees any read past them.
  std::vector<std::byte> bytes(kCapacity);
  std::memcpy(bytes.data(), data + 16, std::min(size - 16, kCapacity));

  // The consumer's view: its own position starts where the (scribbled) shared word says.
  tandem::detail::RingControl control;
  control.head.store(head);
  control.tail.store(tail);
  ByteRing consumer(&control, bytes.data(), kCapacity);
  std::uint64_t sum = 0;
  for (int i = 0; i < 64; ++i) {
    std::span<const std::byte> message;
    if (consumer.peek(message) != ByteRing::Peek::message) break;
    for (const std::byte b : message) sum += static_cast<std::uint8_t>(b);
    consumer.pop();
  }
  // The producer's view, with the consumer's position scribbled: it writes only inside the ring.
  tandem::detail::RingControl fresh;
  ByteRing producer(&fresh, bytes.data(), kCapacity);
  fresh.tail.store(tail);
  for (std::size_t n : {std::size_t{1}, std::size_t{100}, std::size_t{2000}, head % 3000}) {
    std::byte* at = nullptr;
    if (producer.reserve(n, at) != ByteRing::Room::ok) break;
    std::memset(at, 0x5a, n);
    producer.commit();
  }
  return static_cast<int>(sum & 0);
}
