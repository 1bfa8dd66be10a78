// Every blocking call of tandem in its three forms, op(), op_for(duration) and op_until(time
// point of any clock), held to one rule for what a timeout does (docs/blocking_calls.md):
// acquiring and waiting return false, getting a value throws TimeoutError, a barrier breaks.
// One typed suite: each subject below is one call on one object, with what lets it succeed.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <limits>
#include <memory>
#include <thread>
#include <vector>

#include "tandem/barrier.hpp"
#include "tandem/condition.hpp"
#include "tandem/detail/deadline.hpp"
#include "tandem/event.hpp"
#include "tandem/fair_lock.hpp"
#include "tandem/future.hpp"
#include "tandem/lock.hpp"
#include "tandem/pipe.hpp"
#include "tandem/process.hpp"
#include "tandem/process_pool.hpp"
#include "tandem/queue.hpp"
#include "tandem/semaphore.hpp"
#include "tandem/synchronized.hpp"
#include "tandem/thread.hpp"
#include "tandem/thread_pool.hpp"

namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;
using SystemClock = std::chrono::system_clock;

enum class OnTimeout { returns_false, throws_timeout, breaks_barrier };

// An agent that holds a lock-like object until released, as another owner would.
template <class Lockable>
class Holder {
 public:
  explicit Holder(Lockable& lockable) {
    thread_ = std::thread([this, &lockable] {
      lockable.lock();
      held_ = true;
      held_.notify_one();
      release_.wait(false);
      lockable.unlock();
    });
    held_.wait(false);
  }
  ~Holder() {
    release();
    thread_.join();
  }
  void release() {
    release_ = true;
    release_.notify_one();
  }

 private:
  std::atomic<bool> held_{false};
  std::atomic<bool> release_{false};
  std::thread thread_;
};

struct EventWait {
  static constexpr OnTimeout kOnTimeout = OnTimeout::returns_false;
  tandem::Event event;
  bool call() { return event.wait(), true; }
  bool call_for(auto timeout) { return event.wait_for(timeout); }
  bool call_until(auto deadline) { return event.wait_until(deadline); }
  void release() { event.set(); }
};

struct BarrierWait {
  static constexpr OnTimeout kOnTimeout = OnTimeout::breaks_barrier;
  tandem::Barrier barrier{2};
  std::vector<std::thread> others;
  ~BarrierWait() {
    for (auto& other : others) other.join();
  }
  bool call() { return barrier.wait() < 2; }
  bool call_for(auto timeout) { return barrier.wait_for(timeout) < 2; }
  bool call_until(auto deadline) { return barrier.wait_until(deadline) < 2; }
  void release() {
    others.emplace_back([barrier = barrier]() mutable {
      try {
        barrier.wait_for(10s);
      } catch (const tandem::BrokenBarrier&) {
        // The test's own wait failed first; it reports that.
      }
    });
  }
};

struct ThreadJoin {
  static constexpr OnTimeout kOnTimeout = OnTimeout::returns_false;
  tandem::Event go;
  tandem::Thread thread{[](tandem::Event event) { event.wait(); }, go};
  ThreadJoin() { thread.start(); }
  ~ThreadJoin() {
    go.set();
    if (thread.is_alive()) thread.join();
  }
  bool call() { return thread.join(), true; }
  bool call_for(auto timeout) { return thread.join_for(timeout); }
  bool call_until(auto deadline) { return thread.join_until(deadline); }
  void release() { go.set(); }
};

struct ProcessJoin {
  static constexpr OnTimeout kOnTimeout = OnTimeout::returns_false;
  tandem::Event go;
  tandem::Process process{[](tandem::Event event) { event.wait(); }, go};
  ProcessJoin() { process.start(); }
  ~ProcessJoin() {
    go.set();
    if (process.is_alive()) process.join();
  }
  bool call() { return process.join(), true; }
  bool call_for(auto timeout) { return process.join_for(timeout); }
  bool call_until(auto deadline) { return process.join_until(deadline); }
  void release() { go.set(); }
};

struct ConditionWait {
  static constexpr OnTimeout kOnTimeout = OnTimeout::returns_false;
  tandem::Condition condition;
  std::atomic<bool> ready{false};
  bool is_ready() { return ready.load(); }
  bool call() {
    std::unique_lock hold(condition);
    condition.wait([this] { return is_ready(); });
    return true;
  }
  bool call_for(auto timeout) {
    std::unique_lock hold(condition);
    return condition.wait_for(timeout, [this] { return is_ready(); });
  }
  bool call_until(auto deadline) {
    std::unique_lock hold(condition);
    return condition.wait_until(deadline, [this] { return is_ready(); });
  }
  void release() {
    std::unique_lock hold(condition);
    ready.store(true);
    condition.notify_all();
  }
};

