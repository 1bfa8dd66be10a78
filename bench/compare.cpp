// Side-by-side runs of tandem and its peers in one process, rounds interleaved so that the
// machine's noise hits every contender alike; medians, reported as ratios. Ends with the
// `RATIO <id> <value> <target>` lines of BRIEF §5, the project's scoreboard.
//
//   tandem_compare            full run (about a minute)
//   TANDEM_BENCH_QUICK=1 ...  fewer and smaller rounds, for smoke tests
//   TANDEM_BENCH_ONLY=queue   only the comparisons whose name contains "queue"
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "peers/peers.hpp"
#include "tandem/diagnostics.hpp"
#include "tandem/lock.hpp"
#include "tandem/partial.hpp"
#include "tandem/process.hpp"
#include "tandem/process_pool.hpp"
#include "tandem/queue.hpp"
#include "tandem/start_method.hpp"
#include "tandem/thread_pool.hpp"
#include "workloads/workloads.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

const bool kQuick = std::getenv("TANDEM_BENCH_QUICK") != nullptr;

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

template <class F>
double seconds(F&& f) {
  const auto start = Clock::now();
  f();
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Runs each contender once per round, in turn, and returns each one's median.
std::vector<double> interleaved(int rounds, const std::vector<std::function<double()>>& contenders) {
  std::vector<std::vector<double>> samples(contenders.size());
  for (int round = 0; round < rounds; ++round) {
    for (std::size_t c = 0; c < contenders.size(); ++c) samples[c].push_back(contenders[c]());
  }
  std::vector<double> medians;
  for (auto& s : samples) medians.push_back(median(s));
  return medians;
}

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct Ratio {
  std::string id;
  double value;
  std::string target;
};
std::vector<Ratio> ratios;

void section(const char* title) { std::printf("\n== %s\n", title); }
void row(const char* what, double value, const char* unit) { std::printf("  %-52s %12.3f %s\n", what, value, unit); }

void submit_burst() {
  section("ThreadPool: empty tasks submitted from outside, then all awaited (2 threads each)");
  const std::size_t tasks = kQuick ? 200'000 : 1'000'000;
  tandem::ThreadPool pool(2);
  std::vector<tandem::Future<void>> futures;
  futures.reserve(tasks);
  auto tandem_burst = [&] {
    futures.clear();
    const double s = seconds([&] {
      for (std::size_t i = 0; i < tasks; ++i) futures.push_back(pool.submit([] {}));
      tandem::wait_all(futures);
    });
    futures.clear();  // frees the 1M states outside the timed region, like the peers' tasks
    return s;
  };
  const auto m = interleaved(kQuick ? 3 : 9, {tandem_burst, [&] { return tandem::bench::tbb_task_group_burst(tasks); },
                                              [&] { return tandem::bench::asio_thread_pool_burst(tasks); },
                                              [&] { return tandem::bench::naive_pool_burst(tasks); }});
  const double per = 1e9 / static_cast<double>(tasks);
  row("tandem ThreadPool(2): submit + wait_all", m[0] * per, "ns/task");
  row("oneTBB task_group, arena of 2: run + wait", m[1] * per, "ns/task");
  row("Boost.Asio thread_pool(2): post + wait", m[2] * per, "ns/task");
  row("naive mutex+condvar pool(2)", m[3] * per, "ns/task");
  ratios.push_back({"tp_submit_vs_tbb", m[0] / m[1], "<=1.0"});
}

void map_tiny() {
  section("ThreadPool::map over 1M ints (x * 2) into a new result vector");
  std::vector<int> input(1'000'000);
  std::iota(input.begin(), input.end(), 0);
  tandem::ThreadPool pool(2);
  const auto m = interleaved(kQuick ? 5 : 31, {[&] {
                                                 return seconds([&] {
                                                   auto out = pool.map([](int x) { return x * 2; }, input);
                                                   if (out[7] != 14) std::abort();
                                                 });
                                               },
                                               [&] { return tandem::bench::tbb_parallel_for_map(input, false); },
                                               [&] { return tandem::bench::tbb_parallel_for_map(input, true); }});
  row("tandem pool.map (returns a new vector)", m[0] * 1e3, "ms");
  row("oneTBB parallel_for into a new vector", m[1] * 1e3, "ms");
  row("oneTBB parallel_for into a reused vector (context)", m[2] * 1e3, "ms");
  ratios.push_back({"tp_map_vs_tbb", m[0] / m[1], "<=1.2"});
}

void round_trip() {
  section("Round trip: submit -> get on an idle pool vs a blocking futex hand-over");
  tandem::ThreadPool pool(2);
  const std::size_t trips = kQuick ? 2'000 : 20'000;
  const auto m = interleaved(kQuick ? 3 : 7, {[&] {
                                                return seconds([&] {
                                                         for (std::size_t i = 0; i < trips; ++i) pool.submit([] { return 1; }).get();
                                                       }) /
                                                       static_cast<double>(trips);
                                              },
                                              [&] { return tandem::bench::futex_round_trip(trips / 4); }});
  row("tandem submit -> get", m[0] * 1e6, "us");
  row("futex round trip between two threads", m[1] * 1e6, "us");
  // Idle cost: after their spin (~300 us) workers sleep; 1 ms of idleness is ample.
  std::this_thread::sleep_for(1ms);
  const double cpu_before = process_cpu_seconds();
  const double wall = seconds([] { std::this_thread::sleep_for(kQuick ? 100ms : 300ms); });
  const double idle_percent = 100.0 * (process_cpu_seconds() - cpu_before) / wall;
  row("idle pool CPU after 1 ms idle (target <= 1)", idle_percent, "% of a core");
  ratios.push_back({"tp_rtt_vs_futex", m[0] / m[1], "<=0.1"});
}

void cpu_speedup() {
  section("CPU-bound: counting primes, serial vs ThreadPool(2).map over 64 chunks");
  const std::uint64_t limit = kQuick ? 400'000 : 2'000'000;
  const auto chunks = tandem::workloads::split_range(limit, 64);
  tandem::ThreadPool pool(2);
  std::uint64_t serial_count = 0, pool_count = 0;
  const auto m = interleaved(kQuick ? 3 : 5, {[&] {
                                                return seconds([&] {
                                                  serial_count = 0;
                                                  for (auto [b, e] : chunks) serial_count += tandem::workloads::count_primes(b, e);
                                                });
                                              },
                                              [&] {
                                                return seconds([&] {
                                                  auto counts = pool.map([](auto r) { return tandem::workloads::count_primes(r.first, r.second); },
                                                                         chunks, 1);
                                                  pool_count = std::accumulate(counts.begin(), counts.end(), std::uint64_t{0});
                                                });
                                              }});
  if (serial_count != pool_count) std::abort();
  row("serial", m[0] * 1e3, "ms");
  row("ThreadPool(2)", m[1] * 1e3, "ms");
  ratios.push_back({"cpu_speedup_threads", m[0] / m[1], ">=1.9"});
}

void io_scrape() {
  section("I/O-bound: 128 pages from a loopback server with 20 ms latency, ThreadPool(64)");
  constexpr int kPages = 128;
  constexpr std::size_t kWorkers = 64;
  tandem::workloads::LatencyServer server(20ms, kWorkers * 2);
  tandem::ThreadPool pool(kWorkers);
  std::vector<int> pages(kPages);
  std::iota(pages.begin(), pages.end(), 0);
  const int port = server.port();
  const auto m = interleaved(kQuick ? 2 : 5, {[&] {
                               return seconds([&] {
                                 auto sizes = pool.map([port](int i) { return tandem::workloads::fetch_page(port, i); }, pages, 1);
                                 if (sizes.size() != kPages) std::abort();
                               });
                             }});
  const double ideal = std::ceil(static_cast<double>(kPages) / kWorkers) * 0.020;
  row("measured", m[0] * 1e3, "ms");
  row("ideal: ceil(pages / workers) x latency", ideal * 1e3, "ms");
  ratios.push_back({"io_vs_ideal", ideal / m[0], ">=0.8"});
}

// Median seconds that bench/peers/python_peers.py reports, or a negative value without python3.
double python_seconds(const std::string& mode, std::size_t n, int rounds) {
  const std::string command = "python3 " TANDEM_BENCH_PEERS_DIR "/python_peers.py " + mode + " " + std::to_string(n) +
                              " " + std::to_string(rounds) + " 2>/dev/null";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return -1;
  double value = -1;
  if (std::fscanf(pipe, "%lf", &value) != 1) value = -1;
  return ::pclose(pipe) == 0 ? value : -1;
}

void pp_map_vs_python() {
  section("ProcessPool(2)::map over 1M ints (abs) vs Python multiprocessing.Pool(2).map, default chunksize");
  const std::size_t n = kQuick ? 200'000 : 1'000'000;
  std::vector<int> input(n);
  for (std::size_t i = 0; i < n; ++i) input[i] = -static_cast<int>(i);
  tandem::ProcessPool pool(2);
  const auto m = interleaved(kQuick ? 5 : 21, {[&] {
                               return seconds([&] {
                                 auto out = pool.map([](int x) { return x < 0 ? -x : x; }, input);
                                 if (out[7] != 7) std::abort();
                               });
                             }});
  const double python = python_seconds("map", n, kQuick ? 3 : 7);
  row("tandem ProcessPool(2).map", m[0] * 1e3, "ms");
  if (python < 0) {
    std::printf("  (python3 not available: no Python figure, no RATIO line)\n");
    return;
  }
  row("Python multiprocessing.Pool(2).map", python * 1e3, "ms");
  ratios.push_back({"pp_map_vs_python", python / m[0], ">=100"});
}

void pp_submit_vs_python() {
  section("ProcessPool(2): submit 20k tiny tasks, then get each, vs Python ProcessPoolExecutor(2)");
  const std::size_t tasks = kQuick ? 2'000 : 20'000;
  tandem::ProcessPool pool(2);
  std::vector<tandem::Future<int>> futures;
  futures.reserve(tasks);
  const auto m = interleaved(kQuick ? 3 : 9, {[&] {
                               return seconds([&] {
                                 futures.clear();
                                 for (std::size_t i = 0; i < tasks; ++i) {
                                   futures.push_back(pool.submit([](int x) { return x < 0 ? -x : x; }, -static_cast<int>(i)));
                                 }
                                 long total = 0;
                                 for (auto& f : futures) total += f.get();
                                 if (total != static_cast<long>(tasks * (tasks - 1) / 2)) std::abort();
                               });
                             }});
  const double python = python_seconds("submit", tasks, kQuick ? 1 : 3);
  row("tandem ProcessPool(2) submit + get", m[0] * 1e9 / static_cast<double>(tasks), "ns/task");
  if (python < 0) {
    std::printf("  (python3 not available: no Python figure, no RATIO line)\n");
    return;
  }
  row("Python ProcessPoolExecutor(2) submit + result", python * 1e9 / static_cast<double>(tasks), "ns/task");
  ratios.push_back({"pp_submit_vs_python", python / m[0], ">=50"});
}

void pp_round_trip() {
  section("Round trip: submit -> get on an idle pool, ProcessPool(2) vs ThreadPool(2)");
  tandem::ProcessPool processes(2);
  tandem::ThreadPool threads(2);
  const std::size_t trips = kQuick ? 2'000 : 20'000;
  auto trip = [&](auto& pool) {
    return seconds([&] {
             for (std::size_t i = 0; i < trips; ++i) pool.submit([] { return 1; }).get();
           }) /
           static_cast<double>(trips);
  };
  const auto m = interleaved(kQuick ? 3 : 9, {[&] { return trip(processes); }, [&] { return trip(threads); }});
  row("tandem ProcessPool submit -> get", m[0] * 1e6, "us");
  row("tandem ThreadPool submit -> get", m[1] * 1e6, "us");
  ratios.push_back({"pp_rtt_vs_tp", m[0] / m[1], "<=2.0"});
}

void cpu_speedup_processes() {
  section("CPU-bound: counting primes, serial vs ProcessPool(2).map over 64 chunks");
  const std::uint64_t limit = kQuick ? 400'000 : 2'000'000;
  const auto chunks = tandem::workloads::split_range(limit, 64);
  tandem::ProcessPool pool(2);
  std::uint64_t serial_count = 0, pool_count = 0;
  const auto m = interleaved(kQuick ? 3 : 5, {[&] {
                                                return seconds([&] {
                                                  serial_count = 0;
                                                  for (auto [b, e] : chunks) serial_count += tandem::workloads::count_primes(b, e);
                                                });
                                              },
                                              [&] {
                                                return seconds([&] {
                                                  auto counts = pool.map(
                                                      [](const std::pair<std::uint64_t, std::uint64_t>& r) {
                                                        return tandem::workloads::count_primes(r.first, r.second);
                                                      },
                                                      chunks, 1);
                                                  pool_count = std::accumulate(counts.begin(), counts.end(), std::uint64_t{0});
                                                });
                                              }});
  if (serial_count != pool_count) std::abort();
  row("serial", m[0] * 1e3, "ms");
  row("ProcessPool(2)", m[1] * 1e3, "ms");
  ratios.push_back({"cpu_speedup_processes", m[0] / m[1], ">=1.9"});
}

// About `iterations` steps of a multiply-xorshift chain: each step needs the one before, so the
// loop neither vectorises nor folds away, and its time grows linearly with `iterations`.
std::uint64_t spin(std::uint64_t iterations, std::uint64_t seed) {
  std::uint64_t x = seed | 1;
  for (std::uint64_t i = 0; i < iterations; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    x ^= x >> 29;
  }
  return x;
}

// The iterations of spin() that take `target` on one core of this machine (the fastest of a few
// probes, so that a moment of noise does not make the tasks short).
std::uint64_t spin_iterations_for(std::chrono::nanoseconds target) {
  constexpr std::uint64_t probe = 2'000'000;
  volatile std::uint64_t sink = 0;  // keeps the probes
  std::vector<double> times;
  for (std::uint64_t i = 0; i < 5; ++i) times.push_back(seconds([&] { sink = spin(probe, i); }));
  const double per_iteration = *std::min_element(times.begin(), times.end()) / static_cast<double>(probe);
  return std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::chrono::duration<double>(target).count() / per_iteration));
}

