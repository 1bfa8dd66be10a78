// Google Benchmark micro suites for ProcessPool: round trip, burst, map, large messages, and the
// cost of a crash (a worker killed and replaced).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <csignal>
#include <numeric>
#include <vector>

#include "tandem/process_pool.hpp"
#include "tandem/thread_pool.hpp"

namespace {

void BM_ProcessPoolRoundTrip(benchmark::State& state) {
  tandem::ProcessPool pool(2);
  for (auto _ : state) benchmark::DoNotOptimize(pool.submit([] { return 1; }).get());
}
BENCHMARK(BM_ProcessPoolRoundTrip);

void BM_ProcessPoolSubmitBurstThenGet(benchmark::State& state) {
  tandem::ProcessPool pool(2);
  const auto tasks = static_cast<std::size_t>(state.range(0));
  std::vector<tandem::Future<int>> futures;
  futures.reserve(tasks);
  for (auto _ : state) {
    futures.clear();
    for (std::size_t i = 0; i < tasks; ++i) futures.push_back(pool.submit([](int x) { return x; }, 1));
    for (auto& f : futures) benchmark::DoNotOptimize(f.get());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_ProcessPoolSubmitBurstThenGet)->Arg(1'000)->Arg(20'000);

void BM_ProcessPoolMapTinyElements(benchmark::State& state) {
  tandem::ProcessPool pool(2);
  std::vector<int> input(static_cast<std::size_t>(state.range(0)));
  std::iota(input.begin(), input.end(), 0);
  for (auto _ : state) benchmark::DoNotOptimize(pool.map([](int x) { return x * 2; }, input));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_ProcessPoolMapTinyElements)->Arg(1'000)->Arg(1'000'000);

// A byte vector sent to a worker and returned: both directions, through the ring up to 512 KiB,
// through memory files of their own above. Bytes processed count both directions.
template <class Pool>
void BM_EchoLargeVector(benchmark::State& state) {
  Pool pool(1);
  const std::vector<std::uint8_t> payload(static_cast<std::size_t>(state.range(0)), 7);
  for (auto _ : state) {
    auto echoed = pool.submit([](std::vector<std::uint8_t> bytes) { return bytes; }, payload).get();
    benchmark::DoNotOptimize(echoed.data());
  }
  state.SetBytesProcessed(state.iterations() * state.range(0) * 2);
}
BENCHMARK(BM_EchoLargeVector<tandem::ProcessPool>)->Arg(64 << 10)->Arg(1 << 20)->Arg(16 << 20)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_EchoLargeVector<tandem::ThreadPool>)->Arg(64 << 10)->Arg(1 << 20)->Arg(16 << 20)->Unit(benchmark::kMicrosecond);

// The floor for the two above: the same bytes copied twice within one process.
void BM_EchoFloorTwoMemcpys(benchmark::State& state) {
  const std::vector<std::uint8_t> payload(static_cast<std::size_t>(state.range(0)), 7);
  for (auto _ : state) {
    std::vector<std::uint8_t> there(payload.size()), back(payload.size());
    std::memcpy(there.data(), payload.data(), payload.size());
    std::memcpy(back.data(), there.data(), there.size());
    benchmark::DoNotOptimize(back.data());
  }
  state.SetBytesProcessed(state.iterations() * state.range(0) * 2);
}
BENCHMARK(BM_EchoFloorTwoMemcpys)->Arg(64 << 10)->Arg(1 << 20)->Arg(16 << 20)->Unit(benchmark::kMicrosecond);

void BM_ProcessPoolCrashAndReplace(benchmark::State& state) {
  tandem::ProcessPool pool(1);
  for (auto _ : state) {
    auto crash = pool.submit([] {
      std::raise(SIGKILL);
      return 0;
    });
    crash.wait();
    benchmark::DoNotOptimize(pool.submit([] { return 1; }).get());
  }
}
BENCHMARK(BM_ProcessPoolCrashAndReplace)->Unit(benchmark::kMicrosecond);

}  // namespace