// A lock-like call: try_lock_for / try_lock_until while another agent holds it.
template <class Lockable, class Call>
struct HeldByAnother {
  static constexpr OnTimeout kOnTimeout = OnTimeout::returns_false;
  Lockable lockable;
  std::unique_ptr<Holder<Lockable>> holder = std::make_unique<Holder<Lockable>>(lockable);
  bool taken = false;
  ~HeldByAnother() {
    holder.reset();
    if (taken) lockable.unlock();
  }
  bool call() { return Call::untimed(lockable), taken = true; }
  bool call_for(auto timeout) { return taken = Call::timed_for(lockable, timeout); }
  bool call_until(auto deadline) { return taken = Call::timed_until(lockable, deadline); }
  void release() { holder->release(); }
};
struct TryLock {
  static void untimed(auto& lockable) { lockable.lock(); }
  static bool timed_for(auto& lockable, auto timeout) { return lockable.try_lock_for(timeout); }
  static bool timed_until(auto& lockable, auto deadline) { return lockable.try_lock_until(deadline); }
};
struct TryAcquire {
  static void untimed(auto& semaphore) { semaphore.acquire(); }
  static bool timed_for(auto& semaphore, auto timeout) { return semaphore.try_acquire_for(timeout); }
  static bool timed_until(auto& semaphore, auto deadline) { return semaphore.try_acquire_until(deadline); }
};
using LockTryLock = HeldByAnother<tandem::Lock, TryLock>;
using RLockTryLock = HeldByAnother<tandem::RLock, TryLock>;
using FairLockTryLock = HeldByAnother<tandem::FairLock, TryLock>;
using SemaphoreAcquire = HeldByAnother<tandem::Semaphore, TryAcquire>;
using BoundedSemaphoreAcquire = HeldByAnother<tandem::BoundedSemaphore, TryAcquire>;

struct SynchronizedLock {
  static constexpr OnTimeout kOnTimeout = OnTimeout::returns_false;
  tandem::Synchronized<int> data{0};
  tandem::Event go, held;
  tandem::Thread holder{[](tandem::Synchronized<int> shared, tandem::Event release, tandem::Event taken) {
                          auto locked = shared.lock();
                          taken.set();
                          release.wait();
                        },
                        data, go, held};
  SynchronizedLock() {
    holder.start();
    held.wait();
  }
  ~SynchronizedLock() {
    go.set();
    holder.join();
  }
  bool call() { return static_cast<void>(data.lock()), true; }
  bool call_for(auto timeout) { return data.try_lock_for(timeout).has_value(); }
  bool call_until(auto deadline) { return data.try_lock_until(deadline).has_value(); }
  void release() { go.set(); }
};

struct QueueGet {
  static constexpr OnTimeout kOnTimeout = OnTimeout::throws_timeout;
  tandem::Queue<int> queue;
  bool call() { return queue.get() == 7; }
  bool call_for(auto timeout) { return queue.get_for(timeout) == 7; }
  bool call_until(auto deadline) { return queue.get_until(deadline) == 7; }
  void release() { queue.put(7); }
};

struct QueuePut {
  static constexpr OnTimeout kOnTimeout = OnTimeout::throws_timeout;
  tandem::Queue<int> queue{tandem::QueueOptions{.maxsize = 1}};
  QueuePut() { queue.put(1); }
  bool call() { return queue.put(2), true; }
  bool call_for(auto timeout) { return queue.put_for(2, timeout), true; }
  bool call_until(auto deadline) { return queue.put_until(2, deadline), true; }
  void release() { queue.get(); }
};

struct JoinableQueueJoin {
  static constexpr OnTimeout kOnTimeout = OnTimeout::returns_false;
  tandem::JoinableQueue<int> queue;
  JoinableQueueJoin() {
    queue.put(1);
    queue.get();
  }
  bool call() { return queue.join(), true; }
  bool call_for(auto timeout) { return queue.join_for(timeout); }
  bool call_until(auto deadline) { return queue.join_until(deadline); }
  void release() { queue.task_done(); }
};

struct PipeRecv {
  static constexpr OnTimeout kOnTimeout = OnTimeout::throws_timeout;
  tandem::Pipe<int> pipe;
  bool call() { return pipe.first.recv() == 3; }
  bool call_for(auto timeout) { return pipe.first.recv_for(timeout) == 3; }
  bool call_until(auto deadline) { return pipe.first.recv_until(deadline) == 3; }
  void release() { pipe.second.send(3); }
};