void pp_eff_50us() {
  section("ProcessPool(2).map, chunksize 1, over 10,000 tasks of ~50 us of computation: efficiency");
  const std::size_t tasks = kQuick ? 2'000 : 10'000;
  const std::uint64_t iterations = spin_iterations_for(50us);
  std::vector<std::uint64_t> seeds(tasks);
  std::iota(seeds.begin(), seeds.end(), std::uint64_t{0});
  const auto task = tandem::partial(&spin, iterations);
  tandem::ProcessPool pool(2);
  std::uint64_t serial_sum = 0, pool_sum = 0;
  std::vector<double> caller_cpu;  // this process's CPU during each pool map: sending, collecting, spinning
  const auto m = interleaved(kQuick ? 2 : 5, {[&] {
                                                return seconds([&] {
                                                  serial_sum = 0;
                                                  for (auto seed : seeds) serial_sum += task(seed);
                                                });
                                              },
                                              [&] {
                                                const double cpu_before = process_cpu_seconds();
                                                const double s = seconds([&] {
                                                  auto out = pool.map(task, seeds, 1);
                                                  pool_sum = std::accumulate(out.begin(), out.end(), std::uint64_t{0});
                                                });
                                                caller_cpu.push_back(process_cpu_seconds() - cpu_before);
                                                return s;
                                              }});
  if (serial_sum != pool_sum) std::abort();
  row("one task, serial (calibrated to ~50)", m[0] * 1e6 / static_cast<double>(tasks), "us");
  row("serial", m[0] * 1e3, "ms");
  row("ProcessPool(2).map, chunksize 1", m[1] * 1e3, "ms");
  row("  this process's CPU during the map (of 2 cores)", median(caller_cpu) * 1e3, "ms");
  row("speedup: serial / pool", m[0] / m[1], "x");
  row("efficiency: serial / (2 x pool)", m[0] / (2 * m[1]), "");
  ratios.push_back({"pp_eff_50us", m[0] / (2 * m[1]), ">=0.9"});
}

