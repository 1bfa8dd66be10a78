// One function over either pool (tandem::Executor), the pools' stats(), and the blocking-call
// vocabulary they share: op(), op_for(duration), op_until(time_point).
//
//   build/release/examples/executor
#include <chrono>
#include <cmath>
#include <cstdio>
#include <thread>
#include <vector>

#include "tandem/event.hpp"
#include "tandem/executor.hpp"
#include "tandem/future.hpp"
#include "tandem/process_pool.hpp"
#include "tandem/start_method.hpp"
#include "tandem/thread_pool.hpp"

using namespace std::chrono_literals;

namespace {

// A result type without a default constructor comes back from either pool.
struct Norm {
  explicit Norm(double v) : value(v) {}
  double value;
};

template <tandem::Executor Pool>
void report(const char* name, Pool& pool) {
  const std::vector<std::vector<double>> rows{{3, 4}, {5, 12}, {8, 15}};
  std::vector<Norm> norms = pool.map(+[](std::vector<double> row) {
    double sum = 0;
    for (double x : row) sum += x * x;
    return Norm(std::sqrt(sum));
  }, rows);
  // Several ranges side by side, as Python's map(f, xs, ys).
  std::vector<int> sums = pool.map(+[](int a, int b) { return a + b; }, std::vector{1, 2, 3}, std::vector{10, 20, 30});
  std::printf("%-11s shares memory: %-3s norms %g %g %g, sums %d %d %d\n", name, Pool::kSharesMemory ? "yes" : "no",
              norms[0].value, norms[1].value, norms[2].value, sums[0], sums[1], sums[2]);
  // map without blocking: a future of the whole vector.
  tandem::Future<std::vector<long>> cubes = pool.map_async(+[](int x) { return long{x} * x * x; }, std::vector{1, 2, 3});
  std::printf("%-11s map_async: %ld %ld %ld\n", name, cubes.get()[0], cubes.get()[1], cubes.get()[2]);

  // Three slow tasks on two workers: stats() sees two busy and one queued.
  tandem::Event release;
  std::vector<tandem::Future<void>> slow;
  for (int i = 0; i < 3; ++i) slow.push_back(pool.submit([](tandem::Event go) { go.wait(); }, release));
  tandem::PoolStats now = pool.stats();
  for (int look = 0; look < 2000 && now.busy < 2; ++look, now = pool.stats()) std::this_thread::sleep_for(1ms);
  std::printf("%-11s stats: %zu workers, %zu live, %zu busy, %zu queued\n", name, now.workers, now.live, now.busy,
              now.queued);

  // Every blocking call has a timed form; a wait that times out says so.
  auto first = tandem::wait_for(slow, 20ms, tandem::ReturnWhen::first_completed);
  std::printf("%-11s after 20 ms: %zu done, %zu not done\n", name, first.done.size(), first.not_done.size());
  release.set();
  auto all = tandem::wait_until(slow, std::chrono::steady_clock::now() + 10s);
  std::printf("%-11s after release: %zu done\n", name, all.done.size());
  std::printf("%-11s shut down in time: %s\n", name, pool.shutdown_for(10s) ? "yes" : "no");
}

}  // namespace

int main(int argc, char** argv) {
  tandem::init(argc, argv);
  tandem::ThreadPool threads(2);
  report("ThreadPool", threads);
  tandem::ProcessPool processes(2);
  report("ProcessPool", processes);
}