struct PipeSend {
  static constexpr OnTimeout kOnTimeout = OnTimeout::throws_timeout;
  tandem::Pipe<int> pipe{true, tandem::QueueOptions{.maxsize = 1}};
  PipeSend() { pipe.first.send(1); }
  bool call() { return pipe.first.send(2), true; }
  bool call_for(auto timeout) { return pipe.first.send_for(2, timeout), true; }
  bool call_until(auto deadline) { return pipe.first.send_until(2, deadline), true; }
  void release() { pipe.second.recv(); }
};

struct FutureGet {
  static constexpr OnTimeout kOnTimeout = OnTimeout::throws_timeout;
  tandem::Promise<int> promise;
  tandem::Future<int> future = promise.get_future();
  bool call() { return future.get() == 5; }
  bool call_for(auto timeout) { return future.get_for(timeout) == 5; }
  bool call_until(auto deadline) { return future.get_until(deadline) == 5; }
  void release() { promise.set_value(5); }
};

struct FutureWait {
  static constexpr OnTimeout kOnTimeout = OnTimeout::returns_false;
  tandem::Promise<int> promise;
  tandem::Future<int> future = promise.get_future();
  bool call() { return future.wait(), true; }
  bool call_for(auto timeout) { return future.wait_for(timeout); }
  bool call_until(auto deadline) { return future.wait_until(deadline); }
  void release() { promise.set_value(5); }
};

struct FutureException {
  static constexpr OnTimeout kOnTimeout = OnTimeout::throws_timeout;
  tandem::Promise<int> promise;
  tandem::Future<int> future = promise.get_future();
  bool call() { return future.exception() == nullptr; }
  bool call_for(auto timeout) { return future.exception_for(timeout) == nullptr; }
  bool call_until(auto deadline) { return future.exception_until(deadline) == nullptr; }
  void release() { promise.set_value(5); }
};

struct WaitAll {
  static constexpr OnTimeout kOnTimeout = OnTimeout::returns_false;
  tandem::Promise<int> first, second;
  std::vector<tandem::Future<int>> futures{first.get_future(), second.get_future()};
  WaitAll() { first.set_value(1); }
  bool call() { return tandem::wait_all(futures), true; }
  bool call_for(auto timeout) { return tandem::wait_all_for(futures, timeout); }
  bool call_until(auto deadline) { return tandem::wait_all_until(futures, deadline); }
  void release() { second.set_value(2); }
};

struct WaitAny {
  static constexpr OnTimeout kOnTimeout = OnTimeout::returns_false;
  tandem::Promise<int> first, second;
  std::vector<tandem::Future<int>> futures{first.get_future(), second.get_future()};
  bool call() { return tandem::wait_any(futures) == 1; }
  bool call_for(auto timeout) { return tandem::wait_any_for(futures, timeout) == std::optional<std::size_t>(1); }
  bool call_until(auto deadline) { return tandem::wait_any_until(futures, deadline) == std::optional<std::size_t>(1); }
  void release() { second.set_value(2); }
};

struct AsCompletedNext {
  static constexpr OnTimeout kOnTimeout = OnTimeout::throws_timeout;
  tandem::Promise<int> promise;
  std::vector<tandem::Future<int>> futures{promise.get_future()};
  bool call() { return tandem::as_completed(futures).next()->get() == 4; }
  bool call_for(auto timeout) { return tandem::as_completed(futures, timeout).next()->get() == 4; }
  bool call_until(auto deadline) { return tandem::as_completed(futures, deadline).next()->get() == 4; }
  void release() { promise.set_value(4); }
};

int wait_then_double(tandem::Event go, int x) {
  go.wait();
  return 2 * x;
}

// A pool's blocking calls over tasks that wait for `go`.
template <class Pool>
struct PoolMap {
  static constexpr OnTimeout kOnTimeout = OnTimeout::throws_timeout;
  tandem::Event go;
  Pool pool{2};
  std::vector<int> input{1, 2, 3};
  ~PoolMap() { go.set(); }
  bool call() { return map(pool.map(task(), input)); }
  bool call_for(auto timeout) { return map(pool.map_for(task(), input, timeout)); }
  bool call_until(auto deadline) { return map(pool.map_until(task(), input, deadline)); }
  void release() { go.set(); }
  auto task() { return tandem::partial(&wait_then_double, go); }
  static bool map(const std::vector<int>& out) { return out == std::vector<int>{2, 4, 6}; }
};

