// Backoff: pauses that grow from spins to yields to sleeps, sleeps drawn with full jitter under a
// cap, reset, a random sequence of its own per Backoff, and options that are checked.
#include "tandem/backoff.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "tandem/error.hpp"

using namespace std::chrono_literals;

namespace {

using Nanoseconds = std::chrono::nanoseconds;

Nanoseconds time_one_pause(tandem::Backoff& backoff) {
  const auto start = std::chrono::steady_clock::now();
  backoff.pause();
  return std::chrono::steady_clock::now() - start;
}

// The k-th sleep may last up to first_sleep * 2^k, and never more than the cap.
Nanoseconds sleep_bound(const tandem::Backoff::Options& options, int sleep_index) {
  return std::min<Nanoseconds>(options.cap, options.first_sleep * (std::int64_t{1} << sleep_index));
}

TEST(Backoff, SpinsThenYieldsThenSleepsUnderAGrowingBoundThatStopsAtTheCap) {
  const tandem::Backoff::Options options{
      .spin_limit = 3, .yield_limit = 2, .first_sleep = 100us, .cap = 2ms};
  tandem::Backoff backoff(options);
  for (int spin_or_yield = 0; spin_or_yield < 5; ++spin_or_yield) {
    backoff.pause();
    EXPECT_EQ(backoff.last_sleep(), Nanoseconds::zero()) << "pause " << spin_or_yield;
  }
  Nanoseconds longest{};
  for (int sleep_index = 0; sleep_index < 12; ++sleep_index) {
    const Nanoseconds measured = time_one_pause(backoff);
    EXPECT_LE(backoff.last_sleep(), sleep_bound(options, sleep_index)) << "sleep " << sleep_index;
    EXPECT_GE(measured, backoff.last_sleep());
    EXPECT_LT(measured, options.cap + 500ms) << "a sleep far past the cap";
    longest = std::max(longest, backoff.last_sleep());
  }
  EXPECT_GT(longest, Nanoseconds::zero());
  EXPECT_EQ(backoff.attempts(), 5 + 12);
}

TEST(Backoff, SleepsGrowOnAverage) {
  const tandem::Backoff::Options options{.spin_limit = 0, .yield_limit = 0, .first_sleep = 1us, .cap = 1s};
  constexpr int kRuns = 20;
  constexpr int kSleeps = 10;
  std::vector<double> mean_microseconds(kSleeps);
  for (int run = 0; run < kRuns; ++run) {
    tandem::Backoff backoff(options);
    for (int sleep_index = 0; sleep_index < kSleeps; ++sleep_index) {
      backoff.pause();
      mean_microseconds[sleep_index] += backoff.last_sleep().count() / 1e3 / kRuns;
    }
  }
  // Expected means: 0.5 us at the first sleep, 256 us at the tenth.
  EXPECT_LT(mean_microseconds[1], 5.0);
  EXPECT_GT(mean_microseconds[kSleeps - 1], 100.0);
  EXPECT_GT(mean_microseconds[kSleeps - 1], 10 * mean_microseconds[2]);
}

TEST(Backoff, SpinsGrow) {
  const tandem::Backoff::Options options{.spin_limit = 7, .yield_limit = 0, .first_sleep = 1us, .cap = 1us};
  // The fastest of many runs, so that a preemption does not count.
  Nanoseconds first_spin = Nanoseconds::max(), last_spin = Nanoseconds::max();
  for (int run = 0; run < 200; ++run) {
    tandem::Backoff backoff(options);
    first_spin = std::min(first_spin, time_one_pause(backoff));
    for (int pause = 1; pause < 6; ++pause) backoff.pause();
    last_spin = std::min(last_spin, time_one_pause(backoff));  // 64 times the first one's spins
  }
  EXPECT_GT(last_spin, 2 * first_spin);
}

TEST(Backoff, ResetStartsOverFromTheShortestPause) {
  const tandem::Backoff::Options options{.spin_limit = 1, .yield_limit = 1, .first_sleep = 10us, .cap = 5ms};
  tandem::Backoff backoff(options);
  for (int pause = 0; pause < 12; ++pause) backoff.pause();
  EXPECT_EQ(backoff.attempts(), 12);
  backoff.reset();
  EXPECT_EQ(backoff.attempts(), 0);
  EXPECT_EQ(backoff.last_sleep(), Nanoseconds::zero());
  backoff.pause();  // spins again
  EXPECT_EQ(backoff.last_sleep(), Nanoseconds::zero());
  backoff.pause();  // yields
  EXPECT_EQ(backoff.last_sleep(), Nanoseconds::zero());
  backoff.pause();  // the first sleep again: at most first_sleep
  EXPECT_LE(backoff.last_sleep(), 10us);
  EXPECT_EQ(backoff.attempts(), 3);
}

TEST(Backoff, TwoBackoffsDrawDifferentSleeps) {
  const tandem::Backoff::Options options{.spin_limit = 0, .yield_limit = 0, .first_sleep = 1us, .cap = 64us};
  auto sleeps_of = [&options] {
    tandem::Backoff backoff(options);
    std::vector<Nanoseconds> sleeps;
    for (int pause = 0; pause < 8; ++pause) {
      backoff.pause();
      sleeps.push_back(backoff.last_sleep());
    }
    return sleeps;
  };
  EXPECT_NE(sleeps_of(), sleeps_of());
}

TEST(Backoff, BadOptionsAreRefused) {
  using Options = tandem::Backoff::Options;
  EXPECT_THROW(tandem::Backoff(Options{.first_sleep = 0ns}), tandem::Error);
  EXPECT_THROW(tandem::Backoff(Options{.first_sleep = -1us}), tandem::Error);
  EXPECT_THROW(tandem::Backoff(Options{.first_sleep = 2ms, .cap = 1ms}), tandem::Error);
  EXPECT_THROW(tandem::Backoff(Options{.spin_limit = -1}), tandem::Error);
  EXPECT_THROW(tandem::Backoff(Options{.spin_limit = 17}), tandem::Error);
  EXPECT_THROW(tandem::Backoff(Options{.yield_limit = -1}), tandem::Error);
  try {
    tandem::Backoff backoff(Options{.first_sleep = 2ms, .cap = 1ms});
    FAIL() << "a cap below first_sleep was accepted";
  } catch (const tandem::Error& error) {
    EXPECT_NE(std::string(error.what()).find("cap"), std::string::npos) << error.what();
  }
  EXPECT_NO_THROW(tandem::Backoff(Options{.spin_limit = 0, .yield_limit = 0, .first_sleep = 1ns, .cap = 1ns}));
}

}  // namespace
