// Synchronized<T>, Value<T> and Array<T>: shared data with its lock, exact under contention from
// every agent kind, recoverable after a holder died.
#include "tandem/synchronized.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "agent_kinds.hpp"
#include "tandem/array.hpp"
#include "tandem/error.hpp"
#include "tandem/value.hpp"

using namespace std::chrono_literals;

namespace {

#ifdef TANDEM_UNDER_TSAN
constexpr int kIncrements = 1'000;
#else
constexpr int kIncrements = 10'000;
#endif

struct Tally {
  long count;
  long sum;
};

void add_to_tally(tandem::Synchronized<Tally> tally, int times) {
  for (int i = 1; i <= times; ++i) {
    tally.with_lock([i](Tally& t) {
      ++t.count;
      t.sum += i;
    });
  }
}

void add_to_value(tandem::Value<long> value, int times) {
  for (int i = 0; i < times; ++i) {
    if (i % 2 == 0) {
      value.with_lock([](long& v) { ++v; });
    } else {
      tandem::LockGuard guard(value.get_lock());  // an RLock: load and store take it again
      value.store(value.load() + 1);
    }
  }
}

// Element 0 is a counter every agent adds to; agent `slot` writes elements slot + 1, slot + 4 ...
void fill_array(tandem::Array<int> array, int slot) {
  for (std::size_t i = static_cast<std::size_t>(slot) + 1; i < array.size(); i += 3) array.store(i, slot * 1000 + 7);
  for (int i = 0; i < kIncrements; ++i) array.with_lock([](std::span<int> all) { ++all[0]; });
}

class SharedDataAcrossAgents : public ::testing::TestWithParam<AgentKind> {};

TEST_P(SharedDataAcrossAgents, SynchronizedIsExact) {
  tandem::Synchronized<Tally> tally(Tally{0, 0});
  TestAgent first(GetParam(), add_to_tally, tally, kIncrements);
  TestAgent second(GetParam(), add_to_tally, tally, kIncrements);
  add_to_tally(tally, kIncrements);
  first.join();
  second.join();
  const Tally result = tally.copy();
  EXPECT_EQ(result.count, 3L * kIncrements);
  EXPECT_EQ(result.sum, 3L * kIncrements * (kIncrements + 1) / 2);
}

// (A thread cannot end holding a Synchronized's lock: the handle's destructor unlocks it. Lock's
// suite covers a thread that ends holding a lock.)
TEST_P(SharedDataAcrossAgents, SynchronizedRecoversFromAKilledHolder) {
  if (GetParam() == AgentKind::thread) GTEST_SKIP() << "a thread cannot be killed alone";
  tandem::Synchronized<Tally> tally(Tally{5, 5});
  TestAgent holder(GetParam(), [](tandem::Synchronized<Tally> t) {
    auto locked = t.lock();
    locked->count = -1;  // half-done when the holder dies
    ::raise(SIGKILL);
  }, tally);
  holder.join();
  EXPECT_THROW(tally.with_lock([](Tally&) {}), tandem::OwnerDied);
  tally.recover([](Tally& t) { t = Tally{5, 5}; });
  EXPECT_EQ(tally.copy().count, 5);
  ASSERT_TRUE(tally.try_lock_for(1s).has_value());
}

TEST_P(SharedDataAcrossAgents, ValueAndArrayRecoverFromAKilledHolder) {
  if (GetParam() == AgentKind::thread) GTEST_SKIP() << "a thread cannot be killed alone";
  tandem::Value<long> value(5);
  tandem::Array<int> array(3, 1);
  TestAgent holder(GetParam(), [](tandem::Value<long> v, tandem::Array<int> a) {
    v.get_lock().lock();
    a.get_lock().lock();
    ::raise(SIGKILL);
  }, value, array);
  holder.join();
  EXPECT_THROW(value.load(), tandem::OwnerDied);
  value.recover([](long& v) { v = 7; });
  EXPECT_THROW(array.load(0), tandem::OwnerDied);
  array.recover([](std::span<int> all) { all[0] = 9; });
  std::thread other([&] {  // released: another thread takes both at once
    EXPECT_EQ(value.load(), 7);
    EXPECT_EQ(array.load(0), 9);
  });
  other.join();
  EXPECT_THROW(value.recover([](long&) {}), tandem::Error);  // nothing to recover from
}

TEST_P(SharedDataAcrossAgents, ValueIsExact) {
  tandem::Value<long> value(100);
  TestAgent first(GetParam(), add_to_value, value, kIncrements);
  TestAgent second(GetParam(), add_to_value, value, kIncrements);
  add_to_value(value, kIncrements);
  first.join();
  second.join();
  EXPECT_EQ(value.load(), 100 + 3L * kIncrements);
}

TEST_P(SharedDataAcrossAgents, ArrayIsExact) {
  tandem::Array<int> array(31);
  TestAgent first(GetParam(), fill_array, array, 1);
  TestAgent second(GetParam(), fill_array, array, 2);
  fill_array(array, 0);
  first.join();
  second.join();
  const auto values = array.to_vector();
  EXPECT_EQ(values[0], 3 * kIncrements);
  for (std::size_t i = 1; i < values.size(); ++i) EXPECT_EQ(values[i], static_cast<int>((i - 1) % 3) * 1000 + 7) << i;
}

INSTANTIATE_TEST_SUITE_P(EachAgent, SharedDataAcrossAgents, ::testing::ValuesIn(kAllAgentKinds), agent_kind_name);

TEST(Synchronized, TheDataIsReachableOnlyThroughTheLock) {
  tandem::Synchronized<int> number(1);
  {
    auto locked = number.lock();
    *locked = 2;
    std::thread other([&number] { EXPECT_FALSE(number.try_lock_for(10ms).has_value()); });
    other.join();
  }
  EXPECT_EQ(number.with_lock([](int& n) { return n * 10; }), 20);
  auto copy = number;  // the same data
  copy.with_lock([](int& n) { n = 7; });
  EXPECT_EQ(number.copy(), 7);
}

// Where the data lives is in the type: the default reaches processes, Sharing::threads does not.
static_assert(tandem::detail::kCanTravel<tandem::Synchronized<int>>);
static_assert(!tandem::detail::kCanTravel<tandem::Synchronized<int, tandem::Sharing::threads>>);
static_assert(!tandem::detail::kCanTravel<tandem::Synchronized<std::vector<std::string>, tandem::Sharing::threads>>);

TEST(Synchronized, AnyTypeBetweenThreads) {
  tandem::Synchronized<std::vector<std::string>, tandem::Sharing::threads> words;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([words, t]() mutable {
      for (int i = 0; i < 500; ++i) words.with_lock([&](auto& w) { w.push_back(std::to_string(t)); });
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(words.copy().size(), 2000u);
}

TEST(Value, LoadStoreAndAHandleOfAnotherSizeIsRefused) {
  tandem::Value<long> value;
  EXPECT_EQ(value.load(), 0);
  value.store(-3);
  EXPECT_EQ(value.load(), -3);
  tandem::detail::ByteWriter out;
  tandem::detail::Traveller<tandem::Value<long>>::encode(out, value);
  tandem::detail::ByteReader in(out.bytes());
  EXPECT_THROW(tandem::detail::Traveller<tandem::Value<int>>::decode(in), tandem::Error);
}

TEST(Array, BoundsAreChecked) {
  const std::vector<double> initial{1.5, 2.5, 3.5};
  tandem::Array<double> array{std::span<const double>(initial)};
  EXPECT_EQ(array.size(), 3u);
  EXPECT_EQ(array.to_vector(), initial);
  EXPECT_THROW(array.load(3), tandem::Error);
  EXPECT_THROW(array.store(99, 0.0), tandem::Error);
  tandem::Array<char> filled(5, 'x');
  EXPECT_EQ(filled.load(4), 'x');
}

}  // namespace