// The queue rows measure a 1 MiB queue, the default when they were set; the default is 8 MiB now
// (it holds larger items), whose ring is colder in the caches (docs/benchmarks.md has both).
tandem::QueueOptions bench_queue_options() {
  const std::size_t capacity = std::getenv("TANDEM_BENCH_DEFAULT_QUEUE") ? tandem::QueueOptions{}.capacity_bytes
                                                                          : std::size_t{1} << 20;
  return tandem::QueueOptions{.capacity_bytes = capacity};
}

// Items through a Queue from a producer process to this one: seconds per item, from the first
// item's arrival (so that the producer's start is not counted).
template <class T>
double queue_seconds_per_item(const T& item, std::uint64_t count) {
  const tandem::bench::ScopedPin consumer_cpu(0);
  tandem::Queue<T> queue(bench_queue_options());
  tandem::Process producer(
      [](tandem::Queue<T> q, T value, std::uint64_t n) {
        tandem::bench::pin_to_cpu(1);
        for (std::uint64_t i = 0; i < n; ++i) q.put(value);
      },
      queue, item, count);
  producer.start();
  std::uint64_t intact = queue.get() == item;
  const double elapsed = seconds([&] {
    for (std::uint64_t i = 1; i < count; ++i) intact += queue.get() == item;
  });
  producer.join();
  if (intact != count) std::abort();
  return elapsed / static_cast<double>(count - 1);
}

