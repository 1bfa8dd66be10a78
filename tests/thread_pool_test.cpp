#include "tandem/thread_pool.hpp"

#include <gtest/gtest.h>
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

TEST(ThreadPool, SubmitRunsTheCallableWithItsArguments) {
  tandem::ThreadPool pool(2);
  EXPECT_EQ(pool.size(), 2u);
  auto sum = pool.submit([](int a, int b) { return a + b; }, 2, 40);
  auto text = pool.submit([](const std::string& s) { return s + "!"; }, std::string("hi"));
  EXPECT_EQ(sum.get(), 42);
  EXPECT_EQ(text.get(), "hi!");
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

TEST(ThreadPool, ExceptionsReachGetWithTheirType) {
  tandem::ThreadPool pool(2);
  auto f = pool.submit([]() -> int { throw std::out_of_range("nope"); });
  EXPECT_THROW(f.get(), std::out_of_range);
  EXPECT_NE(f.exception(), nullptr);
}

TEST(ThreadPool, ZeroWorkersIsAClearError) {
  try {
    tandem::ThreadPool pool(0);
    FAIL() << "expected tandem::Error";
  } catch (const tandem::Error& e) {
    EXPECT_NE(std::string(e.what()).find("at least one worker"), std::string::npos) << e.what();
  }
}

TEST(ThreadPool, DefaultSizeIsTheUsableCpuCount) {
  tandem::ThreadPool pool;
  EXPECT_EQ(pool.size(), tandem::cpu_count());
  EXPECT_GE(tandem::cpu_count(), 1u);
  EXPECT_LE(tandem::cpu_count(), std::max(1u, std::thread::hardware_concurrency()));
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

TEST(ThreadPool, AFailingInitializerMakesConstructionThrow) {
  tandem::ThreadPoolOptions options;
  options.workers = 2;
  options.initializer = [] { throw std::runtime_error("no GPU here"); };
  EXPECT_THROW(tandem::ThreadPool pool(options), std::runtime_error);
}

TEST(ThreadPoolMap, ResultsComeInInputOrderForAnySizeAndChunking) {
  tandem::ThreadPool pool(2);
  for (int n : {0, 1, 7, 1000, 100'003}) {
    const auto input = iota_vector(n);
    for (std::size_t chunksize : {0u, 1u, 3u, 64u, 1'000'000u}) {
      const auto squares = pool.map([](int x) { return static_cast<long>(x) * x; }, input, chunksize);
      ASSERT_EQ(squares.size(), input.size());
      for (std::size_t i = 0; i < input.size(); ++i) ASSERT_EQ(squares[i], static_cast<long>(i) * static_cast<long>(i));
    }
  }
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

TEST(ThreadPoolMap, StarmapUnpacksTuples) {
  tandem::ThreadPool pool(2);
  std::vector<std::tuple<int, int>> pairs{{1, 2}, {3, 4}, {5, 6}};
  EXPECT_EQ(pool.starmap([](int a, int b) { return a * b; }, pairs), (std::vector<int>{2, 12, 30}));
  EXPECT_EQ(pool.starmap_for([](int a, int b) { return a + b; }, pairs, 5s), (std::vector<int>{3, 7, 11}));
}

TEST(ThreadPoolMap, MapForReturnsInTimeOrThrowsAndCancelsTheRest) {
  tandem::ThreadPool pool(2);
  EXPECT_EQ(pool.map_for([](int x) { return x + 1; }, iota_vector(3), 5s), (std::vector<int>{1, 2, 3}));
  std::atomic<int> ran{0};
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(pool.map_for(
                   [&](int x) {
                     ran++;
                     std::this_thread::sleep_for(10ms);
                     return x;
                   },
                   iota_vector(200), 30ms, 1),
               tandem::TimeoutError);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, 500ms) << "map_for waited for far more than the timeout plus one chunk";
  const int after_timeout = ran.load();
  EXPECT_LT(after_timeout, 200);
  std::this_thread::sleep_for(30ms);
  EXPECT_EQ(ran.load(), after_timeout) << "no chunk may start after map_for gave up";
}

TEST(ThreadPoolMap, MapForDoesNotWaitForRunnersQueuedBehindOtherWork) {
  tandem::ThreadPool pool(1);
  std::latch release(1);
  auto blocker = pool.submit([&] { release.wait(); });
  EXPECT_THROW(pool.map_for([](int x) { return x; }, iota_vector(10), 20ms), tandem::TimeoutError);
  release.count_down();
}

TEST(ThreadPoolImap, IsLazyOrderedAndReadsABoundedWindowOfAnEndlessRange) {
  tandem::ThreadPool pool(2);
  std::atomic<int> read{0};
  auto counted = std::views::iota(0) | std::views::transform([&read](int x) {
                   read++;
                   return x;
                 });
  int expected = 0;
  {
    auto stream = pool.imap([](int x) { return x * 3; }, counted, 4);
    for (int value : stream) {
      ASSERT_EQ(value, expected * 3);
      if (++expected == 50) break;
    }
  }
  EXPECT_EQ(expected, 50);
  const int window = static_cast<int>(tandem::detail::imap_window(pool.size())) * 4;
  EXPECT_LE(read.load(), 50 + window + 4) << "imap read too far ahead";
}

TEST(ThreadPoolImap, UnorderedYieldsEveryResultOnce) {
  tandem::ThreadPool pool(2);
  std::multiset<int> seen;
  for (int v : pool.imap_unordered(
           [](int x) {
             std::this_thread::sleep_for(std::chrono::microseconds((x * 37) % 200));
             return x;
           },
           iota_vector(300), 3)) {
    seen.insert(v);
  }
  std::multiset<int> expected;
  for (int i = 0; i < 300; ++i) expected.insert(i);
  EXPECT_EQ(seen, expected);
}

TEST(ThreadPoolImap, AnExceptionSurfacesAtItsElementAndIterationGoesOn) {
  tandem::ThreadPool pool(2);
  auto stream = pool.imap(
      [](int x) {
        if (x == 2) throw std::runtime_error("two");
        return x;
      },
      iota_vector(5));
  EXPECT_EQ(stream.next(), 0);
  EXPECT_EQ(stream.next(), 1);
  EXPECT_THROW(stream.next(), std::runtime_error);
  EXPECT_EQ(stream.next(), 3);
  EXPECT_EQ(stream.next(), 4);
  EXPECT_EQ(stream.next(), std::nullopt);
}

TEST(ThreadPoolImap, NextForTimesOut) {
  tandem::ThreadPool pool(1);
  std::latch release(1);
  auto stream = pool.imap(
      [&](int x) {
        release.wait();
        return x;
      },
      iota_vector(2));
  EXPECT_THROW(stream.next_for(20ms), tandem::TimeoutError);
  release.count_down();
  EXPECT_EQ(stream.next_for(5s), 0);
}

TEST(ThreadPoolCancel, APendingTaskNeverRuns) {
  tandem::ThreadPool pool(1);
  std::latch release(1);
  auto blocker = pool.submit([&] { release.wait(); });
  std::atomic<bool> ran{false};
  auto victim = pool.submit([&] { ran = true; });
  EXPECT_TRUE(victim.cancel());
  release.count_down();
  blocker.get();
  EXPECT_THROW(victim.get(), tandem::CancelledError);
  pool.submit([] {}).get();  // the queue has moved past the victim
  EXPECT_FALSE(ran.load());
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

TEST(ThreadPoolShutdown, SubmitAfterShutdownThrowsPoolClosed) {
  tandem::ThreadPool pool(2);
  pool.shutdown();
  EXPECT_TRUE(pool.closed());
  EXPECT_THROW(pool.submit([] {}), tandem::PoolClosed);
  EXPECT_THROW(pool.map([](int x) { return x; }, iota_vector(10)), tandem::PoolClosed);
  EXPECT_NO_THROW(pool.shutdown()) << "shutdown is idempotent";
}

TEST(ThreadPoolShutdown, WaitRunsEverythingAlreadySubmitted) {
  tandem::ThreadPool pool(2);
  std::atomic<int> ran{0};
  std::vector<tandem::Future<void>> futures;
  for (int i = 0; i < 200; ++i) {
    futures.push_back(pool.submit([&] {
      std::this_thread::sleep_for(50us);
      ran++;
    }));
  }
  pool.shutdown(true);
  EXPECT_EQ(ran.load(), 200);
  for (auto& f : futures) EXPECT_NO_THROW(f.get());
}

TEST(ThreadPoolShutdown, CancelPendingCancelsQueuedTasksWhileBusy) {
  tandem::ThreadPool pool(1);
  std::latch started(1), release(1);
  auto running = pool.submit([&] {
    started.count_down();
    release.wait();
    return 1;
  });
  started.wait();
  std::vector<tandem::Future<int>> queued;
  for (int i = 0; i < 50; ++i) queued.push_back(pool.submit([] { return 2; }));
  pool.shutdown(false, true);
  release.count_down();
  EXPECT_EQ(running.get(), 1) << "the running task finishes";
  for (auto& f : queued) EXPECT_THROW(f.get(), tandem::CancelledError);
}

TEST(ThreadPoolShutdown, TasksMayFanOutWhileThePoolDrains) {
  tandem::ThreadPool pool(2);
  std::latch release(1);
  auto parent = pool.submit([&] {
    release.wait();
    return pool.submit([] { return 7; }).get();
  });
  pool.shutdown(false);
  release.count_down();
  EXPECT_EQ(parent.get_for(10s), 7);
}

TEST(ThreadPoolShutdown, ShutdownForGivesUpOnBusyWorkersAndSucceedsLater) {
  tandem::ThreadPool pool(1);
  std::latch release(1);
  auto busy = pool.submit([&] { release.wait(); });
  EXPECT_FALSE(pool.shutdown_for(20ms));
  EXPECT_TRUE(pool.closed());
  EXPECT_THROW(pool.submit([] {}), tandem::PoolClosed);
  release.count_down();
  EXPECT_TRUE(pool.shutdown_for(5s));
  EXPECT_NO_THROW(busy.get());
}

TEST(ThreadPoolShutdown, DestructorRunsPendingTasks) {
  std::atomic<int> ran{0};
  {
    tandem::ThreadPool pool(1);
    for (int i = 0; i < 100; ++i) pool.submit([&] { ran++; });
  }
  EXPECT_EQ(ran.load(), 100);
}

TEST(ThreadPoolShutdown, ShutdownFromInsideATaskWithWaitIsAnError) {
  tandem::ThreadPool pool(2);
  auto f = pool.submit([&] { pool.shutdown(true); });
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
  std::latch release(1);
  auto blocker = pool.submit([&] { release.wait(); });
  std::vector<tandem::Future<int>> futures;
  for (int i = 0; i < 10'000; ++i) futures.push_back(pool.submit([] { return 1; }));
  pool.shutdown(false, true);
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
