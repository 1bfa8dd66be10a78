// FairLock: one suite, every agent kind. Mutual exclusion; hand-over in arrival order, with no
// barging; timeouts that leave the queue usable; a holder that dies (a thread that ends, a
// process killed by SIGKILL) reported as OwnerDied; a waiter killed in the queue skipped; misuse
// reported as tandem::Error, never a hang.
#include "tandem/fair_lock.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "agent_kinds.hpp"
#include "shared_board.hpp"
#include "tandem/error.hpp"
#include "tandem/lock.hpp"
#include "tandem/shared_memory.hpp"

using namespace std::chrono_literals;

namespace {

#ifdef TANDEM_UNDER_TSAN
constexpr int kIncrements = 1'000;
#else
constexpr int kIncrements = 5'000;
#endif
constexpr int kMostRecorded = 128;

// What the agents and the test share.
struct Board {
  long counter;
  std::atomic<int> holding;
  std::atomic<int> release;
  std::atomic<int> arrived;
  std::atomic<int> acquisitions;
  std::atomic<int> order[kMostRecorded];  // who took the lock, in the order they took it
  std::atomic<int> told_owner_died;
  std::atomic<int> told_unrecoverable;
};

Board& board(const tandem::SharedMemory& memory) { return test_support::board<Board>(memory); }
tandem::SharedMemory make_board() { return test_support::make_board<Board>(); }

// Polls `condition` for up to 10 s.
template <class Condition>
bool eventually(Condition condition) {
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

void wait_until_holding(const tandem::SharedMemory& memory) {
  ASSERT_TRUE(eventually([&] { return board(memory).holding.load() != 0; }));
}

// Takes the lock, records that it did (and whether it was told the holder died), lets it go.
// Gives up after a long while, so that a lock that loses a waiter fails the test, not hangs it.
void lock_and_record(tandem::FairLock lock, tandem::SharedMemory memory, int who) {
  Board& shared = board(memory);
  shared.arrived.fetch_add(1);
  try {
    if (!lock.try_lock_for(20s)) throw std::runtime_error("never got the lock");
  } catch (const tandem::OwnerDied&) {
    shared.told_owner_died.fetch_add(1);
    lock.mark_consistent();
  } catch (const tandem::LockUnrecoverable&) {
    shared.told_unrecoverable.fetch_add(1);
    return;
  }
  shared.order[shared.acquisitions.fetch_add(1)].store(who);
  lock.unlock();
}

// Takes the lock, says so, and dies holding it: a process by SIGKILL, a thread by returning.
void die_holding(tandem::FairLock lock, tandem::SharedMemory memory, bool is_process) {
  lock.lock();
  board(memory).holding.store(1);
  std::this_thread::sleep_for(50ms);
  if (is_process) ::raise(SIGKILL);
}

void hold_until_released(tandem::FairLock lock, tandem::SharedMemory memory) {
  std::lock_guard guard(lock);
  board(memory).holding.store(1);
  while (board(memory).release.load() == 0) std::this_thread::sleep_for(1ms);
}

void misuse_a_lock_held_elsewhere(tandem::FairLock lock) {
  try {
    lock.unlock();
  } catch (const tandem::Error&) {
    if (lock.try_lock()) throw std::runtime_error("took a lock that another agent holds");
    return;
  }
  throw std::runtime_error("unlocked a lock that another agent holds");
}

void expect_name(tandem::FairLock lock, std::string expected) {
  if (lock.name() != expected) throw std::runtime_error("the name arrived as '" + lock.name() + "'");
  std::lock_guard guard(lock);
}

class FairLockTest : public ::testing::TestWithParam<AgentKind> {
 protected:
  bool is_process() const { return GetParam() != AgentKind::thread; }
  std::unique_ptr<TestAgent> start_recorder(const tandem::FairLock& lock, const tandem::SharedMemory& memory,
                                            int who) {
    return std::make_unique<TestAgent>(GetParam(), lock_and_record, lock, memory, who);
  }
};

TEST_P(FairLockTest, MutualExclusion) {
  tandem::FairLock lock;
  auto memory = make_board();
  const auto increment = test_support::increment_under_lock<Board, tandem::FairLock>;
  TestAgent first(GetParam(), increment, lock, memory, kIncrements);
  TestAgent second(GetParam(), increment, lock, memory, kIncrements);
  increment(lock, memory, kIncrements);
  first.join();
  second.join();
  EXPECT_EQ(board(memory).counter, 3L * kIncrements);
}

TEST_P(FairLockTest, WaitersGetItInArrivalOrder) {
  constexpr int kWaiters = 4;
  tandem::FairLock lock;
  auto memory = make_board();
  lock.lock();
  std::vector<std::unique_ptr<TestAgent>> waiters;
  for (int who = 0; who < kWaiters; ++who) {
    waiters.push_back(start_recorder(lock, memory, who));
    ASSERT_TRUE(eventually([&] { return lock.waiter_count() == who + 1; })) << "waiter " << who << " never queued";
  }
  lock.unlock();
  for (auto& waiter : waiters) waiter->join();
  ASSERT_EQ(board(memory).acquisitions.load(), kWaiters);
  for (int turn = 0; turn < kWaiters; ++turn) EXPECT_EQ(board(memory).order[turn].load(), turn) << "turn " << turn;
}

TEST_P(FairLockTest, AnUnlockerCannotTakeItBackFromAWaiter) {
  tandem::FairLock lock;
  auto memory = make_board();
  lock.lock();
  TestAgent waiter(GetParam(), hold_until_released, lock, memory);
  ASSERT_TRUE(eventually([&] { return lock.waiter_count() == 1; }));
  std::this_thread::sleep_for(20ms);  // past its spin: asleep, it needs a while to wake
  lock.unlock();
  if (lock.try_lock()) {  // it should have gone to the waiter, awake or not
    ADD_FAILURE() << "the unlocker took the lock back from a waiter";
    lock.unlock();
  }
  wait_until_holding(memory);
  board(memory).release.store(1);
  lock.lock();
  lock.unlock();
  waiter.join();
}

TEST_P(FairLockTest, TimeoutsLeaveTheQueueUsable) {
  tandem::FairLock lock;
  auto memory = make_board();
  TestAgent holder(GetParam(), hold_until_released, lock, memory);
  wait_until_holding(memory);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(lock.try_lock_for(60ms));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 60ms);
  EXPECT_EQ(lock.waiter_count(), 0);
  EXPECT_FALSE(lock.try_lock());
  EXPECT_FALSE(lock.try_lock_until(std::chrono::system_clock::now() + 10ms));

  // A waiter ahead of another gives up; the one behind it gets the lock when it is released.
  std::jthread impatient([lock]() mutable { EXPECT_FALSE(lock.try_lock_for(300ms)); });
  EXPECT_TRUE(eventually([&] { return lock.waiter_count() == 1; }));
  auto patient = start_recorder(lock, memory, 7);
  EXPECT_TRUE(eventually([&] { return lock.waiter_count() == 2; }));
  impatient.join();
  EXPECT_EQ(lock.waiter_count(), 1);
  board(memory).release.store(1);
  patient->join();
  EXPECT_EQ(board(memory).acquisitions.load(), 1);
  EXPECT_EQ(board(memory).order[0].load(), 7);
  EXPECT_EQ(board(memory).told_owner_died.load(), 0);
  EXPECT_TRUE(lock.try_lock_for(10s));
  lock.unlock();
  holder.join();
}

TEST_P(FairLockTest, HolderDeathIsReportedToTheWaiterWithinASecond) {
  tandem::FairLock lock;
  auto memory = make_board();
  TestAgent holder(GetParam(), die_holding, lock, memory, is_process());
  wait_until_holding(memory);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(lock.try_lock_for(10s), tandem::OwnerDied);  // the holder dies 50 ms after it took it
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  holder.join();
  // The caller holds the lock now; once marked consistent it is an ordinary lock again.
  lock.mark_consistent();
  EXPECT_THROW(lock.mark_consistent(), tandem::Error);
  lock.unlock();
  ASSERT_TRUE(lock.try_lock());
  lock.unlock();
  auto recorder = start_recorder(lock, memory, 1);
  recorder->join();
  EXPECT_EQ(board(memory).told_owner_died.load(), 0);
  EXPECT_EQ(board(memory).acquisitions.load(), 1);
}

TEST_P(FairLockTest, TheFirstInLineTakesOverFromADeadHolder) {
  tandem::FairLock lock;
  auto memory = make_board();
  TestAgent holder(GetParam(), die_holding, lock, memory, is_process());
  wait_until_holding(memory);
  auto first = start_recorder(lock, memory, 1);
  ASSERT_TRUE(eventually([&] { return lock.waiter_count() == 1; }));
  ASSERT_TRUE(lock.try_lock_for(10s));  // second in line: gets it after the first repaired it
  EXPECT_EQ(board(memory).told_owner_died.load(), 1);
  EXPECT_EQ(board(memory).acquisitions.load(), 1);
  lock.unlock();
  first->join();
  holder.join();
}

TEST_P(FairLockTest, UnrepairedLockIsUnrecoverableForWaitersToo) {
  tandem::FairLock lock;
  auto memory = make_board();
  TestAgent holder(GetParam(), die_holding, lock, memory, is_process());
  holder.join();
  EXPECT_THROW(lock.lock(), tandem::OwnerDied);
  auto waiter = start_recorder(lock, memory, 1);
  ASSERT_TRUE(eventually([&] { return lock.waiter_count() == 1; }));
  lock.unlock();  // without mark_consistent
  waiter->join();
  EXPECT_EQ(board(memory).told_unrecoverable.load(), 1);
  EXPECT_EQ(board(memory).acquisitions.load(), 0);
  EXPECT_THROW(lock.lock(), tandem::LockUnrecoverable);
  EXPECT_THROW(lock.try_lock(), tandem::LockUnrecoverable);
}

TEST_P(FairLockTest, AWaiterKilledInTheQueueIsSkipped) {
  if (!is_process()) GTEST_SKIP() << "a thread cannot be killed alone";
  tandem::FairLock lock;
  auto memory = make_board();
  lock.lock();
  auto doomed = start_recorder(lock, memory, 1);
  ASSERT_TRUE(eventually([&] { return lock.waiter_count() == 1; }));
  doomed->kill();
  doomed->join();
  auto next = start_recorder(lock, memory, 2);
  ASSERT_TRUE(eventually([&] { return lock.waiter_count() == 2; }));
  lock.unlock();
  EXPECT_EQ(lock.waiter_count(), 0);  // handed to the live waiter at once, the dead one dropped
  next->join();
  EXPECT_EQ(board(memory).acquisitions.load(), 1);
  EXPECT_EQ(board(memory).order[0].load(), 2);
  EXPECT_EQ(board(memory).told_owner_died.load(), 0);
  EXPECT_TRUE(lock.try_lock());
  lock.unlock();
}

TEST_P(FairLockTest, RelockingOrUnlockingWhatOneDoesNotHoldIsAnErrorNotAHang) {
  tandem::FairLock lock;
  EXPECT_THROW(lock.unlock(), tandem::Error);
  lock.lock();
  EXPECT_THROW(lock.lock(), tandem::Error);
  // The tries answer "not taken", at once, as Python's acquire(blocking=False) does.
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(lock.try_lock());
  EXPECT_FALSE(lock.try_lock_for(10s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  TestAgent other(GetParam(), misuse_a_lock_held_elsewhere, lock);
  EXPECT_NO_THROW(other.join());
  lock.unlock();
  EXPECT_THROW(lock.unlock(), tandem::Error);
}

TEST_P(FairLockTest, TheNameTravelsWithTheLock) {
  tandem::FairLock lock("printer queue");
  TestAgent other(GetParam(), expect_name, lock, std::string("printer queue"));
  EXPECT_NO_THROW(other.join());
}

INSTANTIATE_TEST_SUITE_P(EachAgent, FairLockTest, ::testing::ValuesIn(kAllAgentKinds), agent_kind_name);

TEST(FairLock, MoreWaitersThanQueuePlacesAllGetItTheQueuedFirst) {
  constexpr int kQueued = 64;  // the queue's places
  constexpr int kBeyond = 16;
  tandem::FairLock lock;
  auto memory = make_board();
  lock.lock();
  std::vector<std::thread> waiters;
  for (int who = 0; who < kQueued; ++who) {
    waiters.emplace_back(lock_and_record, lock, memory, who);
    ASSERT_TRUE(eventually([&] { return lock.waiter_count() == who + 1; })) << "waiter " << who << " never queued";
  }
  for (int who = kQueued; who < kQueued + kBeyond; ++who) waiters.emplace_back(lock_and_record, lock, memory, who);
  ASSERT_TRUE(eventually([&] { return board(memory).arrived.load() == kQueued + kBeyond; }));
  std::this_thread::sleep_for(50ms);  // into their wait for a place
  EXPECT_EQ(lock.waiter_count(), kQueued);
  lock.unlock();
  for (auto& waiter : waiters) waiter.join();
  ASSERT_EQ(board(memory).acquisitions.load(), kQueued + kBeyond);
  std::vector<int> order(kQueued + kBeyond);
  for (int turn = 0; turn < kQueued + kBeyond; ++turn) order[turn] = board(memory).order[turn].load();
  for (int turn = 0; turn < kQueued; ++turn) EXPECT_EQ(order[turn], turn) << "turn " << turn;
  std::sort(order.begin() + kQueued, order.end());
  std::vector<int> beyond(kBeyond);
  std::iota(beyond.begin(), beyond.end(), kQueued);
  EXPECT_TRUE(std::equal(beyond.begin(), beyond.end(), order.begin() + kQueued));
}

TEST(FairLock, NamesAreKeptUpTo47Bytes) {
  EXPECT_EQ(tandem::FairLock().name(), "");
  EXPECT_EQ(tandem::FairLock("ledger").name(), "ledger");
  const std::string long_name(60, 'x');
  EXPECT_EQ(tandem::FairLock(long_name).name(), std::string(47, 'x'));
  // Cut before a character that does not fit whole: 46 bytes, then a 2-byte 'é'.
  const std::string accented = std::string(46, 'a') + "\xc3\xa9";
  EXPECT_EQ(tandem::FairLock(accented).name(), std::string(46, 'a'));
}

TEST(FairLock, CopiesAreTheSameLock) {
  tandem::FairLock lock;
  tandem::FairLock copy = lock;
  copy.lock();
  std::thread other([&lock] { EXPECT_FALSE(lock.try_lock()); });
  other.join();
  copy.unlock();
  EXPECT_TRUE(lock.try_lock());
  lock.unlock();
}

TEST(FairLock, AHandleOfAnotherKindIsRefused) {
  tandem::Lock plain("plain");
  tandem::detail::ByteWriter out;
  tandem::detail::Traveller<tandem::Lock>::encode(out, plain);
  tandem::detail::ByteReader in(out.bytes());
  EXPECT_THROW(tandem::detail::Traveller<tandem::FairLock>::decode(in), tandem::Error);
}

}  // namespace
