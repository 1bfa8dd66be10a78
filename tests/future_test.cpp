#include "tandem/future.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

// Sets `promise` from another thread after `delay`, so the consumer has to block (and sleep).
template <class R, class V>
std::jthread set_later(tandem::Promise<R>& promise, V value, std::chrono::milliseconds delay) {
  return std::jthread([&promise, value, delay] {
    std::this_thread::sleep_for(delay);
    promise.set_value(value);
  });
}

TEST(Future, GetReturnsTheValueAnyNumberOfTimesAndCopiesShareIt) {
  tandem::Promise<std::string> promise;
  tandem::Future<std::string> future = promise.get_future();
  tandem::Future<std::string> copy = future;
  EXPECT_FALSE(future.done());
  promise.set_value("tandem");
  EXPECT_TRUE(copy.done());
  EXPECT_EQ(future.get(), "tandem");
  EXPECT_EQ(future.get(), "tandem");
  EXPECT_EQ(copy.get(), "tandem");
  EXPECT_EQ(future.exception(), nullptr);
}

TEST(Future, GetBlocksUntilAnotherThreadSetsTheValue) {
  tandem::Promise<int> promise;
  auto future = promise.get_future();
  auto setter = set_later(promise, 42, 30ms);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(future.get(), 42);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 25ms);
}

TEST(Future, GetForThrowsTimeoutErrorWhenTheResultIsLate) {
  tandem::Promise<int> promise;
  auto future = promise.get_future();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(future.get_for(20ms), tandem::TimeoutError);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms);
  EXPECT_FALSE(future.wait_for(1ms));
  promise.set_value(1);
  EXPECT_TRUE(future.wait_for(0ms));
  EXPECT_EQ(future.get_for(1s), 1);
  EXPECT_EQ(future.get_until(std::chrono::system_clock::now() + 1s), 1);
}

TEST(Future, TimeoutErrorIsATandemError) {
  tandem::Promise<void> promise;
  auto future = promise.get_future();
  EXPECT_THROW(future.get_for(1ms), tandem::Error);
}

TEST(Future, AnExceptionReachesGetWithItsOwnType) {
  tandem::Promise<int> promise;
  auto future = promise.get_future();
  promise.set_exception(std::make_exception_ptr(std::out_of_range("index 7")));
  EXPECT_TRUE(future.done());
  EXPECT_THROW(future.get(), std::out_of_range);
  try {
    future.get();
  } catch (const std::out_of_range& e) {
    EXPECT_STREQ(e.what(), "index 7");
  }
  EXPECT_NE(future.exception(), nullptr);
}

TEST(Future, DestroyingAnUnsetPromiseBreaksIt) {
  tandem::Future<int> future;
  {
    tandem::Promise<int> promise;
    future = promise.get_future();
  }
  EXPECT_TRUE(future.done());
  EXPECT_THROW(future.get(), tandem::BrokenPromise);
}

TEST(Future, AnEmptyHandleThrowsInsteadOfCrashing) {
  tandem::Future<int> future;
  EXPECT_FALSE(future.valid());
  EXPECT_THROW(future.get(), tandem::Error);
  EXPECT_THROW(future.done(), tandem::Error);
  EXPECT_THROW(future.cancel(), tandem::Error);
}

TEST(Future, CancelWinsOnlyWhilePending) {
  tandem::Promise<int> promise;
  auto future = promise.get_future();
  EXPECT_TRUE(future.cancel());
  EXPECT_TRUE(future.cancelled());
  EXPECT_TRUE(future.done());
  EXPECT_THROW(future.get(), tandem::CancelledError);
  EXPECT_FALSE(promise.set_value(3)) << "a cancelled future takes no value";
  EXPECT_TRUE(future.cancel()) << "a cancelled future stays cancelled: true again, as Python's cancel()";

  tandem::Promise<int> done;
  auto finished = done.get_future();
  done.set_value(1);
  EXPECT_FALSE(finished.cancel());
  EXPECT_EQ(finished.get(), 1);
}

TEST(Future, MisuseOfAPromiseIsAnError) {
  tandem::Promise<int> promise;
  auto future = promise.get_future();
  EXPECT_THROW(promise.get_future(), tandem::Error);
  promise.set_value(1);
  EXPECT_THROW(promise.set_value(2), tandem::Error);
  EXPECT_THROW(promise.set_exception(nullptr), tandem::Error);
}

