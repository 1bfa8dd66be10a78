// Google Benchmark micro suites for ProcessPool: round trip, burst, map, and the cost of a
// crash (a worker killed and replaced).
#include <benchmark/benchmark.h>

#include <csignal>
#include <numeric>
#include <vector>

#include "tandem/process_pool.hpp"

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
