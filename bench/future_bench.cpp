// Google Benchmark micro suites for Future and Promise, without a pool.
#include <benchmark/benchmark.h>

#include "tandem/future.hpp"

namespace {

void BM_PromiseSetThenGet(benchmark::State& state) {
  for (auto _ : state) {
    tandem::Promise<int> promise;
    auto future = promise.get_future();
    promise.set_value(1);
    benchmark::DoNotOptimize(future.get());
  }
}
BENCHMARK(BM_PromiseSetThenGet);

void BM_ThenChainOfThree(benchmark::State& state) {
  for (auto _ : state) {
    tandem::Promise<int> promise;
    auto last = promise.get_future().then([](int v) { return v + 1; }).then([](int v) { return v + 1; }).then([](int v) {
      return v + 1;
    });
    promise.set_value(0);
    benchmark::DoNotOptimize(last.get());
  }
}
BENCHMARK(BM_ThenChainOfThree);

}  // namespace