TEST(Future, MovingAPromiseCarriesItsStateAndBreaksTheOneItReplaces) {
  tandem::Promise<int> first;
  auto first_future = first.get_future();
  tandem::Promise<int> second;
  auto second_future = second.get_future();
  second = std::move(first);
  EXPECT_THROW(second_future.get(), tandem::BrokenPromise) << "the replaced promise is abandoned";
  EXPECT_THROW(second.get_future(), tandem::Error) << "its future was already taken";
  second.set_value(9);
  EXPECT_EQ(first_future.get(), 9);
}

TEST(Future, VoidAndMoveOnlyResults) {
  tandem::Promise<void> done;
  auto void_future = done.get_future();
  done.set_value();
  EXPECT_NO_THROW(void_future.get());

  tandem::Promise<std::unique_ptr<int>> boxed;
  auto box = boxed.get_future();
  boxed.set_value(std::make_unique<int>(5));
  EXPECT_EQ(*box.get(), 5);
}

TEST(Future, ThenChainsOnTheValue) {
  tandem::Promise<int> promise;
  auto future = promise.get_future();
  auto text = future.then([](int v) { return std::to_string(v * 2); }).then([](const std::string& s) {
    return s + "!";
  });
  EXPECT_FALSE(text.done());
  promise.set_value(21);
  EXPECT_EQ(text.get(), "42!");
}

TEST(Future, ThenOnADoneFutureRunsAtOnce) {
  tandem::Promise<int> promise;
  auto future = promise.get_future();
  promise.set_value(1);
  bool ran = false;
  auto next = future.then([&](int) { ran = true; });
  EXPECT_TRUE(ran);
  EXPECT_TRUE(next.done());
}

TEST(Future, ThenSkipsTheValueFormOnErrorAndPassesTheErrorOn) {
  tandem::Promise<int> promise;
  auto future = promise.get_future();
  bool ran = false;
  auto next = future.then([&](int v) {
    ran = true;
    return v;
  });
  promise.set_exception(std::make_exception_ptr(std::invalid_argument("bad")));
  EXPECT_FALSE(ran);
  EXPECT_THROW(next.get(), std::invalid_argument);
}

TEST(Future, ThenWithTheFutureFormSeesErrorsAndCancellation) {
  tandem::Promise<int> promise;
  auto future = promise.get_future();
  auto outcome = future.then([](const tandem::Future<int>& done) {
    return done.cancelled() ? std::string("cancelled") : std::string("other");
  });
  future.cancel();
  EXPECT_EQ(outcome.get(), "cancelled");
}

TEST(Future, ThenContinuationThatThrowsFailsTheNextFuture) {
  tandem::Promise<void> promise;
  auto next = promise.get_future().then([]() -> int { throw std::runtime_error("in then"); });
  promise.set_value();
  EXPECT_THROW(next.get(), std::runtime_error);
}

TEST(WaitAny, ReturnsTheIndexOfTheFirstDone) {
  std::vector<tandem::Promise<int>> promises(3);
  std::vector<tandem::Future<int>> futures;
  for (auto& p : promises) futures.push_back(p.get_future());
  auto setter = set_later(promises[2], 7, 20ms);
  EXPECT_EQ(tandem::wait_any(futures), 2u);
  EXPECT_EQ(futures[2].get(), 7);
}

TEST(WaitAny, TimesOutWithNulloptAndRejectsAnEmptyRange) {
  std::vector<tandem::Promise<int>> promises(2);
  std::vector<tandem::Future<int>> futures;
  for (auto& p : promises) futures.push_back(p.get_future());
  EXPECT_EQ(tandem::wait_any_for(futures, 10ms), std::nullopt);
  promises[1].set_value(1);
  EXPECT_EQ(tandem::wait_any_for(futures, 10ms), std::optional<std::size_t>(1));
  EXPECT_THROW(tandem::wait_any(std::vector<tandem::Future<int>>{}), tandem::Error);
}

