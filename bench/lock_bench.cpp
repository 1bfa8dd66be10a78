// Google Benchmark micro suites for the locks: uncontended and between two threads, tandem's
// robust process-shared Lock beside std::mutex, and what FairLock's arrival order costs next to
// a Lock. (Run alone, before any other thread exists, std::mutex takes glibc's single-threaded
// shortcut without atomics: see bench/compare.cpp.)
#include <benchmark/benchmark.h>

#include <mutex>

#include "tandem/fair_lock.hpp"
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
BENCHMARK(BM_LockUnlock<tandem::FairLock>)->Threads(1);

// Two threads taking turns on one lock around a tiny critical section, in lock+unlock pairs per
// second of wall time: a FairLock hands itself to the waiter every time, a Lock lets the
// running thread take it again.
template <class Mutex>
void BM_ContendedThroughput(benchmark::State& state) {
  static Mutex mutex;
  static long counter = 0;
  for (auto _ : state) {
    std::lock_guard guard(mutex);
    benchmark::DoNotOptimize(++counter);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ContendedThroughput<tandem::Lock>)->Threads(2)->UseRealTime();
BENCHMARK(BM_ContendedThroughput<tandem::FairLock>)->Threads(2)->UseRealTime();

void BM_SynchronizedWithLock(benchmark::State& state) {
  tandem::Synchronized<long> counter(0L);
  for (auto _ : state) counter.with_lock([](long& n) { ++n; });
  benchmark::DoNotOptimize(counter.copy());
}
BENCHMARK(BM_SynchronizedWithLock);

}  // namespace
