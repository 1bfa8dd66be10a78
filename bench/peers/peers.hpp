// The contenders tandem is measured against, each doing exactly the work of its tandem
// counterpart in bench/compare.cpp, with two threads in total.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace tandem::bench {

// 1M-style burst: `tasks` empty tasks submitted from the calling thread, then wait for all.
// Return seconds.
double tbb_task_group_burst(std::size_t tasks);
double asio_thread_pool_burst(std::size_t tasks);
double naive_pool_burst(std::size_t tasks);

// out[i] = in[i] * 2 for every element into a freshly allocated vector; returns seconds.
double tbb_parallel_for_map(const std::vector<int>& in, bool preallocated_output);

// A plain SPSC ring of 8-byte items in shared memory, producer in a forked child: seconds per item.
double spsc_ring_seconds_per_item(std::uint64_t count);
// Binds the calling thread to one CPU (where the machine has it; a no-op otherwise), so that a
// producer and a consumer of the queue rows run on two cores in every round, floor and tandem
// alike. The scoped form gives the thread its old set back.
void pin_to_cpu(int cpu);
class ScopedPin {
 public:
  explicit ScopedPin(int cpu);
  ~ScopedPin();
  ScopedPin(const ScopedPin&) = delete;
  ScopedPin& operator=(const ScopedPin&) = delete;

 private:
  std::vector<unsigned char> old_set_;
};
// Single-core memcpy of `items` blocks of `item_bytes`, outside the caches: bytes per second.
double memcpy_bytes_per_second(std::size_t item_bytes, std::size_t items);

// Blocking round trip between two threads through a futex (no spinning): seconds per trip.
double futex_round_trip(std::size_t trips);

}  // namespace tandem::bench
