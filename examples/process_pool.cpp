// ProcessPool: the ThreadPool API on worker processes, for work that may crash or hang.
//
//   build/release/examples/process_pool
#include <csignal>
#include <cstdio>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tandem/partial.hpp"
#include "tandem/process_pool.hpp"
#include "tandem/start_method.hpp"

namespace {

// Stands for a native library that sometimes crashes on bad input.
int fragile_parse(int record) {
  if (record % 50 == 7) std::raise(SIGSEGV);
  if (record % 50 == 9) throw std::invalid_argument("record " + std::to_string(record) + " is malformed");
  return record * 10;
}

}  // namespace

int main(int argc, char** argv) {
  tandem::init(argc, argv);  // first line of main: starts the fork server, serves spawned workers

  tandem::ProcessPoolOptions options;
  options.workers = 2;
  options.task_timeout = std::chrono::seconds(2);  // a task that hangs is killed and replaced
  tandem::ProcessPool pool(options);

  // map: results in input order. The callable captures nothing (C++ cannot see a capture, which
  // would read the worker's own memory); state goes as arguments or bound with tandem::partial.
  std::vector<int> numbers(1000);
  std::iota(numbers.begin(), numbers.end(), 0);
  const auto squares = pool.map([](int x) { return x * x; }, numbers);
  std::printf("map: %zu squares, the last %d\n", squares.size(), squares.back());
  const int offset = 7;
  const auto shifted = pool.map(tandem::partial([](int by, int x) { return x + by; }, offset), numbers);
  std::printf("map with a bound value: the last %d\n", shifted.back());

  // Crashes and exceptions fail their own task only.
  std::vector<tandem::Future<int>> parsed;
  for (int record = 0; record < 100; ++record) parsed.push_back(pool.submit(&fragile_parse, record));
  int good = 0;
  for (auto& f : parsed) {
    try {
      f.get();
      ++good;
    } catch (const tandem::WorkerLost& e) {
      std::printf("lost: %s\n", e.what());
    } catch (const std::invalid_argument& e) {  // <stdexcept> types arrive as themselves
      std::printf("invalid: %s\n", e.what());
    }
  }
  std::printf("%d of 100 records parsed; the pool still has %zu workers\n", good, pool.size());

  // A hang costs its task_timeout, then the pool goes on.
  auto hung = pool.submit([] {
    std::this_thread::sleep_for(std::chrono::hours(1));
    return 0;
  });
  try {
    hung.get();
  } catch (const tandem::TaskTimeout& e) {
    std::printf("timeout: %s\n", e.what());
  }
  std::printf("next task: %d\n", pool.submit([](int a, int b) { return a + b; }, 40, 2).get());
}
