// Lock and RLock: one suite, every agent kind. Mutual exclusion, timeouts, and a holder that
// dies (a thread that ends, a process killed by SIGKILL) reported as OwnerDied, never a hang.
#include "tandem/lock.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "agent_kinds.hpp"
#include "shared_board.hpp"
#include "tandem/error.hpp"
#include "tandem/semaphore.hpp"
#include "tandem/shared_memory.hpp"

using namespace std::chrono_literals;

namespace {

#ifdef TANDEM_UNDER_TSAN
constexpr int kIncrements = 2'000;
#else
constexpr int kIncrements = 20'000;
#endif

// What the agents and the test share: a plain counter (the lock makes it exact) and flags.
struct Board {
  long counter;
  std::atomic<int> holding;
  std::atomic<int> release;
  std::atomic<int> arrived;  // agents wait for each other, so that they contend
};

Board& board(const tandem::SharedMemory& memory) { return test_support::board<Board>(memory); }
tandem::SharedMemory make_board() { return test_support::make_board<Board>(); }

// Takes the lock, says so, and dies holding it: a process by SIGKILL, a thread by returning.
template <class L>
void die_holding(L lock, tandem::SharedMemory memory, bool is_process) {
  lock.lock();
  board(memory).holding.store(1);
  std::this_thread::sleep_for(50ms);
  if (is_process) ::raise(SIGKILL);
}

// Holds the lock until the test says release.
template <class L>
void hold_until_released(L lock, tandem::SharedMemory memory) {
  std::lock_guard guard(lock);
  board(memory).holding.store(1);
  while (board(memory).release.load() == 0) std::this_thread::sleep_for(1ms);
}

void wait_until_holding(const tandem::SharedMemory& memory) {
  while (board(memory).holding.load() == 0) std::this_thread::sleep_for(1ms);
}

template <class L>
class LockAcrossAgents : public ::testing::TestWithParam<AgentKind> {
 protected:
  void mutual_exclusion() {
    L lock;
    auto memory = make_board();
    TestAgent first(GetParam(), test_support::increment_under_lock<Board, L>, lock, memory, kIncrements);
    TestAgent second(GetParam(), test_support::increment_under_lock<Board, L>, lock, memory, kIncrements);
    test_support::increment_under_lock<Board>(lock, memory, kIncrements);
    first.join();
    second.join();
    EXPECT_EQ(board(memory).counter, 3L * kIncrements);
  }

  void holder_death_is_reported_to_a_waiting_locker() {
    L lock;
    auto memory = make_board();
    const bool is_process = GetParam() != AgentKind::thread;
    TestAgent holder(GetParam(), die_holding<L>, lock, memory, is_process);
    wait_until_holding(memory);
    EXPECT_THROW(lock.try_lock_for(10s), tandem::OwnerDied);  // blocked until the holder died
    holder.join();
    // The caller holds the lock now; once marked consistent it is an ordinary lock again.
    lock.mark_consistent();
    lock.unlock();
    ASSERT_TRUE(lock.try_lock_for(1s));
    lock.unlock();
    EXPECT_TRUE(lock.try_lock());
    lock.unlock();
  }

  void unrepaired_lock_is_unrecoverable() {
    L lock;
    auto memory = make_board();
    TestAgent holder(GetParam(), die_holding<L>, lock, memory, GetParam() != AgentKind::thread);
    holder.join();
    EXPECT_THROW(lock.lock(), tandem::OwnerDied);
    lock.unlock();  // without mark_consistent
    EXPECT_THROW(lock.lock(), tandem::LockUnrecoverable);
    EXPECT_THROW(lock.try_lock(), tandem::LockUnrecoverable);
  }

