// Google Benchmark micro suites for the locks: uncontended and between two threads, tandem's
// robust process-shared Lock beside std::mutex. (Run alone, before any other thread exists,
// std::mutex takes glibc's single-threaded shortcut without atomics: see bench/compare.cpp.)
#include <benchmark/benchmark.h>

#include <mutex>

#include "tandem/lock.hpp"
#include "tandem/synchronized.hpp"

namespace {

template <class Mutex>
void BM_LockUnlock(benchmark::State& state) {
  static Mutex mutex;  // one per benchmark, shared by its threads
  for (auto _ : state) {
    mutex.lock();
    mutex.unlock();
  }
}
BENCHMARK(BM_LockUnlock<std::mutex>)->Threads(1)->Threads(2);
BENCHMARK(BM_LockUnlock<tandem::Lock>)->Threads(1)->Threads(2);
BENCHMARK(BM_LockUnlock<tandem::RLock>)->Threads(1);

void BM_SynchronizedWithLock(benchmark::State& state) {
  tandem::Synchronized<long> counter(0L);
  for (auto _ : state) counter.with_lock([](long& n) { ++n; });
  benchmark::DoNotOptimize(counter.copy());
}
BENCHMARK(BM_SynchronizedWithLock);

}  // namespace
