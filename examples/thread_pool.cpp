// ThreadPool cookbook: submit, map, imap over an endless range, cancellation, nested work.
//   build/release/examples/thread_pool
#include <tandem/thread_pool.hpp>

#include <chrono>
#include <cstdio>
#include <numeric>
#include <ranges>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

int main() {
  tandem::ThreadPool pool;  // one worker per usable CPU
  std::printf("pool of %zu workers\n", pool.size());

  // submit: any callable plus arguments; the future rethrows what the task threw.
  tandem::Future<std::string> greeting = pool.submit([](std::string who) { return "hello, " + who; }, "tandem");
  std::printf("submit: %s\n", greeting.get().c_str());

  // map: results in input order, in one vector; chunking is automatic.
  std::vector<int> numbers(10);
  std::iota(numbers.begin(), numbers.end(), 1);
  std::vector<int> squares = pool.map([](int x) { return x * x; }, numbers);
  std::printf("map: sum of squares 1..10 = %d\n", std::accumulate(squares.begin(), squares.end(), 0));

  // imap: lazy and bounded, so an endless input is fine; stop whenever you like.
  for (long cube : pool.imap([](long x) { return x * x * x; }, std::views::iota(1L))) {
    if (cube > 1000) break;
    std::printf("imap: %ld\n", cube);
  }

  // A running task sees cancel() through its std::stop_token.
  auto worker = pool.submit([](std::stop_token stop) {
    int rounds = 0;
    while (!stop.stop_requested()) {
      std::this_thread::sleep_for(1ms);
      ++rounds;
    }
    return rounds;
  });
  std::this_thread::sleep_for(10ms);
  worker.cancel();
  std::printf("cancel: the task stopped after %d rounds\n", worker.get());

  // Tasks may submit and wait on their own pool: a waiting worker runs queued tasks meanwhile.
  auto nested = pool.submit([&pool] {
    auto parts = pool.map([](int x) { return x + 1; }, std::vector<int>{1, 2, 3});
    return parts[0] + parts[1] + parts[2];
  });
  std::printf("nested map: %d\n", nested.get_for(5s));

  // Timeouts on every blocking call.
  auto slow = pool.submit([] { std::this_thread::sleep_for(200ms); });
  try {
    slow.get_for(10ms);
  } catch (const tandem::TimeoutError& e) {
    std::printf("timeout: %s\n", e.what());
  }

  pool.shutdown();  // waits for what was submitted (the destructor would too)
  try {
    pool.submit([] {});
  } catch (const tandem::PoolClosed& e) {
    std::printf("after shutdown: %s\n", e.what());
  }
}
