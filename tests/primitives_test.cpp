// Event, Condition, Semaphore, BoundedSemaphore and Barrier: one suite, every agent kind; a
// process that dies holding a BoundedSemaphore unit or owing a Barrier arrival is reported, not
// left to hang its peers.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "agent_kinds.hpp"
#include "tandem/array.hpp"
#include "tandem/barrier.hpp"
#include "tandem/condition.hpp"
#include "tandem/error.hpp"
#include "tandem/event.hpp"
#include "tandem/lock.hpp"
#include "tandem/semaphore.hpp"
#include "tandem/shared_memory.hpp"
#include "tandem/value.hpp"

using namespace std::chrono_literals;

namespace {

class PrimitivesAcrossAgents : public ::testing::TestWithParam<AgentKind> {
 protected:
  bool is_process() const { return GetParam() != AgentKind::thread; }
};

TEST_P(PrimitivesAcrossAgents, EventWakesAWaiterInAnotherAgent) {
  tandem::Event go, done;
  TestAgent agent(GetParam(), [](tandem::Event start, tandem::Event finished) {
    if (!start.wait_for(10s)) throw std::runtime_error("never set");
    finished.set();
  }, go, done);
  EXPECT_FALSE(done.wait_for(30ms));
  go.set();
  EXPECT_TRUE(done.wait_for(10s));
  agent.join();
  EXPECT_TRUE(go.is_set());
  go.clear();
  EXPECT_FALSE(go.is_set());
}

TEST(Event, AWaiterPresentAtSetReturnsEvenIfClearFollows) {
  tandem::Event event;
  std::atomic<bool> returned{false}, waiting{false};
  std::thread waiter([event, &returned, &waiting]() mutable {
    waiting = true;
    returned = event.wait_for(10s);
  });
  while (!waiting) std::this_thread::yield();
  std::this_thread::sleep_for(100ms);  // the waiter is asleep by now
  event.set();
  event.clear();
  waiter.join();
  EXPECT_TRUE(returned.load());
}

TEST_P(PrimitivesAcrossAgents, ConditionHandsStateBackAndForth) {
  tandem::Condition changed;
  tandem::Value<int> stage(0);  // guarded by `changed`'s lock in this test's protocol
  TestAgent agent(GetParam(), [](tandem::Condition c, tandem::Value<int> s) {
    std::unique_lock lock(c);
    c.wait([&] { return s.load() == 1; });
    s.store(2);
    c.notify_all();
  }, changed, stage);
  {
    std::unique_lock lock(changed);
    stage.store(1);
    changed.notify();
    EXPECT_TRUE(changed.wait_for(10s, [&] { return stage.load() == 2; }));
  }
  agent.join();
  std::unique_lock lock(changed);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(changed.wait_for(40ms));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 40ms);
}

TEST_P(PrimitivesAcrossAgents, AConditionWhoseHolderWasKilledReportsOwnerDied) {
  if (!is_process()) GTEST_SKIP() << "a thread cannot be killed alone";
  tandem::Condition changed;
  tandem::Event holding;
  TestAgent holder(GetParam(), [](tandem::Condition c, tandem::Event h) {
    c.lock();
    h.set();
    ::raise(SIGKILL);
  }, changed, holding);
  ASSERT_TRUE(holding.wait_for(10s));
  EXPECT_THROW(changed.try_lock_for(10s), tandem::OwnerDied);  // held by this thread now
  changed.mark_consistent();
  EXPECT_FALSE(changed.wait_for(10ms));  // usable: releases, times out, takes it again
  changed.unlock();
  holder.join();
}

// Polls `done()` under the condition's lock until it holds or 10 s pass.
template <class Done>
bool under_lock_eventually(tandem::Condition& c, Done done) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  for (;;) {
    {
      std::unique_lock lock(c);
      if (done()) return true;
    }
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
}