template <class Pool>
struct PoolImapNext {
  static constexpr OnTimeout kOnTimeout = OnTimeout::throws_timeout;
  tandem::Event go;
  Pool pool{2};
  std::vector<int> input{1, 2, 3};
  ~PoolImapNext() { go.set(); }
  bool call() { return pool.imap(tandem::partial(&wait_then_double, go), input).next() == 2; }
  bool call_for(auto timeout) { return pool.imap(tandem::partial(&wait_then_double, go), input).next_for(timeout) == 2; }
  bool call_until(auto deadline) {
    return pool.imap(tandem::partial(&wait_then_double, go), input).next_until(deadline) == 2;
  }
  void release() { go.set(); }
};

template <class Pool>
struct PoolShutdown {
  static constexpr OnTimeout kOnTimeout = OnTimeout::returns_false;
  tandem::Event go;
  Pool pool{1};
  tandem::Future<int> running = pool.submit(tandem::partial(&wait_then_double, go), 1);
  ~PoolShutdown() { go.set(); }
  bool call() { return pool.shutdown(), true; }
  bool call_for(auto timeout) { return pool.shutdown_for(timeout); }
  bool call_until(auto deadline) { return pool.shutdown_until(deadline); }
  void release() { go.set(); }
};

template <class Subject>
class BlockingCall : public ::testing::Test {};

using Subjects = ::testing::Types<
    EventWait, BarrierWait, ThreadJoin, ProcessJoin, ConditionWait, LockTryLock, RLockTryLock, FairLockTryLock,
    SemaphoreAcquire, BoundedSemaphoreAcquire, SynchronizedLock, QueueGet, QueuePut, JoinableQueueJoin, PipeRecv,
    PipeSend, FutureGet, FutureWait, FutureException, WaitAll, WaitAny, AsCompletedNext, PoolMap<tandem::ThreadPool>,
    PoolMap<tandem::ProcessPool>, PoolImapNext<tandem::ThreadPool>, PoolImapNext<tandem::ProcessPool>,
    PoolShutdown<tandem::ThreadPool>, PoolShutdown<tandem::ProcessPool>>;
TYPED_TEST_SUITE(BlockingCall, Subjects);

// Runs `call` on a subject nobody releases and checks that it ends as the rule says for its kind.
template <class Subject, class Call>
void expect_timeout_outcome(Subject& subject, Call call) {
  switch (Subject::kOnTimeout) {
    case OnTimeout::returns_false:
      EXPECT_FALSE(call(subject));
      break;
    case OnTimeout::throws_timeout:
      EXPECT_THROW(call(subject), tandem::TimeoutError);
      break;
    case OnTimeout::breaks_barrier:
      try {
        call(subject);
        ADD_FAILURE() << "a barrier wait that timed out returned";
      } catch (const tandem::BrokenBarrier& e) {
        EXPECT_NE(std::string(e.what()).find("timed out"), std::string::npos) << e.what();
      }
      break;
  }
}

template <class Subject, class Call>
void expect_times_out_after(std::chrono::milliseconds at_least, Call call) {
  Subject subject;
  const auto start = SteadyClock::now();
  expect_timeout_outcome(subject, call);
  const auto waited = SteadyClock::now() - start;
  EXPECT_GE(waited, at_least);
  EXPECT_LT(waited, at_least + 10s);
}

TYPED_TEST(BlockingCall, TheTimedFormsEndByTheirDeadlineAsTheRuleSays) {
  expect_times_out_after<TypeParam>(40ms, [](TypeParam& s) { return s.call_for(40ms); });
  expect_times_out_after<TypeParam>(40ms, [](TypeParam& s) { return s.call_for(std::chrono::duration<double>(0.04)); });
  expect_times_out_after<TypeParam>(40ms, [](TypeParam& s) { return s.call_until(SteadyClock::now() + 40ms); });
  // Another clock's deadline is measured from that clock's now.
  expect_times_out_after<TypeParam>(30ms, [](TypeParam& s) { return s.call_until(SystemClock::now() + 40ms); });
}

TYPED_TEST(BlockingCall, ATimeoutInThePastOrNegativeDoesNotWait) {
  expect_times_out_after<TypeParam>(0ms, [](TypeParam& s) { return s.call_for(0s); });
  expect_times_out_after<TypeParam>(0ms, [](TypeParam& s) { return s.call_for(-1h); });
  expect_times_out_after<TypeParam>(0ms, [](TypeParam& s) { return s.call_for(std::chrono::seconds::min()); });
  expect_times_out_after<TypeParam>(0ms, [](TypeParam& s) {
    return s.call_for(std::chrono::duration<double>(std::numeric_limits<double>::quiet_NaN()));
  });
  expect_times_out_after<TypeParam>(0ms, [](TypeParam& s) { return s.call_until(SteadyClock::now() - 1s); });
  expect_times_out_after<TypeParam>(0ms, [](TypeParam& s) { return s.call_until(SystemClock::time_point::min()); });
  expect_times_out_after<TypeParam>(0ms, [](TypeParam& s) { return s.call_until(SteadyClock::time_point::min()); });
}