// The same as queue_seconds_per_item for 8-byte items, moved in batches (put_many, get_many):
// how a single producer and consumer of small items are meant to use the queue.
constexpr std::size_t kBatch = 256;
double queue_seconds_per_item_batched(std::uint64_t count) {
  const tandem::bench::ScopedPin consumer_cpu(0);
  tandem::Queue<std::uint64_t> queue(bench_queue_options());
  tandem::Process producer(
      [](tandem::Queue<std::uint64_t> q, std::uint64_t n) {
        tandem::bench::pin_to_cpu(1);
        const std::vector<std::uint64_t> batch(kBatch, 42);
        for (std::uint64_t sent = 0; sent < n; sent += kBatch) {
          q.put_many(std::span(batch).first(static_cast<std::size_t>(std::min<std::uint64_t>(kBatch, n - sent))));
        }
      },
      queue, count);
  producer.start();
  std::vector<std::uint64_t> got = queue.get_many(kBatch);
  std::uint64_t received = got.size(), intact = static_cast<std::uint64_t>(std::count(got.begin(), got.end(), 42));
  const std::uint64_t first = received;
  const double elapsed = seconds([&] {
    while (received < count) {
      got = queue.get_many(kBatch);
      received += got.size();
      intact += static_cast<std::uint64_t>(std::count(got.begin(), got.end(), 42));
    }
  });
  producer.join();
  if (intact != count) std::abort();
  return elapsed / static_cast<double>(count - first);
}