// Python's test_notify counts the waiters each notify wakes; before notify woke them all.
TEST_P(PrimitivesAcrossAgents, ConditionNotifyNWakesNWaitersAndNoMore) {
  tandem::Condition c;
  tandem::Value<int> waiting(0), woken(0);  // guarded by c's lock in this test's protocol
  auto wait_once = [](tandem::Condition cond, tandem::Value<int> in, tandem::Value<int> out) {
    std::unique_lock lock(cond);
    in.store(in.load() + 1);
    cond.wait();
    out.store(out.load() + 1);
  };
  std::vector<std::unique_ptr<TestAgent>> agents;
  for (int i = 0; i < 4; ++i) agents.push_back(std::make_unique<TestAgent>(GetParam(), wait_once, c, waiting, woken));
  // A waiter counts itself in before it waits, under the lock it releases only by waiting.
  ASSERT_TRUE(under_lock_eventually(c, [&] { return waiting.load() == 4; }));
  c.notify(0);
  {
    std::unique_lock lock(c);
    c.notify(2);
  }
  ASSERT_TRUE(under_lock_eventually(c, [&] { return woken.load() >= 2; }));
  std::this_thread::sleep_for(150ms);  // room for a wake-up too many to show
  {
    std::unique_lock lock(c);
    EXPECT_EQ(woken.load(), 2);
    c.notify();
  }
  ASSERT_TRUE(under_lock_eventually(c, [&] { return woken.load() >= 3; }));
  std::this_thread::sleep_for(100ms);
  {
    std::unique_lock lock(c);
    EXPECT_EQ(woken.load(), 3);
    c.notify_all();
  }
  for (auto& agent : agents) agent->join();
  EXPECT_EQ(woken.load(), 4);
  EXPECT_THROW(c.notify(-1), tandem::Error);
}

// A notify with nobody waiting is lost, as Python's: it grants no wake-up to a later waiter.
TEST(Condition, ANotifyWithoutWaitersIsNotKeptForALaterOne) {
  tandem::Condition c;
  c.notify();
  c.notify_all();
  std::unique_lock lock(c);
  EXPECT_FALSE(c.wait_for(30ms));
}

// Python's Condition defaults to an RLock and releases every level while waiting.
TEST_P(PrimitivesAcrossAgents, ConditionOverAnRLockReleasesEveryLevelWhileWaiting) {
  tandem::RLock reentrant;
  tandem::Condition c(reentrant);
  tandem::Value<int> stage(0), levels_after(0);
  TestAgent agent(GetParam(), [](tandem::Condition cond, tandem::RLock r, tandem::Value<int> s, tandem::Value<int> after) {
    cond.lock();
    cond.lock();  // two levels
    s.store(1);
    if (!cond.wait_for(10s, [&] { return s.load() == 2; })) throw std::runtime_error("never notified");
    cond.unlock();
    const bool still_held = r.locked();  // one level left, so still this agent's
    cond.unlock();
    after.store(still_held ? 1 : -1);
  }, c, reentrant, stage, levels_after);
  ASSERT_TRUE(under_lock_eventually(c, [&] { return stage.load() == 1; }));  // taken: the waiter let go of both
  {
    std::unique_lock lock(c);
    stage.store(2);
    c.notify();
  }
  agent.join();
  EXPECT_EQ(levels_after.load(), 1);
  EXPECT_FALSE(reentrant.locked());
}

TEST(Condition, WaitingWithoutTheLockThrowsAndLeavesNoWaiterBehind) {
  for (tandem::Condition c : {tandem::Condition(), tandem::Condition(tandem::RLock())}) {
    EXPECT_THROW(c.wait_for(10ms), tandem::Error);
    c.notify();  // granted to no one: the failed wait left no waiter to grant it to
    std::unique_lock lock(c);
    EXPECT_FALSE(c.wait_for(30ms));
  }
}

TEST_P(PrimitivesAcrossAgents, SemaphoreBoundsConcurrencyAndCarriesSignals) {
  tandem::Semaphore slots(2);
  tandem::SharedMemory board(2 * sizeof(std::atomic<int>));
  auto* counters = new (board.data()) std::atomic<int>[2]{};  // inside now, most seen
  auto use_slot = [](tandem::Semaphore s, tandem::SharedMemory b) {
    auto* c = reinterpret_cast<std::atomic<int>*>(b.data());
    for (int i = 0; i < 200; ++i) {
      std::lock_guard hold(s);
      const int inside = c[0].fetch_add(1) + 1;
      for (int seen = c[1].load(); inside > seen && !c[1].compare_exchange_weak(seen, inside);) {
      }
      std::this_thread::yield();
      c[0].fetch_sub(1);
    }
  };
  TestAgent first(GetParam(), use_slot, slots, board);
  TestAgent second(GetParam(), use_slot, slots, board);
  TestAgent third(GetParam(), use_slot, slots, board);
  first.join();
  second.join();
  third.join();
  EXPECT_LE(counters[1].load(), 2);
  EXPECT_EQ(slots.value(), 2u);

  tandem::Semaphore signals(0);
  EXPECT_FALSE(signals.try_acquire_for(20ms));
  TestAgent signaller(GetParam(), [](tandem::Semaphore s) { s.release(5); }, signals);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(signals.try_acquire_for(10s));
  EXPECT_FALSE(signals.try_acquire());
  signaller.join();
}