// Released from another thread after a moment, the call must succeed however the limit is said.
template <class Subject, class Call>
void expect_succeeds_when_released(Call call) {
  Subject subject;
  std::thread releaser([&subject] {
    std::this_thread::sleep_for(30ms);
    subject.release();
  });
  EXPECT_TRUE(call(subject));
  releaser.join();
}

TYPED_TEST(BlockingCall, ALimitTooFarToRepresentWaitsInsteadOfOverflowing) {
  // Each of these overflowed a steady-clock time point when added to now.
  expect_succeeds_when_released<TypeParam>([](TypeParam& s) { return s.call_for(std::chrono::seconds::max()); });
  expect_succeeds_when_released<TypeParam>([](TypeParam& s) { return s.call_for(std::chrono::hours::max()); });
  expect_succeeds_when_released<TypeParam>([](TypeParam& s) { return s.call_for(std::chrono::duration<double>(1e300)); });
  expect_succeeds_when_released<TypeParam>([](TypeParam& s) { return s.call_until(SystemClock::time_point::max()); });
  expect_succeeds_when_released<TypeParam>([](TypeParam& s) {
    return s.call_until(std::chrono::time_point<SteadyClock, std::chrono::hours>::max());
  });
}

TYPED_TEST(BlockingCall, TheUntimedAndTimedFormsSucceedOnceReleased) {
  expect_succeeds_when_released<TypeParam>([](TypeParam& s) { return s.call(); });
  expect_succeeds_when_released<TypeParam>([](TypeParam& s) { return s.call_for(10s); });
  expect_succeeds_when_released<TypeParam>([](TypeParam& s) { return s.call_until(SteadyClock::now() + 10s); });
  expect_succeeds_when_released<TypeParam>([](TypeParam& s) { return s.call_until(SystemClock::now() + 10s); });
}

TEST(Deadline, SaturatesInsteadOfOverflowing) {
  using tandem::detail::deadline_after;
  using tandem::detail::deadline_at;
  const auto max = SteadyClock::time_point::max();
  EXPECT_EQ(deadline_after(std::chrono::seconds::max()), max);
  EXPECT_EQ(deadline_after(std::chrono::nanoseconds::max()), max);
  EXPECT_EQ(deadline_after(std::chrono::duration<double>(std::numeric_limits<double>::infinity())), max);
  EXPECT_EQ(deadline_at(SystemClock::time_point::max()), max);
  EXPECT_EQ(deadline_at(std::chrono::time_point<SteadyClock, std::chrono::seconds>::max()), max);
  EXPECT_EQ(deadline_at(std::chrono::time_point<SteadyClock, std::chrono::seconds>::min()), SteadyClock::time_point::min());
  EXPECT_LE(deadline_at(SystemClock::time_point::min()), SteadyClock::now());

  const auto before = SteadyClock::now();
  const auto negative = deadline_after(-1s);
  EXPECT_GE(negative, before);
  EXPECT_LE(negative, SteadyClock::now());
  const auto in_a_second = deadline_after(1s);
  EXPECT_GE(in_a_second, before + 1s);
  EXPECT_LE(in_a_second, SteadyClock::now() + 1s);
  // A duration finer than the clock's rounds up, so a wait never ends before its timeout.
  const auto fine = deadline_after(std::chrono::duration<std::int64_t, std::pico>(1500));
  EXPECT_GE(fine, before + 2ns);
  const auto steady = SteadyClock::now() + 5s;
  EXPECT_EQ(deadline_at(steady), steady);
  EXPECT_EQ(deadline_at(std::chrono::time_point_cast<std::chrono::milliseconds>(steady)),
            std::chrono::time_point_cast<std::chrono::milliseconds>(steady));
}

TEST(Deadline, ATaskTimeoutIsATimeoutError) {
  static_assert(std::is_base_of_v<tandem::TimeoutError, tandem::TaskTimeout>);
  tandem::ProcessPool pool(tandem::ProcessPoolOptions{.workers = 1, .task_timeout = 50ms});
  tandem::Event never;
  EXPECT_THROW(pool.submit(tandem::partial(&wait_then_double, never), 1).get(), tandem::TimeoutError);
}

}  // namespace