void queue_small_items() {
  section("Queue between two processes, 8-byte items: vs a plain SPSC shared-memory ring and Python");
  const std::uint64_t count = kQuick ? 200'000 : 2'000'000;
  // The floor and both ways of using the queue, interleaved; 11 rounds, since the floor swings.
  const auto m = interleaved(kQuick ? 3 : 11, {[&] { return tandem::bench::spsc_ring_seconds_per_item(count); },
                                              [&] { return queue_seconds_per_item_batched(count); },
                                              [&] { return queue_seconds_per_item(std::uint64_t{42}, count); }});
  row("plain SPSC ring (the floor)", 1e-6 / m[0], "M msgs/s");
  row("tandem::Queue<std::uint64_t>, put_many/get_many of 256", 1e-6 / m[1], "M msgs/s");
  row("tandem::Queue<std::uint64_t>, put/get one at a time", 1e-6 / m[2], "M msgs/s");
  row("  one at a time / floor", m[0] / m[2], "");
  ratios.push_back({"q8_vs_floor", m[0] / m[1], ">=0.25"});
  const double python = python_seconds("queue", kQuick ? 20'000 : 200'000, 3);
  if (python < 0) {
    std::printf("  (python3 not available: no Python figure, no RATIO line)\n");
    return;
  }
  row("Python multiprocessing.Queue", 1e-6 / python, "M msgs/s");
  row("  put_many/get_many / Python", python / m[1], "");
  ratios.push_back({"q8_vs_python", python / m[2], ">=100"});
}

void queue_large_items() {
  section("Queue between two processes, 64 KiB items: vs single-core memcpy");
  const std::size_t item_bytes = 64 << 10;
  const std::uint64_t count = kQuick ? 4'000 : 40'000;
  const std::vector<char> item(item_bytes, 'q');
  const auto m = interleaved(
      kQuick ? 3 : 7,
      {[&] { return 1.0 / tandem::bench::memcpy_bytes_per_second(item_bytes, count); },
       [&] { return queue_seconds_per_item(item, count) / static_cast<double>(item_bytes); }});
  row("memcpy, one core", 1e-9 / m[0], "GB/s");
  row("tandem::Queue<std::vector<char>>", 1e-9 / m[1], "GB/s");
  ratios.push_back({"q64k_vs_memcpy", m[0] / m[1], ">=0.6"});
}