TEST_P(PrimitivesAcrossAgents, BoundedSemaphoreGetsBackTheUnitOfAKilledHolder) {
  if (!is_process()) GTEST_SKIP() << "a thread cannot be killed alone";
  tandem::BoundedSemaphore gpus(1);
  tandem::Event holding;
  TestAgent holder(GetParam(), [](tandem::BoundedSemaphore g, tandem::Event h) {
    g.acquire();
    h.set();
    ::raise(SIGKILL);
  }, gpus, holding);
  ASSERT_TRUE(holding.wait_for(10s));
  holder.join();
  // A poll that never waits still finds the dead holder (after the liveness check interval).
  bool told = false;
  for (int attempt = 0; attempt < 200 && !told; ++attempt) {
    try {
      if (gpus.try_acquire()) FAIL() << "a dead holder's unit came back without OwnerDied";
    } catch (const tandem::OwnerDied&) {
      told = true;  // holds the unit now
    }
    if (!told) std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(told);
  EXPECT_FALSE(gpus.try_acquire());
  gpus.release();
  EXPECT_EQ(gpus.value(), 1u);
  EXPECT_TRUE(gpus.try_acquire());
  gpus.release();
}

TEST_P(PrimitivesAcrossAgents, BarrierRoundsGiveDistinctIndices) {
  constexpr int kRounds = 5;
  tandem::Barrier meet(3);
  tandem::Array<int> indices(3 * kRounds, -1);
  auto take_part = [](tandem::Barrier b, tandem::Array<int> seen, int agent) {
    for (int round = 0; round < kRounds; ++round) {
      seen.store(static_cast<std::size_t>(round * 3 + agent), static_cast<int>(b.wait_for(10s)));
    }
  };
  TestAgent first(GetParam(), take_part, meet, indices, 1);
  TestAgent second(GetParam(), take_part, meet, indices, 2);
  take_part(meet, indices, 0);
  first.join();
  second.join();
  const auto seen = indices.to_vector();
  for (int round = 0; round < kRounds; ++round) {
    std::vector<int> in_round(seen.begin() + round * 3, seen.begin() + round * 3 + 3);
    std::sort(in_round.begin(), in_round.end());
    EXPECT_EQ(in_round, (std::vector<int>{0, 1, 2})) << "round " << round;
  }
  EXPECT_EQ(meet.n_waiting(), 0u);
  EXPECT_FALSE(meet.broken());
}

// A barrier action reaches no test state but this process's own: it counts here.
std::atomic<int> barrier_actions_run{0};
void count_barrier_action() { barrier_actions_run.fetch_add(1); }

// Returns once `barrier` has `n` waiters, or after 10 s.
bool has_waiters(tandem::Barrier& barrier, std::uint32_t n) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (barrier.n_waiting() != n && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
  return barrier.n_waiting() == n;
}

TEST_P(PrimitivesAcrossAgents, TheLastToArriveRunsTheBarrierActionBeforeAnyoneLeaves) {
  barrier_actions_run = 0;
  tandem::Barrier meet(2, count_barrier_action);
  tandem::Value<int> seen_by_partner(-1);
  TestAgent partner(GetParam(), [](tandem::Barrier b, tandem::Value<int> seen) {
    b.wait_for(10s);                          // round 0: first in, the other runs the action
    if (!has_waiters(b, 1)) throw std::runtime_error("the other never arrived in round 1");
    b.wait_for(10s);                          // round 1: last in, runs it here
    seen.store(barrier_actions_run.load());   // already run when wait returned
  }, meet, seen_by_partner);
  ASSERT_TRUE(has_waiters(meet, 1));
  meet.wait_for(10s);
  EXPECT_EQ(barrier_actions_run.load(), 1);  // ran here, before this wait returned
  meet.wait_for(10s);
  partner.join();
  // A thread shares this process's count; a process ran the action in its own.
  EXPECT_EQ(seen_by_partner.load(), is_process() ? 1 : 2);
  EXPECT_EQ(barrier_actions_run.load(), is_process() ? 1 : 2);
}

TEST_P(PrimitivesAcrossAgents, ABarrierActionThatThrowsBreaksTheBarrierForTheOthers) {
  tandem::Barrier meet(2, [] { throw std::runtime_error("the action failed"); });
  tandem::Value<int> partner_saw(0);
  TestAgent partner(GetParam(), [](tandem::Barrier b, tandem::Value<int> saw) {
    try {
      b.wait_for(10s);
    } catch (const tandem::BrokenBarrier&) {
      saw.store(1);
    }
  }, meet, partner_saw);
  ASSERT_TRUE(has_waiters(meet, 1));
  EXPECT_THROW(meet.wait_for(10s), std::runtime_error);  // the action's own exception, here
  partner.join();
  EXPECT_EQ(partner_saw.load(), 1);
  EXPECT_TRUE(meet.broken());
}

TEST_P(PrimitivesAcrossAgents, AProcessKilledInTheBarrierActionBreaksTheBarrier) {
  if (!is_process()) GTEST_SKIP() << "a thread cannot be killed alone";
  tandem::Barrier meet(2, [] { ::raise(SIGKILL); });
  TestAgent partner(GetParam(), [](tandem::Barrier b) {
    if (!has_waiters(b, 1)) throw std::runtime_error("the other never arrived");
    b.wait();  // last in: runs the action, and dies in it
  }, meet);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(meet.wait_for(30s), tandem::BrokenBarrier);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);  // noticed, not timed out
  partner.join();
}