TEST(WaitAll, WaitsForEveryFutureAndHasATimeoutForm) {
  std::vector<tandem::Promise<int>> promises(3);
  std::vector<tandem::Future<int>> futures;
  for (auto& p : promises) futures.push_back(p.get_future());
  promises[0].set_value(0);
  EXPECT_FALSE(tandem::wait_all_for(futures, 10ms));
  auto a = set_later(promises[1], 1, 10ms);
  auto b = set_later(promises[2], 2, 20ms);
  tandem::wait_all(futures);
  for (auto& f : futures) EXPECT_TRUE(f.done());
  EXPECT_TRUE(tandem::wait_all_for(futures, 0ms));
}

TEST(AsCompleted, YieldsFuturesInCompletionOrder) {
  std::vector<tandem::Promise<int>> promises(3);
  std::vector<tandem::Future<int>> futures;
  for (auto& p : promises) futures.push_back(p.get_future());
  std::jthread setter([&] {
    for (int i : {2, 0, 1}) {
      std::this_thread::sleep_for(5ms);
      promises[static_cast<std::size_t>(i)].set_value(i);
    }
  });
  std::vector<int> order;
  for (auto& f : tandem::as_completed(futures)) order.push_back(f.get());
  EXPECT_EQ(order, (std::vector<int>{2, 0, 1}));
}

TEST(AsCompleted, ThrowsTimeoutErrorWhenTheNextIsLate) {
  std::vector<tandem::Promise<int>> promises(2);
  std::vector<tandem::Future<int>> futures;
  for (auto& p : promises) futures.push_back(p.get_future());
  promises[1].set_value(1);
  auto completed = tandem::as_completed(futures, 20ms);
  EXPECT_EQ(completed.remaining(), 2u);
  auto first = completed.next();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->get(), 1);
  EXPECT_EQ(completed.remaining(), 1u);
  EXPECT_THROW(completed.next(), tandem::TimeoutError);
}

// Python's as_completed yields a future listed twice once.
TEST(AsCompleted, YieldsAFutureListedTwiceOnce) {
  tandem::Promise<int> first, second;
  const auto a = first.get_future(), b = second.get_future();
  first.set_value(1);
  second.set_value(2);
  auto completed = tandem::as_completed(std::vector<tandem::Future<int>>{a, a, b, a});
  EXPECT_EQ(completed.remaining(), 2u);
  std::vector<int> seen;
  for (auto& f : completed) seen.push_back(f.get());
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<int>{1, 2}));
}

// An as_completed given up on (it timed out, the caller moved on) holds nothing: the results it
// watched are freed with the caller's last handle, not when the slowest future completes.
TEST(AsCompleted, ADroppedIterationReleasesTheFuturesItWatched) {
  tandem::Promise<std::shared_ptr<int>> slow;
  auto slow_future = slow.get_future();
  auto result = std::make_shared<int>(7);
  std::weak_ptr<int> watch = result;
  tandem::Future<std::shared_ptr<int>> done_future;
  {
    tandem::Promise<std::shared_ptr<int>> done;  // gone once set, as a finished task's is
    done_future = done.get_future();
    done.set_value(std::move(result));
  }
  {
    auto completed = tandem::as_completed(std::vector{done_future, slow_future}, 10ms);
    EXPECT_EQ(*completed.next()->get(), 7);
    EXPECT_THROW(completed.next(), tandem::TimeoutError);
  }
  done_future = {};
  EXPECT_TRUE(watch.expired()) << "the dropped as_completed still holds the result";
  slow.set_value(nullptr);
}

// get() on an rvalue future returns the value itself: a loop over a temporary's result, or a
// move-only result, outlives the temporary.
TEST(Future, GetOnATemporaryReturnsTheValue) {
  auto make = [] {
    tandem::Promise<std::vector<long>> promise;
    auto future = promise.get_future();
    promise.set_value(std::vector<long>{1, 2, 3, 4});
    return future;
  };
  long sum = 0;
  for (long x : make().get()) sum += x;
  EXPECT_EQ(sum, 10);
  static_assert(std::is_same_v<decltype(make().get()), std::vector<long>>);
  tandem::Promise<std::unique_ptr<int>> owner;
  auto owned = owner.get_future();
  owner.set_value(std::make_unique<int>(5));
  std::unique_ptr<int> taken = std::move(owned).get();
  EXPECT_EQ(*taken, 5);
  EXPECT_THROW(owned.get(), tandem::Error) << "a future whose value was taken is empty";
}

