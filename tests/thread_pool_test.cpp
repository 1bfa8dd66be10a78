#include "tandem/thread_pool.hpp"

#include "tandem/event.hpp"

#include <gtest/gtest.h>

// What only a ThreadPool does (or checks only threads allow). The behaviour it shares with
// ProcessPool is tested once for both in pool_test.cpp.
#include <pthread.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <latch>
#include <list>
#include <memory>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

using namespace std::chrono_literals;

namespace {

#ifdef TANDEM_UNDER_TSAN
constexpr int kStressTasks = 100'000;
#else
constexpr int kStressTasks = 1'000'000;
#endif

int fib(tandem::ThreadPool& pool, int n) {
  if (n < 2) return n;
  auto left = pool.submit([&pool, n] { return fib(pool, n - 1); });
  const int right = fib(pool, n - 2);
  return left.get() + right;
}

std::vector<int> iota_vector(int n) {
  std::vector<int> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

TEST(ThreadPool, TasksRunOnWorkerThreadsNamedAfterThePool) {
  tandem::ThreadPoolOptions options;
  options.workers = 2;
  options.name = "crunch";
  tandem::ThreadPool pool(options);
  auto name = pool.submit([] {
    char buffer[16] = {};
    pthread_getname_np(pthread_self(), buffer, sizeof buffer);
    return std::string(buffer);
  });
  EXPECT_EQ(name.get().rfind("crunch-", 0), 0u) << name.get();
  EXPECT_NE(pool.submit([] { return std::this_thread::get_id(); }).get(), std::this_thread::get_id());
}

TEST(ThreadPool, MoveOnlyCallablesAndArguments) {
  tandem::ThreadPool pool(2);
  auto owned = std::make_unique<int>(5);
  auto f = pool.submit([p = std::move(owned)](std::unique_ptr<int> q) { return *p + *q; }, std::make_unique<int>(6));
  EXPECT_EQ(f.get(), 11);
}

TEST(ThreadPool, InitializerRunsOnceOnEveryWorker) {
  std::mutex mutex;
  std::set<std::thread::id> initialized;
  tandem::ThreadPoolOptions options;
  options.workers = 3;
  options.initializer = [&] {
    std::lock_guard lock(mutex);
    initialized.insert(std::this_thread::get_id());
  };
  tandem::ThreadPool pool(options);
  EXPECT_EQ(initialized.size(), 3u);
  const auto worker = pool.submit([] { return std::this_thread::get_id(); }).get();
  EXPECT_EQ(initialized.count(worker), 1u);
}

TEST(ThreadPoolMap, AcceptsNonRandomAccessRangesAndAnyResultType) {
  tandem::ThreadPool pool(2);
  std::list<int> numbers{1, 2, 3, 4};
  EXPECT_EQ(pool.map([](int x) { return x % 2 == 0; }, numbers), (std::vector<bool>{false, true, false, true}));
  struct NoDefault {
    explicit NoDefault(int v) : value(v) {}
    int value;
  };
  const auto wrapped = pool.map([](int x) { return NoDefault(x); }, numbers);
  EXPECT_EQ(wrapped[3].value, 4);
  EXPECT_EQ(pool.map([](int x) { return x; }, std::views::iota(0, 5)), (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(ThreadPoolMap, VoidFunctionsVisitEveryElementOnce) {
  tandem::ThreadPool pool(2);
  std::vector<std::atomic<int>> visits(10'000);
  pool.map([&](int i) { visits[static_cast<std::size_t>(i)]++; }, iota_vector(10'000));
  for (auto& v : visits) ASSERT_EQ(v.load(), 1);
}

TEST(ThreadPoolMap, TheFirstExceptionStopsTheRestAndIsRethrown) {
  tandem::ThreadPool pool(2);
  std::atomic<int> ran{0};
  const auto input = iota_vector(1000);
  EXPECT_THROW(pool.map(
                   [&](int x) {
                     ran++;
                     if (x == 0) throw std::invalid_argument("element 0");
                     std::this_thread::sleep_for(1ms);
                     return x;
                   },
                   input, 1),
               std::invalid_argument);
  EXPECT_LT(ran.load(), 100) << "chunks after the failure should have been skipped";
}

// Returns the distinct threads that ran the elements of a map over `pool`.
std::set<std::thread::id> map_threads(tandem::ThreadPool& pool) {
  std::mutex mutex;
  std::set<std::thread::id> threads;
  pool.map(
      [&](int) {
        std::this_thread::sleep_for(200us);  // long enough for every thread to take part
        std::lock_guard lock(mutex);
        threads.insert(std::this_thread::get_id());
      },
      iota_vector(200), 1);
  return threads;
}

TEST(ThreadPoolMap, APoolOfNRunsAMapOnAtMostNThreads) {
  for (std::size_t workers : {2u, 3u}) {
    tandem::ThreadPool pool(workers);
    EXPECT_LE(map_threads(pool).size(), workers);
  }
}

TEST(ThreadPoolMap, AOneWorkerPoolRunsAMapOnItsWorkerOnly) {
  tandem::ThreadPool pool(1);
  const auto worker = pool.submit([] { return std::this_thread::get_id(); }).get();
  EXPECT_EQ(map_threads(pool), std::set<std::thread::id>{worker});
}

TEST(ThreadPoolMap, APoolWithAnInitializerRunsAMapOnInitializedWorkersOnly) {
  std::mutex mutex;
  std::set<std::thread::id> initialized;
  tandem::ThreadPoolOptions options;
  options.workers = 2;
  options.initializer = [&] {
    std::lock_guard lock(mutex);
    initialized.insert(std::this_thread::get_id());
  };
  tandem::ThreadPool pool(options);
  for (const auto& id : map_threads(pool)) EXPECT_EQ(initialized.count(id), 1u) << "ran on an uninitialized thread";
}

TEST(ThreadPoolMap, MapForDoesNotWaitForRunnersQueuedBehindOtherWork) {
  tandem::ThreadPool pool(1);
  std::latch release(1);
  auto blocker = pool.submit([&] { release.wait(); });
  EXPECT_THROW(pool.map_for([](int x) { return x; }, iota_vector(10), 20ms), tandem::TimeoutError);
  release.count_down();
}

TEST(ThreadPoolCancel, ARunningTaskSeesItsStopToken) {
  tandem::ThreadPool pool(1);
  std::atomic<bool> started{false};
  auto task = pool.submit([&](std::stop_token stop) {
    started = true;
    while (!stop.stop_requested()) std::this_thread::sleep_for(100us);
    return std::string("stopped");
  });
  while (!started) std::this_thread::sleep_for(100us);
  EXPECT_TRUE(task.running());
  EXPECT_FALSE(task.cancel()) << "a running task is asked to stop, not cancelled";
  EXPECT_EQ(task.get_for(5s), "stopped");
}

TEST(ThreadPoolNesting, RecursiveSubmissionNeverDeadlocks) {
  for (std::size_t workers : {1u, 2u}) {
    tandem::ThreadPool pool(workers);
    EXPECT_EQ(fib(pool, 18), 2584) << workers << " workers";
  }
}

TEST(ThreadPoolNesting, MapInsideATaskOfTheSamePool) {
  tandem::ThreadPool pool(1);
  auto outer = pool.submit([&pool] {
    const auto inner = pool.map([](int x) { return x + 1; }, iota_vector(100));
    return std::accumulate(inner.begin(), inner.end(), 0);
  });
  EXPECT_EQ(outer.get_for(10s), 5050);
}

TEST(ThreadPoolNesting, WaitAnyInsideATaskHelps) {
  tandem::ThreadPool pool(1);
  auto outer = pool.submit([&pool] {
    std::vector<tandem::Future<int>> inner{pool.submit([] { return 1; }), pool.submit([] { return 2; })};
    tandem::wait_all(inner);
    return inner[tandem::wait_any(inner)].get();
  });
  EXPECT_GE(outer.get_for(10s), 1);
}

// A worker blocked in a wait other than on a future runs nothing else meanwhile: a task queued
// behind a blocked one stays queued (here it would block on top of the first, which could then
// never be released: Python's test_concurrent_futures has this case).
TEST(ThreadPoolNesting, ATaskBlockedOnAnEventDoesNotRunTheTaskQueuedBehindIt) {
  tandem::ThreadPool pool(1);
  tandem::Event go, done;
  auto first = pool.submit([go, done]() mutable {
    go.wait();
    done.set();
  });
  auto second = pool.submit([done]() mutable { return done.wait_for(10s); });
  std::this_thread::sleep_for(20ms);  // the worker is blocked in go.wait()
  EXPECT_FALSE(second.running()) << "the worker ran the second task on top of the blocked first";
  go.set();
  const bool in_time = first.wait_for(5s);
  EXPECT_TRUE(in_time) << "the first task could not finish";
  if (!in_time) done.set();  // unwind, so that the failure does not hang the test
  EXPECT_TRUE(second.get_for(15s));
}

// A worker waiting on a future of its own pool runs that future's task if nobody has started it:
// the very work it waits for, so nested submission cannot deadlock even with one worker.
TEST(ThreadPoolNesting, AWaiterRunsOnlyTheTaskItWaitsFor) {
  tandem::ThreadPool pool(1);
  tandem::Event never;
  auto outer = pool.submit([&pool, never] {
    auto awaited = pool.submit([] { return 7; });
    auto unrelated = pool.submit([never]() mutable { return never.wait_for(2s); });
    const int value = awaited.get();
    return std::make_pair(value, unrelated.running() || unrelated.done());
  });
  const auto [value, ran_unrelated] = outer.get_for(10s);
  EXPECT_EQ(value, 7);
  EXPECT_FALSE(ran_unrelated) << "the waiter ran a task it does not wait for";
  never.set();
}

// Destroying a pool from one of its own tasks: the pool stops taking work, the task and those
// already queued finish, and its threads end on their own (a defined detach, not std::terminate).
TEST(ThreadPoolShutdown, APoolDestroyedFromItsOwnTaskDetachesAndDrains) {
  std::atomic<int> ran{0};
  auto pool = std::make_unique<tandem::ThreadPool>(2);
  tandem::Event release;
  std::vector<tandem::Future<void>> queued;
  for (int i = 0; i < 20; ++i) queued.push_back(pool->submit([&ran, release]() mutable {
    release.wait();
    ran++;
  }));
  auto killer = pool->submit([&pool] { pool.reset(); });
  release.set();
  EXPECT_NO_THROW(killer.get_for(10s));
  for (auto& f : queued) EXPECT_NO_THROW(f.get_for(10s));
  EXPECT_EQ(ran.load(), 20);
  EXPECT_EQ(pool, nullptr);
}

// map_for's deadline holds even when the calling thread would take part: it returns at the
// deadline (TimeoutError) while slow chunks still run, and they touch nothing of the caller's.
TEST(ThreadPoolMap, MapForHoldsItsDeadlineWhileChunksAreStillRunning) {
  tandem::ThreadPool pool(2);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(pool.map_for(
                   [](int x) {
                     std::this_thread::sleep_for(400ms);
                     return x;
                   },
                   iota_vector(4), 100ms, 1),
               tandem::TimeoutError);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, 300ms) << "map_for returned after "
                         << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms";
  // The pool still works, and the chunks that were running end without touching freed memory
  // (ASan would report it).
  EXPECT_EQ(pool.map([](int x) { return x + 1; }, iota_vector(3)), (std::vector<int>{1, 2, 3}));
}

// A map_for nested in a task of a one-worker pool: its runners queue behind the task itself, so
// the task runs the chunks (between deadline checks) rather than time out waiting for them.
TEST(ThreadPoolNesting, MapForInsideATaskOfTheSamePool) {
  tandem::ThreadPool pool(1);
  auto outer = pool.submit([&pool] {
    const auto inner = pool.map_for([](int x) { return x + 1; }, iota_vector(100), 10s);
    return std::accumulate(inner.begin(), inner.end(), 0);
  });
  EXPECT_EQ(outer.get_for(10s), 5050);
}

TEST(ThreadPoolShutdown, TasksMayFanOutWhileThePoolDrains) {
  tandem::ThreadPool pool(2);
  std::latch release(1);
  auto parent = pool.submit([&] {
    release.wait();
    return pool.submit([] { return 7; }).get();
  });
  pool.shutdown({.wait = false});
  release.count_down();
  EXPECT_EQ(parent.get_for(10s), 7);
}

TEST(ThreadPoolShutdown, ShutdownFromInsideATaskWithWaitIsAnError) {
  tandem::ThreadPool pool(2);
  auto f = pool.submit([&] { pool.shutdown(); });
  EXPECT_THROW(f.get(), tandem::Error);
}

TEST(ThreadPoolStress, TasksQueuedBeyondTheInjectionRingAllRunInOrder) {
  tandem::ThreadPool pool(1);
  std::latch release(1);
  auto blocker = pool.submit([&] { release.wait(); });
  std::vector<int> order;
  std::vector<tandem::Future<void>> futures;
  for (int i = 0; i < 20'000; ++i) futures.push_back(pool.submit([&order, i] { order.push_back(i); }));
  release.count_down();
  tandem::wait_all(futures);
  ASSERT_EQ(order.size(), 20'000u);
  EXPECT_TRUE(std::is_sorted(order.begin(), order.end())) << "one worker runs outside submissions first-in first-out";
}

TEST(ThreadPoolStress, CancelPendingReachesTasksBeyondTheInjectionRing) {
  tandem::ThreadPool pool(1);
  std::latch started(1), release(1);
  auto blocker = pool.submit([&] {
    started.count_down();
    release.wait();
  });
  // The worker must be inside the blocker: were the blocker still queued, the cancel would skip
  // it and the worker could start the next tasks while the cancel is still walking the queue.
  started.wait();
  std::vector<tandem::Future<int>> futures;
  for (int i = 0; i < 10'000; ++i) futures.push_back(pool.submit([] { return 1; }));
  pool.shutdown({.wait = false, .cancel_pending = true});
  release.count_down();
  for (auto& f : futures) EXPECT_THROW(f.get(), tandem::CancelledError);
}

TEST(ThreadPoolStress, AMillionTasksFromOutsideAllRun) {
  tandem::ThreadPool pool(2);
  std::atomic<long> sum{0};
  std::vector<tandem::Future<void>> futures;
  futures.reserve(kStressTasks);
  for (int i = 0; i < kStressTasks; ++i) {
    futures.push_back(pool.submit([&sum, i] { sum.fetch_add(i, std::memory_order_relaxed); }));
  }
  tandem::wait_all(futures);
  EXPECT_EQ(sum.load(), static_cast<long>(kStressTasks) * (kStressTasks - 1) / 2);
}

TEST(ThreadPoolStress, ConcurrentSubmittersAndStealing) {
  tandem::ThreadPool pool(3);
  constexpr int kPerThread = kStressTasks / 10;
  std::atomic<long> count{0};
  std::vector<std::jthread> submitters;
  for (int t = 0; t < 4; ++t) {
    submitters.emplace_back([&] {
      std::vector<tandem::Future<int>> futures;
      for (int i = 0; i < kPerThread; ++i) futures.push_back(pool.submit([&count] { return static_cast<int>(++count); }));
      for (auto& f : futures) ASSERT_GT(f.get(), 0);
    });
  }
  submitters.clear();
  EXPECT_EQ(count.load(), 4L * kPerThread);
}

TEST(ThreadPoolIdle, AnIdlePoolUsesAlmostNoCpu) {
  tandem::ThreadPool pool(2);
  for (int i = 0; i < 1000; ++i) pool.submit([] {}).get();
  std::this_thread::sleep_for(20ms);  // past the spin budget: workers are asleep
  const double before = process_cpu_seconds();
  std::this_thread::sleep_for(300ms);
  const double used = process_cpu_seconds() - before;
  EXPECT_LT(used / 0.3, 0.02) << "idle workers burned " << used * 1000 << " ms of CPU in 300 ms";
}

}  // namespace

namespace {

// then(f) runs f on whichever thread completes the future; then(executor, f) runs it as a task
// of the executor, so that a continuation never runs on a thread that holds what it needs.
TEST(ThreadPoolThen, AContinuationGivenAnExecutorRunsThereNotOnTheCompletingThread) {
  tandem::ThreadPool executor(1);
  const auto pool_thread = executor.submit([] { return std::this_thread::get_id(); }).get();
  tandem::Promise<int> promise;
  auto future = promise.get_future();
  auto inline_on = future.then([](int) { return std::this_thread::get_id(); });
  auto on_pool = future.then(executor, [](int v) { return std::make_pair(v * 2, std::this_thread::get_id()); });
  promise.set_value(21);  // completed here, on this thread
  EXPECT_EQ(inline_on.get(), std::this_thread::get_id()) << "inline: on the completing thread";
  const auto [value, ran_on] = on_pool.get();
  EXPECT_EQ(value, 42);
  EXPECT_EQ(ran_on, pool_thread) << "on the executor's worker";

  tandem::Promise<int> failing;
  auto skipped = failing.get_future().then(executor, [](int v) { return v; });
  failing.set_exception(std::make_exception_ptr(std::runtime_error("no value")));
  EXPECT_THROW(skipped.get(), std::runtime_error) << "the error passes on, as with then(f)";

  tandem::Promise<int> late;
  auto refused = late.get_future().then(executor, [](int v) { return v; });
  executor.shutdown();
  late.set_value(1);
  EXPECT_THROW(refused.get(), tandem::PoolClosed) << "a closed executor refuses the continuation";
}

}  // namespace