TEST_P(PrimitivesAcrossAgents, BarrierBreaksWhenAParticipantDies) {
  if (!is_process()) GTEST_SKIP() << "a thread cannot be killed alone";
  tandem::Barrier meet(2);
  TestAgent partner(GetParam(), [](tandem::Barrier b) {
    b.wait_for(10s);  // round 0 together, then gone before round 1
    ::raise(SIGKILL);
  }, meet);
  meet.wait_for(10s);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(meet.wait_for(30s), tandem::BrokenBarrier);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);  // noticed, not timed out
  EXPECT_TRUE(meet.broken());
  EXPECT_THROW(meet.wait(), tandem::BrokenBarrier);
  partner.join();
  meet.reset();
  EXPECT_FALSE(meet.broken());
}

TEST_P(PrimitivesAcrossAgents, BarrierBreaksWhenAParticipantDiesBeforeItsFirstWait) {
  if (!is_process()) GTEST_SKIP() << "a thread cannot be killed alone";
  tandem::Barrier meet(2);
  TestAgent partner(GetParam(), [](tandem::Barrier) { ::raise(SIGKILL); }, meet);  // crashes during its setup
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(meet.wait_for(30s), tandem::BrokenBarrier);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);  // noticed, not timed out
  partner.join();
}

INSTANTIATE_TEST_SUITE_P(EachAgent, PrimitivesAcrossAgents, ::testing::ValuesIn(kAllAgentKinds), agent_kind_name);

TEST(BoundedSemaphore, ReleasePastTheBoundIsAnError) {
  tandem::BoundedSemaphore pool(2);
  EXPECT_THROW(pool.release(), tandem::Error);
  pool.acquire();
  pool.release();
  EXPECT_THROW(pool.release(), tandem::Error);
  tandem::Semaphore unbounded(0);
  unbounded.release(3);  // a plain Semaphore has no bound
  EXPECT_EQ(unbounded.value(), 3u);
}

TEST(Barrier, ATimeoutBreaksItAndResetRepairsIt) {
  tandem::Barrier meet(2, 40ms);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(meet.wait(), tandem::BrokenBarrier);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 40ms);
  EXPECT_TRUE(meet.broken());
  meet.reset();
  EXPECT_FALSE(meet.broken());
  std::atomic<bool> partner_passed{false};
  std::thread partner([meet, &partner_passed]() mutable {
    try {
      meet.wait_for(30s);  // not the 40 ms default: a slow thread start must not break it
      partner_passed = true;
    } catch (const tandem::BrokenBarrier&) {
    }
  });
  EXPECT_NO_THROW(meet.wait_for(30s));
  partner.join();
  EXPECT_TRUE(partner_passed.load());
  EXPECT_THROW(tandem::Barrier(0), tandem::Error);
}

TEST(Barrier, AbortWakesEveryWaiter) {
  tandem::Barrier meet(3);
  std::atomic<int> broken{0};
  std::vector<std::thread> waiters;
  for (int i = 0; i < 2; ++i) {
    waiters.emplace_back([meet, &broken]() mutable {
      try {
        meet.wait_for(30s);
      } catch (const tandem::BrokenBarrier&) {
        ++broken;
      }
    });
  }
  while (meet.n_waiting() != 2) std::this_thread::sleep_for(1ms);
  meet.abort();
  for (auto& w : waiters) w.join();
  EXPECT_EQ(broken.load(), 2);
}

}  // namespace
