// The shared-memory floors for Queue: a plain single-producer, single-consumer ring of 8-byte
// items between two processes (no encoding, no blocking, no multi-producer machinery: what any
// queue between processes must at least pay), and single-core memcpy.
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "peers.hpp"

namespace tandem::bench {
namespace {

constexpr std::uint64_t kRingItems = 1 << 16;  // 512 KiB of items, the size of tandem's default queue

struct Ring {
  alignas(64) std::atomic<std::uint64_t> tail{0};  // written by the producer
  alignas(64) std::atomic<std::uint64_t> head{0};  // written by the consumer
  alignas(64) std::uint64_t items[kRingItems];
};

}  // namespace

void pin_to_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  ::sched_setaffinity(0, sizeof set, &set);  // a CPU this machine lacks leaves the thread as it was
}

ScopedPin::ScopedPin(int cpu) : old_set_(sizeof(cpu_set_t)) {
  ::sched_getaffinity(0, sizeof(cpu_set_t), reinterpret_cast<cpu_set_t*>(old_set_.data()));
  pin_to_cpu(cpu);
}

ScopedPin::~ScopedPin() { ::sched_setaffinity(0, sizeof(cpu_set_t), reinterpret_cast<const cpu_set_t*>(old_set_.data())); }

double spsc_ring_seconds_per_item(std::uint64_t count) {
  const ScopedPin consumer_cpu(0);
  void* memory = ::mmap(nullptr, sizeof(Ring), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) std::abort();
  auto* ring = new (memory) Ring;
  const pid_t producer = ::fork();
  if (producer == 0) {
    pin_to_cpu(1);
    std::uint64_t head_seen = 0;
    for (std::uint64_t i = 0; i < count; ++i) {
      while (i - head_seen == kRingItems) head_seen = ring->head.load(std::memory_order_acquire);
      ring->items[i % kRingItems] = i;
      ring->tail.store(i + 1, std::memory_order_release);
    }
    ::_exit(0);
  }
  std::uint64_t tail_seen = 0, sum = 0;
  while (tail_seen == 0) tail_seen = ring->tail.load(std::memory_order_acquire);  // time from the first item
  const auto start = std::chrono::steady_clock::now();
  for (std::uint64_t i = 0; i < count; ++i) {
    while (i == tail_seen) tail_seen = ring->tail.load(std::memory_order_acquire);
    sum += ring->items[i % kRingItems];
    ring->head.store(i + 1, std::memory_order_release);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ::waitpid(producer, nullptr, 0);
  ::munmap(memory, sizeof(Ring));
  if (sum != count * (count - 1) / 2) std::abort();
  return seconds / static_cast<double>(count);
}

double memcpy_bytes_per_second(std::size_t item_bytes, std::size_t items) {
  // Source and destination far larger than the caches, walked in item-sized steps.
  const std::size_t span = std::size_t{64} << 20;
  std::vector<char> source(span, 1), destination(span);
  const auto start = std::chrono::steady_clock::now();
  std::size_t offset = 0;
  for (std::size_t i = 0; i < items; ++i) {
    std::memcpy(destination.data() + offset, source.data() + offset, item_bytes);
    offset = (offset + item_bytes) % (span - item_bytes);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (destination[item_bytes / 2] != 1) std::abort();
  return static_cast<double>(item_bytes * items) / seconds;
}

}  // namespace tandem::bench