// What a task does with a 64 KiB argument: reads three bytes, so that the figure is the cost of
// getting the argument there.
int sample_bytes(const std::vector<char>& item) { return item.front() + item[item.size() / 2] + item.back(); }

// `items` through a Queue from this process to a consumer process that runs sample_bytes on each:
// seconds from the first put until the consumer reports the sum (it reports once before, when
// it is ready, so that its start is not counted).
double queue_put_seconds(const std::vector<std::vector<char>>& items, long expected) {
  tandem::Queue<std::vector<char>> queue(bench_queue_options());
  tandem::Queue<long> reply(bench_queue_options());
  tandem::Process consumer(
      [](tandem::Queue<std::vector<char>> q, tandem::Queue<long> done, std::size_t n) {
        done.put(0);
        long sum = 0;
        for (std::size_t i = 0; i < n; ++i) sum += sample_bytes(q.get());
        done.put(sum);
      },
      queue, reply, items.size());
  consumer.start();
  reply.get();
  long sum = 0;
  const double elapsed = seconds([&] {
    for (const auto& item : items) queue.put(item);
    sum = reply.get();
  });
  consumer.join();
  if (sum != expected) std::abort();
  return elapsed;
}

void pp_payload_vs_queue() {
  section("ProcessPool(2).map over 64 KiB std::vector<char> arguments vs a Queue of them to one process");
  const std::size_t item_bytes = 64 << 10;
  const std::size_t count = kQuick ? 400 : 2'000;
  std::vector<std::vector<char>> items(count);
  long expected = 0;
  for (std::size_t i = 0; i < count; ++i) {
    items[i].assign(item_bytes, static_cast<char>(i % 100));
    expected += sample_bytes(items[i]);
  }
  tandem::ProcessPool pool(2);
  auto pool_map = [&](std::size_t chunksize) {
    long sum = 0;
    const double s = seconds([&] {
      auto out = pool.map(&sample_bytes, items, chunksize);
      sum = std::accumulate(out.begin(), out.end(), 0L);
    });
    if (sum != expected) std::abort();
    return s;
  };
  const auto m = interleaved(kQuick ? 3 : 7, {[&] { return pool_map(0); }, [&] { return queue_put_seconds(items, expected); },
                                             [&] { return pool_map(1); }});
  const double bytes = static_cast<double>(count * item_bytes);
  row("ProcessPool(2).map, default chunksize", 1e-9 * bytes / m[0], "GB/s");
  row("tandem::Queue<std::vector<char>> to one process", 1e-9 * bytes / m[1], "GB/s");
  row("ProcessPool(2).map, chunksize 1 (context)", 1e-9 * bytes / m[2], "GB/s");
  ratios.push_back({"pp_payload_vs_queue", m[1] / m[0], ">=0.5"});
}

// Uncontended lock + unlock: tandem::Lock (robust, process-shared, error-checking) against
// std::mutex, in ns per pair, in a multi-threaded process: while a process has only ever had one
// thread, glibc skips the atomic instructions of std::mutex (~6 ns instead of ~20 here), a case
// in which nobody needs a lock. A thread started and joined first makes the measurement the same
// whether this comparison runs alone (TANDEM_BENCH_ONLY=lock) or after the others.
void lock_uncontended() {
  section("Lock: uncontended lock + unlock in a multi-threaded process, tandem::Lock vs std::mutex");
  std::thread([] {}).join();
  tandem::Lock lock;
  std::mutex mutex;
  const int pairs = kQuick ? 200'000 : 2'000'000;
  auto per_pair = [pairs](auto& l) {
    return seconds([&] {
             for (int i = 0; i < pairs; ++i) {
               l.lock();
               l.unlock();
             }
           }) /
           pairs;
  };
  const auto m = interleaved(kQuick ? 3 : 11, {[&] { return per_pair(lock); }, [&] { return per_pair(mutex); }});
  row("tandem::Lock lock + unlock", m[0] * 1e9, "ns");
  row("std::mutex lock + unlock", m[1] * 1e9, "ns");
  ratios.push_back({"lock_vs_std_mutex", m[0] / m[1], "<=1.5"});
}

