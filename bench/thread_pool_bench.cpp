// Google Benchmark micro suites for ThreadPool: round trip, bursts, map, imap.
#include <benchmark/benchmark.h>

#include <numeric>
#include <vector>

#include "tandem/thread_pool.hpp"

namespace {

void BM_SubmitGetRoundTrip(benchmark::State& state) {
  tandem::ThreadPool pool(2);
  for (auto _ : state) benchmark::DoNotOptimize(pool.submit([] { return 1; }).get());
}
BENCHMARK(BM_SubmitGetRoundTrip);

void BM_SubmitBurstThenWaitAll(benchmark::State& state) {
  tandem::ThreadPool pool(2);
  const auto tasks = static_cast<std::size_t>(state.range(0));
  std::vector<tandem::Future<void>> futures;
  futures.reserve(tasks);
  for (auto _ : state) {
    futures.clear();
    for (std::size_t i = 0; i < tasks; ++i) futures.push_back(pool.submit([] {}));
    tandem::wait_all(futures);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_SubmitBurstThenWaitAll)->Arg(1'000)->Arg(100'000);

void BM_MapTinyElements(benchmark::State& state) {
  tandem::ThreadPool pool(2);
  std::vector<int> input(static_cast<std::size_t>(state.range(0)));
  std::iota(input.begin(), input.end(), 0);
  for (auto _ : state) benchmark::DoNotOptimize(pool.map([](int x) { return x * 2; }, input));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_MapTinyElements)->Arg(1'000)->Arg(1'000'000);

void BM_ImapChunked(benchmark::State& state) {
  tandem::ThreadPool pool(2);
  std::vector<int> input(100'000);
  std::iota(input.begin(), input.end(), 0);
  for (auto _ : state) {
    long sum = 0;
    for (int v : pool.imap([](int x) { return x + 1; }, input, static_cast<std::size_t>(state.range(0)))) sum += v;
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * 100'000);
}
BENCHMARK(BM_ImapChunked)->Arg(64)->Arg(1024);

}  // namespace

BENCHMARK_MAIN();
