// Google Benchmark micro suites for Queue: put + get by one thread (the cost of the calls
// themselves), and items streamed from a producer thread to the benchmark thread.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "tandem/queue.hpp"

namespace {

void BM_QueuePutGetOneThread(benchmark::State& state) {
  tandem::Queue<std::uint64_t> queue;
  std::uint64_t i = 0;
  for (auto _ : state) {
    queue.put(i++);
    benchmark::DoNotOptimize(queue.get());
  }
}
BENCHMARK(BM_QueuePutGetOneThread);

// Items of state.range(0) bytes from a producer thread; throughput in items and bytes.
void BM_QueueStreamFromAThread(benchmark::State& state) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  const std::vector<char> item(bytes, 'x');
  constexpr int kBatch = 10'000;
  tandem::Queue<std::vector<char>> queue;  // made once: making one maps and zero-fills 1 MiB
  for (auto _ : state) {
    std::thread producer([queue, &item]() mutable {
      for (int i = 0; i < kBatch; ++i) queue.put(item);
    });
    for (int i = 0; i < kBatch; ++i) benchmark::DoNotOptimize(queue.get());
    producer.join();
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.SetBytesProcessed(state.iterations() * kBatch * static_cast<std::int64_t>(bytes));
}
BENCHMARK(BM_QueueStreamFromAThread)->Arg(8)->Arg(256)->Arg(64 << 10)->UseRealTime();

}  // namespace