// Another handle may still read the value (a copy, a then() continuation): get() on an rvalue
// then copies it, and a move-only value cannot be taken from under it.
TEST(Future, GetOnAnRvalueLeavesTheValueToOtherHandles) {
  tandem::Promise<std::vector<int>> promise;
  auto future = promise.get_future();
  auto copy = future;
  auto size = future.then([](const std::vector<int>& v) { return v.size(); });
  promise.set_value(std::vector<int>{1, 2, 3});
  EXPECT_EQ(std::move(future).get(), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(copy.get(), (std::vector<int>{1, 2, 3})) << "the other handle still reads the value";
  EXPECT_EQ(size.get(), 3u);
  tandem::Promise<std::unique_ptr<int>> owner;
  auto owned = owner.get_future();
  auto other = owned;
  owner.set_value(std::make_unique<int>(1));
  EXPECT_THROW(std::move(owned).get(), tandem::Error);
  EXPECT_EQ(*other.get(), 1);
}

}  // namespace

namespace {

std::vector<tandem::Future<int>> futures_of(std::vector<tandem::Promise<int>>& promises) {
  std::vector<tandem::Future<int>> futures;
  for (auto& promise : promises) futures.push_back(promise.get_future());
  return futures;
}

TEST(Wait, ReturnsWhenTheFirstEndsWithAnExceptionAsPythonsFirstException) {
  std::vector<tandem::Promise<int>> promises(3);
  auto futures = futures_of(promises);
  promises[0].set_value(1);
  futures[2].cancel();  // a cancellation is not an exception
  std::thread failer([&] {
    std::this_thread::sleep_for(20ms);
    promises[1].set_exception(std::make_exception_ptr(std::runtime_error("bad")));
  });
  auto [done, not_done] = tandem::wait(futures, tandem::ReturnWhen::first_exception);
  failer.join();
  ASSERT_EQ(done.size(), 3u);
  EXPECT_TRUE(not_done.empty());
  EXPECT_THROW(done[1].get(), std::runtime_error);

  std::vector<tandem::Promise<int>> fine(2);
  auto ok = futures_of(fine);
  fine[0].set_value(1);
  std::thread late([&] {
    std::this_thread::sleep_for(20ms);
    fine[1].set_value(2);
  });
  auto [all_done, none] = tandem::wait(ok, tandem::ReturnWhen::first_exception);
  late.join();
  EXPECT_EQ(all_done.size(), 2u) << "no exception: it returns when all are done";
  EXPECT_TRUE(none.empty());
}

TEST(Wait, FirstCompletedSplitsDoneFromNotDone) {
  std::vector<tandem::Promise<int>> promises(3);
  auto futures = futures_of(promises);
  std::thread setter([&] {
    std::this_thread::sleep_for(20ms);
    promises[2].set_value(3);
  });
  auto [done, not_done] = tandem::wait(futures, tandem::ReturnWhen::first_completed);
  setter.join();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].get(), 3);
  EXPECT_EQ(not_done.size(), 2u);
  EXPECT_EQ(not_done[0].id(), futures[0].id()) << "in the order of the input";
  promises[0].set_value(1);
  promises[1].set_value(2);
  auto [every, nothing] = tandem::wait(futures);
  EXPECT_EQ(every.size(), 3u);
  EXPECT_TRUE(nothing.empty());
}

TEST(Wait, TheTimedFormsReturnWhatIsNotDoneAtTheLimit) {
  std::vector<tandem::Promise<int>> promises(2);
  auto futures = futures_of(promises);
  promises[0].set_value(1);
  const auto start = std::chrono::steady_clock::now();
  auto [done, not_done] = tandem::wait_for(futures, 30ms);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
  EXPECT_EQ(done.size(), 1u);
  EXPECT_EQ(not_done.size(), 1u);
  auto [done_until, not_done_until] =
      tandem::wait_until(futures, std::chrono::system_clock::now() + 10ms, tandem::ReturnWhen::all_completed);
  EXPECT_EQ(not_done_until.size(), 1u);
  const std::vector<tandem::Future<int>> none;
  auto [empty_done, empty_not_done] = tandem::wait(none, tandem::ReturnWhen::first_completed);
  EXPECT_TRUE(empty_done.empty() && empty_not_done.empty()) << "an empty range returns at once, as in Python";
}

}  // namespace
