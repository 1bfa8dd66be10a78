// Queue, JoinableQueue and Pipe between processes: a producer process feeds a queue, two worker
// processes (a thread would do just as well) square what they get, and a pipe carries a
// question and its answer.
//
//   ./queue
#include <tandem/pipe.hpp>
#include <tandem/process.hpp>
#include <tandem/queue.hpp>
#include <tandem/start_method.hpp>
#include <tandem/value.hpp>

#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  tandem::init(argc, argv);

  // Work for two worker processes; results back on a second queue.
  tandem::JoinableQueue<int> work;
  tandem::Queue<long> results;
  std::vector<tandem::Process> workers;
  for (int w = 0; w < 2; ++w) {
    workers.emplace_back(tandem::ProcessOptions{.start_method = tandem::StartMethod::forkserver},
                         [](tandem::JoinableQueue<int> in, tandem::Queue<long> out) {
                           try {
                             for (;;) {
                               const int n = in.get();
                               out.put(static_cast<long>(n) * n);
                               in.task_done();
                             }
                           } catch (const tandem::QueueClosed&) {  // no more work
                           }
                         },
                         work, results);
    workers.back().start();
  }
  for (int n = 1; n <= 100; ++n) work.put(n);
  work.join();  // every item handled
  work.close();
  long sum = 0;
  for (int i = 0; i < 100; ++i) sum += results.get();
  for (auto& w : workers) w.join();
  std::printf("sum of squares 1..100 = %ld (expected 338350)\n", sum);

  // A pipe: two connected ends, duplex.
  auto [here, there] = tandem::Pipe<std::string>();
  tandem::Process echo([](tandem::Connection<std::string> end) { end.send("echo: " + end.recv()); }, there);
  echo.start();
  there.close();  // the child holds its own copy; as in Python, let go of this process's
  here.send("hello");
  std::printf("%s\n", here.recv_for(std::chrono::seconds(5)).c_str());
  echo.join();
  try {
    here.recv_for(std::chrono::seconds(5));
  } catch (const tandem::QueueClosed&) {
    std::printf("the child's end is closed: recv throws QueueClosed (Python's EOFError)\n");
  }

  // Small items in batches: one meeting of producer and consumer per batch, not per item.
  tandem::Queue<int> numbers;
  tandem::Process counter([](tandem::Queue<int> q) {
    std::vector<int> batch(1000);
    for (int first = 0; first < 100'000; first += 1000) {
      std::iota(batch.begin(), batch.end(), first);
      q.put_many(batch);
    }
  }, numbers);
  counter.start();
  long long total = 0;
  for (int received = 0; received < 100'000;) {
    const std::vector<int> some = numbers.get_many_for(256, std::chrono::seconds(5));
    received += static_cast<int>(some.size());
    total += std::accumulate(some.begin(), some.end(), 0LL);
  }
  counter.join();
  std::printf("100000 numbers in batches, sum %lld (expected 4999950000)\n", total);

  // A full bounded queue makes put wait; put_for gives up with TimeoutError.
  tandem::Queue<int> tiny(tandem::QueueOptions{.maxsize = 1});
  tiny.put(1);
  try {
    tiny.put_for(2, std::chrono::milliseconds(10));
  } catch (const tandem::TimeoutError&) {
    std::printf("the bounded queue stayed full: put_for timed out\n");
  }
}