// Two nested locks taken and released, with the pitfall diagnostics off and on: on, each
// acquisition looks up the order from the held lock in the shared graph and records what the
// thread holds (the first time, it also captures and symbolizes a stack: done before timing).
void lockdep_nested() {
  section("Lock with lock-order diagnostics: two nested locks, diagnostics on vs off");
  std::thread([] {}).join();
  tandem::Lock outer("outer"), inner("inner");
  const int rounds = kQuick ? 100'000 : 1'000'000;
  auto per_round = [&] {
    return seconds([&] {
             for (int i = 0; i < rounds; ++i) {
               outer.lock();
               inner.lock();
               inner.unlock();
               outer.unlock();
             }
           }) /
           rounds;
  };
  auto with_diagnostics = [&] {
    tandem::diagnostics::enable({.mode = tandem::diagnostics::Mode::report, .print = false});
    outer.lock();
    inner.lock();
    inner.unlock();
    outer.unlock();
    const double result = per_round();
    tandem::diagnostics::disable();
    return result;
  };
  const auto m = interleaved(kQuick ? 3 : 9, {with_diagnostics, per_round});
  row("diagnostics on: lock, lock, unlock, unlock", m[0] * 1e9, "ns");
  row("diagnostics off: lock, lock, unlock, unlock", m[1] * 1e9, "ns");
  ratios.push_back({"lockdep_on_vs_off", m[0] / m[1], "<=10"});
}

// Last: it leaves this process with 1 GiB touched (unmapped at the end).
void pp_start_from_a_big_parent() {
  section("Starting ProcessPool(2) from a parent that has touched 1 GiB, vs a plain fork+exit+wait");
  const std::size_t bytes = kQuick ? (std::size_t{256} << 20) : (std::size_t{1} << 30);
  void* memory = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) std::abort();
  std::memset(memory, 1, bytes);
  const auto m = interleaved(kQuick ? 3 : 7, {[&] {
                                                const auto start = Clock::now();
                                                tandem::ProcessPool pool(2);
                                                return std::chrono::duration<double>(Clock::now() - start).count();
                                              },
                                              [&] {
                                                return seconds([] {
                                                  const pid_t pid = ::fork();
                                                  if (pid == 0) ::_exit(0);
                                                  ::waitpid(pid, nullptr, 0);
                                                });
                                              }});
  ::munmap(memory, bytes);
  row("tandem ProcessPool(2) ready (default start method: forkserver)", m[0] * 1e3, "ms");
  row("plain fork + _exit + waitpid", m[1] * 1e3, "ms");
  ratios.push_back({"pp_start_1g_vs_fork", m[0] / m[1], "<=0.1"});
}

// Every comparison, in the order they run; the last leaves 1 GiB touched, so it stays last.
struct Comparison {
  const char* name;
  void (*run)();
};
constexpr Comparison kComparisons[] = {
    {"submit_burst", submit_burst},
    {"map_tiny", map_tiny},
    {"round_trip", round_trip},
    {"cpu_speedup", cpu_speedup},
    {"io_scrape", io_scrape},
    {"pp_map_vs_python", pp_map_vs_python},
    {"pp_submit_vs_python", pp_submit_vs_python},
    {"pp_round_trip", pp_round_trip},
    {"cpu_speedup_processes", cpu_speedup_processes},
    {"pp_eff_50us", pp_eff_50us},
    {"queue_small_items", queue_small_items},
    {"queue_large_items", queue_large_items},
    {"pp_payload_vs_queue", pp_payload_vs_queue},
    {"lock_uncontended", lock_uncontended},
    {"lockdep_nested", lockdep_nested},
    {"pp_start_from_a_big_parent", pp_start_from_a_big_parent},
};

}  // namespace

int main(int argc, char** argv) {
  tandem::init(argc, argv);  // first: the fork server starts while this program has one thread
  // TANDEM_BENCH_ONLY=queue runs only the comparisons whose name contains "queue".
  const char* only = std::getenv("TANDEM_BENCH_ONLY");
  std::printf("tandem side-by-side benchmarks (%s run, medians of interleaved rounds)\n", kQuick ? "quick" : "full");
  for (const auto& comparison : kComparisons) {
    if (only == nullptr || std::strstr(comparison.name, only) != nullptr) comparison.run();
  }
  std::printf("\n");
  for (const auto& r : ratios) std::printf("RATIO %s %.3f %s\n", r.id.c_str(), r.value, r.target.c_str());
}