  void timeouts() {
    L lock;
    auto memory = make_board();
    TestAgent holder(GetParam(), hold_until_released<L>, lock, memory);
    wait_until_holding(memory);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_FALSE(lock.try_lock_for(60ms));
    EXPECT_GE(std::chrono::steady_clock::now() - start, 60ms);
    EXPECT_FALSE(lock.try_lock());
    EXPECT_FALSE(lock.try_lock_until(std::chrono::system_clock::now() + 10ms));
    board(memory).release.store(1);
    EXPECT_TRUE(lock.try_lock_for(10s));
    lock.unlock();
    holder.join();
  }
};

using LockTest = LockAcrossAgents<tandem::Lock>;
using RLockTest = LockAcrossAgents<tandem::RLock>;

TEST_P(LockTest, MutualExclusion) { mutual_exclusion(); }
TEST_P(LockTest, HolderDeathIsReportedToAWaitingLocker) { holder_death_is_reported_to_a_waiting_locker(); }
TEST_P(LockTest, UnrepairedLockIsUnrecoverable) { unrepaired_lock_is_unrecoverable(); }
TEST_P(LockTest, Timeouts) { timeouts(); }
TEST_P(RLockTest, MutualExclusion) { mutual_exclusion(); }
TEST_P(RLockTest, HolderDeathIsReportedToAWaitingLocker) { holder_death_is_reported_to_a_waiting_locker(); }
TEST_P(RLockTest, UnrepairedLockIsUnrecoverable) { unrepaired_lock_is_unrecoverable(); }
TEST_P(RLockTest, Timeouts) { timeouts(); }

INSTANTIATE_TEST_SUITE_P(EachAgent, LockTest, ::testing::ValuesIn(kAllAgentKinds), agent_kind_name);
INSTANTIATE_TEST_SUITE_P(EachAgent, RLockTest, ::testing::ValuesIn(kAllAgentKinds), agent_kind_name);

TEST(Lock, RelockingOrUnlockingWhatOneDoesNotHoldIsAnErrorNotAHang) {
#ifdef TANDEM_UNDER_TSAN
  GTEST_SKIP() << "ThreadSanitizer reports this misuse itself before tandem can";
#endif
  tandem::Lock lock;
  EXPECT_THROW(lock.unlock(), tandem::Error);
  lock.lock();
  EXPECT_THROW(lock.lock(), tandem::Error);
  std::thread other([&lock] { EXPECT_THROW(lock.unlock(), tandem::Error); });
  other.join();
  lock.unlock();
}

// Python's acquire(blocking=False) on a Lock its thread holds answers False; only a blocking
// lock(), which would wait for ever, is an error.
TEST(Lock, ATryOnALockTheCallerHoldsIsFalseNotAnError) {
  tandem::Lock lock;
  lock.lock();
  EXPECT_FALSE(lock.try_lock());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(lock.try_lock_for(10s));
  EXPECT_FALSE(lock.try_lock_until(std::chrono::system_clock::now() + 10s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s) << "waiting cannot change the answer";
  lock.unlock();
  EXPECT_TRUE(lock.try_lock());
  lock.unlock();
}

TEST(Lock, LockedTellsWhetherAnyAgentHoldsIt) {
  tandem::Lock lock;
  EXPECT_FALSE(lock.locked());
  lock.lock();
  EXPECT_TRUE(lock.locked());
  tandem::Process other([](tandem::Lock seen) { std::exit(seen.locked() ? 0 : 1); }, lock);
  other.start();
  other.join();
  EXPECT_EQ(other.exitcode(), 0) << "another process sees it held";
  lock.unlock();
  EXPECT_FALSE(lock.locked());
  tandem::RLock reentrant;
  reentrant.lock();
  reentrant.lock();
  reentrant.unlock();
  EXPECT_TRUE(reentrant.locked()) << "held once more";
  reentrant.unlock();
  EXPECT_FALSE(reentrant.locked());
}

TEST(Lock, CopiesAreTheSameLock) {
  tandem::Lock lock;
  tandem::Lock copy = lock;
  copy.lock();
  std::thread other([&lock] { EXPECT_FALSE(lock.try_lock()); });
  other.join();
  copy.unlock();
}

TEST(Lock, ScopedLockOfSeveralLocks) {
  tandem::Lock a, b;
  {
    std::scoped_lock both(a, b);
    std::thread other([&] { EXPECT_FALSE(b.try_lock()); });
    other.join();
  }
  EXPECT_TRUE(a.try_lock());
  a.unlock();
}

TEST(RLock, TheHolderMayTakeItAgain) {
  tandem::RLock lock;
  lock.lock();
  lock.lock();
  EXPECT_TRUE(lock.try_lock());
  std::thread other([&lock] { EXPECT_FALSE(lock.try_lock()); });
  other.join();
  lock.unlock();
  lock.unlock();
  lock.unlock();
  std::thread after([&lock] {
    EXPECT_TRUE(lock.try_lock());
    lock.unlock();
  });
  after.join();
#ifndef TANDEM_UNDER_TSAN  // which reports the misuse itself before tandem can
  EXPECT_THROW(lock.unlock(), tandem::Error);
#endif
}

// Destroying the last handle of a lock the thread holds is a misuse, and a defined one: tandem
// releases it and says so on stderr. (Before, the thread's robust-mutex list kept pointing into
// the unmapped lock, and a later, unrelated semaphore on this thread called std::terminate.)
TEST(Lock, DestroyingAHeldLockReleasesItAndReportsTheMisuse) {
  testing::internal::CaptureStderr();
  {
    tandem::Lock held("forgotten");
    held.lock();
    tandem::RLock twice;
    twice.lock();
    twice.lock();
  }
  const std::string said = testing::internal::GetCapturedStderr();
  EXPECT_NE(said.find("'forgotten' was destroyed while this thread held it"), std::string::npos) << said;
  for (int i = 0; i < 100; ++i) {
    tandem::BoundedSemaphore semaphore(1);
    semaphore.acquire();
    semaphore.release();
    tandem::Lock fresh;
    fresh.lock();
    fresh.unlock();
  }
}

// Held by another thread of this process: the lock's memory stays mapped, since that thread's
// robust-mutex list goes through it, and the thread goes on taking other locks safely.
TEST(Lock, DestroyingALockAnotherThreadHoldsKeepsThatThreadSafe) {
  testing::internal::CaptureStderr();
  auto lock = std::make_unique<tandem::Lock>("shared");
  std::atomic<int> stage{0};
  std::thread holder([&, held = lock.get()] {
    held->lock();
    stage = 1;
    while (stage != 2) std::this_thread::sleep_for(1ms);
    for (int i = 0; i < 100; ++i) {
      tandem::BoundedSemaphore semaphore(1);
      semaphore.acquire();
      semaphore.release();
    }
    stage = 3;
  });
  while (stage != 1) std::this_thread::sleep_for(1ms);
  lock.reset();
  stage = 2;
  holder.join();
  EXPECT_EQ(stage.load(), 3);
  const std::string said = testing::internal::GetCapturedStderr();
  EXPECT_NE(said.find("'shared' was destroyed while another thread"), std::string::npos) << said;
}

TEST(Lock, AHandleOfTheWrongKindIsRefused) {
  tandem::Lock lock;
  tandem::detail::ByteWriter out;
  tandem::detail::Traveller<tandem::Lock>::encode(out, lock);
  tandem::detail::ByteReader in(out.bytes());
  EXPECT_THROW(tandem::detail::Traveller<tandem::RLock>::decode(in), tandem::Error);
  tandem::detail::ByteReader again(out.bytes());
  tandem::Lock decoded = tandem::detail::Traveller<tandem::Lock>::decode(again);
  decoded.lock();
  std::thread other([&lock] { EXPECT_FALSE(lock.try_lock()); });
  other.join();
  decoded.unlock();
}

}  // namespace
