// make soak: a long mixed run of tandem under faults, whose books must balance at the end.
//
// Round after round, on every start method in turn, it submits tasks to a ProcessPool (one in
// ten crashes, one in twenty-five hangs past the task timeout, some throw, some attack their
// worker's descriptors), maps and imaps, kills workers and pool servers from outside, moves items
// through a Queue from producer processes (some killed mid-way), and takes a Lock from processes
// (some killed holding it). Every outcome is checked against what was planned:
// results + typed errors = tasks, items got = items put, lock counts exact. It prints a line per
// interval, and at the end checks that child processes, descriptors, /dev/shm entries and its
// RSS are back where they were after the first round.
//
//   tandem-soak [--minutes 10] [--interval 15]
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "process_tree.hpp"
#include "tandem/error.hpp"
#include "tandem/future.hpp"
#include "tandem/lock.hpp"
#include "tandem/process.hpp"
#include "tandem/process_pool.hpp"
#include "tandem/queue.hpp"
#include "tandem/shared_memory.hpp"
#include "tandem/start_method.hpp"
#include "tandem/thread_pool.hpp"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// ---- what a task is planned to do, and what its future must then say ----------------------

enum class Plan : int { value, segfault, abort, exit, sigkill, hang, exception, close_descriptors };

int run_planned(int x, Plan plan) {
  switch (plan) {
    case Plan::segfault:
      std::raise(SIGSEGV);
      break;
    case Plan::abort:
      std::abort();
    case Plan::exit:
      std::_Exit(3);
    case Plan::sigkill:
      std::raise(SIGKILL);
      break;
    case Plan::hang:
      for (;;) ::pause();
    case Plan::exception:
      throw std::invalid_argument("planned failure " + std::to_string(x));
    case Plan::close_descriptors:
      ::syscall(SYS_close_range, 3u, ~0u, 0u);
      break;
    case Plan::value:
      break;
  }
  long long work = 0;
  for (int i = 0; i < 2000; ++i) work += (x ^ i) % 7;
  return x * 2 + static_cast<int>(work % 1);
}

Plan plan_for(std::uint64_t i) {
  if (i % 10 == 3) {
    const Plan crashes[] = {Plan::segfault, Plan::abort, Plan::exit, Plan::sigkill};
    return crashes[(i / 10) % 4];
  }
  if (i % 25 == 7) return Plan::hang;
  if (i % 20 == 11) return Plan::exception;
  if (i % 50 == 17) return Plan::close_descriptors;
  return Plan::value;
}

// ---- the books ---------------------------------------------------------------------------------

struct Books {
  std::uint64_t rounds = 0;
  std::uint64_t tasks = 0, results = 0, lost = 0, timed_out = 0, raised = 0;
  std::uint64_t mapped = 0, imapped = 0;
  std::uint64_t killed_workers = 0, killed_servers = 0;
  std::uint64_t items_put = 0, items_got = 0, producers_killed = 0;
  std::uint64_t lock_increments = 0, holders_killed = 0, recovered = 0;
  std::vector<std::string> mismatches;

  void mismatch(std::string what) {
    if (mismatches.size() < 20) mismatches.push_back(std::move(what));
  }
  bool balanced() const {
    return mismatches.empty() && results + lost + timed_out + raised == tasks &&
           items_got >= items_put && items_got <= items_put + producers_killed;
  }
};

// ---- what the process holds -------------------------------------------------------------------

std::size_t entries(const char* directory, const char* prefix = "") {
  std::size_t n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(directory)) {
    if (entry.path().filename().string().rfind(prefix, 0) == 0) ++n;
  }
  return n;
}

long rss_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

struct Holdings {
  std::size_t processes, descriptors, shm;
  long rss_kib;
};

Holdings holdings() {
  return {test_support::descendant_pids().size(), entries("/proc/self/fd"), entries("/dev/shm", "tandem-"), rss_kib()};
}

// The janitor (a session of its own, this process's grandchild) is not counted as a child: it
// lives as long as this process by design.
Holdings settled_holdings(const Holdings& target) {
  const auto until = Clock::now() + 5s;
  Holdings now = holdings();
  while (now.processes > target.processes && Clock::now() < until) {
    std::this_thread::sleep_for(20ms);
    now = holdings();
  }
  return now;
}

// ---- one round ---------------------------------------------------------------------------------

tandem::StartMethod method_of(std::uint64_t round) {
  const tandem::StartMethod methods[] = {tandem::StartMethod::forkserver, tandem::StartMethod::fork,
                                         tandem::StartMethod::spawn};
  return methods[round % 3];
}

void pool_round(tandem::StartMethod method, std::uint64_t round, Books& books) {
  tandem::ProcessPoolOptions options;
  options.workers = 2;
  options.start_method = method;
  options.task_timeout = 300ms;
  options.ring_bytes = 1 << 16;
  tandem::ProcessPool pool(options);
  constexpr int kTasks = 200;
  std::vector<tandem::Future<int>> futures;
  std::vector<Plan> plans;
  for (int i = 0; i < kTasks; ++i) {
    plans.push_back(plan_for(round * kTasks + static_cast<std::uint64_t>(i)));
    futures.push_back(pool.submit(&run_planned, i, plans.back()));
  }
  // A worker killed from outside, and (forkserver) its pool server, while work is in flight.
  if (round % 2 == 0) {
    const auto pid = pool.submit([] { return static_cast<long>(::getpid()); });
    try {
      const long worker = pid.get_for(10s);
      if (round % 6 == 0 && method == tandem::StartMethod::forkserver) {
        const long server = test_support::parent_of(worker);
        if (server > 1 && ::kill(static_cast<pid_t>(server), SIGKILL) == 0) ++books.killed_servers;
      } else if (::kill(static_cast<pid_t>(worker), SIGKILL) == 0) {
        ++books.killed_workers;
      }
    } catch (const tandem::Error&) {
    }
  }
  for (int i = 0; i < kTasks; ++i) {
    ++books.tasks;
    const Plan plan = plans[static_cast<std::size_t>(i)];
    try {
      const int value = futures[static_cast<std::size_t>(i)].get_for(60s);
      ++books.results;
      if (value != 2 * i) books.mismatch("task " + std::to_string(i) + " returned " + std::to_string(value));
      if (plan != Plan::value && plan != Plan::close_descriptors) books.mismatch("a planned failure returned");
    } catch (const tandem::TaskTimeout&) {
      ++books.timed_out;
      if (plan != Plan::hang) books.mismatch("an unplanned timeout");
    } catch (const tandem::WorkerLost&) {
      // Planned crashes; and, as allowed, a task on a worker killed from outside or broken by
      // the task before it (closing its descriptors).
      ++books.lost;
    } catch (const std::invalid_argument&) {
      ++books.raised;
      if (plan != Plan::exception) books.mismatch("an unplanned exception");
    } catch (const tandem::TimeoutError&) {
      books.mismatch("a future never completed");
    }
  }
  // map and imap on the same pool, after the faults.
  std::vector<int> input(500);
  for (int i = 0; i < 500; ++i) input[static_cast<std::size_t>(i)] = i;
  const auto doubled = pool.map([](int x) { return 2 * x; }, input);
  for (int i = 0; i < 500; ++i) {
    if (doubled[static_cast<std::size_t>(i)] != 2 * i) books.mismatch("map returned a wrong element");
  }
  books.mapped += doubled.size();
  int expected = 0;
  for (const int value : pool.imap([](int x) { return x + 1; }, input, 7)) {
    if (value != ++expected) books.mismatch("imap returned a wrong element");
    ++books.imapped;
  }
}

void queue_round(tandem::StartMethod method, std::uint64_t round, Books& books) {
  tandem::Queue<std::uint64_t> queue(tandem::QueueOptions{.capacity_bytes = 1 << 16});
  tandem::SharedMemory confirmed(sizeof(std::atomic<std::uint64_t>));  // items the producers saw put
  constexpr std::uint64_t kPerProducer = 2000;
  std::vector<tandem::Process> producers;
  for (int p = 0; p < 3; ++p) {
    producers.emplace_back(
        tandem::ProcessOptions{.start_method = method},
        [](tandem::Queue<std::uint64_t> q, tandem::SharedMemory count, std::uint64_t first) {
          auto& put = *reinterpret_cast<std::atomic<std::uint64_t>*>(count.data());
          for (std::uint64_t i = 0; i < kPerProducer; ++i) {
            q.put(first + i);
            put.fetch_add(1);
          }
        },
        queue, confirmed, static_cast<std::uint64_t>(p) * kPerProducer);
    producers.back().start();
  }
  // Taken while they put (the queue holds a fraction of what they put), until all have ended
  // and nothing is left.
  std::uint64_t got = 0;
  std::set<std::uint64_t> seen;
  const auto take = [&](std::optional<std::uint64_t> item) {
    if (!item) return false;
    ++got;
    if (!seen.insert(*item).second) books.mismatch("queue: an item arrived twice");
    return true;
  };
  const auto take_for = [&](std::chrono::milliseconds timeout) {
    try {
      take(queue.get_for(timeout));
    } catch (const tandem::TimeoutError&) {
    }
  };
  // One producer in three rounds is killed mid-way: what it put before stays in the queue.
  std::uint64_t killed = 0;
  if (round % 3 == 1) {
    const auto& put = *reinterpret_cast<const std::atomic<std::uint64_t>*>(confirmed.data());
    for (const auto until = Clock::now() + 5s; put.load() < 300 && Clock::now() < until;) take_for(1ms);
    producers.front().kill();
    killed = 1;
  }
  const auto deadline = Clock::now() + 60s;
  while (std::any_of(producers.begin(), producers.end(), [](tandem::Process& p) { return p.is_alive(); }) &&
         Clock::now() < deadline) {
    take_for(10ms);
  }
  for (auto& producer : producers) producer.join();
  while (take(queue.try_get())) {
  }
  if (killed != 0 && producers.front().exitcode() != -SIGKILL) killed = 0;  // it had finished
  books.producers_killed += killed;
  const std::uint64_t put = reinterpret_cast<std::atomic<std::uint64_t>*>(confirmed.data())->load();
  // A producer killed between its put and its count has one item more in the queue than counted.
  if (got < put || got > put + killed) {
    books.mismatch("queue: got " + std::to_string(got) + " items, " + std::to_string(put) + " were put");
  }
  books.items_put += put;
  books.items_got += got;
}

void lock_round(tandem::StartMethod method, std::uint64_t round, Books& books) {
  tandem::Lock lock("soak");
  tandem::SharedMemory counter(sizeof(std::uint64_t) * 2);
  constexpr int kIncrements = 500;
  std::vector<tandem::Process> holders;
  for (int p = 0; p < 2; ++p) {
    holders.emplace_back(
        tandem::ProcessOptions{.start_method = method},
        [](tandem::Lock l, tandem::SharedMemory memory, int die_holding) {
          auto* words = reinterpret_cast<std::uint64_t*>(memory.data());
          for (int i = 0; i < kIncrements; ++i) {
            try {
              l.lock();
            } catch (const tandem::OwnerDied&) {
              words[1] += 1;  // repaired: the dead holder's increment was not half-done
              l.mark_consistent();
            }
            words[0] += 1;
            if (die_holding != 0 && i == kIncrements / 2) std::raise(SIGKILL);
            l.unlock();
          }
        },
        lock, counter, round % 4 == 2 && p == 0 ? 1 : 0);
    holders.back().start();
  }
  int killed = 0;
  for (auto& holder : holders) {
    holder.join();
    if (holder.exitcode() == -SIGKILL) ++killed;
  }
  const auto* words = reinterpret_cast<const std::uint64_t*>(counter.data());
  const std::uint64_t expected = static_cast<std::uint64_t>(2 * kIncrements - killed * (kIncrements / 2 - 1));
  if (words[0] != expected) {
    books.mismatch("lock: " + std::to_string(words[0]) + " increments, " + std::to_string(expected) + " expected");
  }
  books.lock_increments += words[0];
  books.holders_killed += static_cast<std::uint64_t>(killed);
  books.recovered += words[1];
}

void thread_round(Books& books) {
  tandem::ThreadPool pool(2);
  std::vector<tandem::Future<int>> futures;
  for (int i = 0; i < 2000; ++i) futures.push_back(pool.submit([](int x) { return x + 1; }, i));
  for (int i = 0; i < 2000; ++i) {
    ++books.tasks;
    if (futures[static_cast<std::size_t>(i)].get() == i + 1) {
      ++books.results;
    } else {
      books.mismatch("a ThreadPool task returned a wrong value");
    }
  }
}

void print_line(const char* label, double seconds, const Books& books, const Holdings& now) {
  std::printf(
      "%s %6.0f s  rounds %4llu  tasks %7llu (ok %llu, lost %llu, timed out %llu, raised %llu)  map %llu imap %llu  "
      "killed workers %llu servers %llu  queue %llu (producers killed %llu)  lock %llu (holders killed %llu)  | "
      "processes %zu, fds %zu, shm %zu, rss %ld KiB\n",
      label, seconds, static_cast<unsigned long long>(books.rounds), static_cast<unsigned long long>(books.tasks),
      static_cast<unsigned long long>(books.results), static_cast<unsigned long long>(books.lost),
      static_cast<unsigned long long>(books.timed_out), static_cast<unsigned long long>(books.raised),
      static_cast<unsigned long long>(books.mapped), static_cast<unsigned long long>(books.imapped),
      static_cast<unsigned long long>(books.killed_workers), static_cast<unsigned long long>(books.killed_servers),
      static_cast<unsigned long long>(books.items_got), static_cast<unsigned long long>(books.producers_killed),
      static_cast<unsigned long long>(books.lock_increments), static_cast<unsigned long long>(books.holders_killed),
      now.processes, now.descriptors, now.shm, now.rss_kib);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  tandem::init(argc, argv);
  double minutes = 10, interval = 15;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--minutes") {
      minutes = std::stod(argv[i + 1]);
    } else if (flag == "--interval") {
      interval = std::stod(argv[i + 1]);
    } else {
      std::fprintf(stderr, "usage: tandem-soak [--minutes 10] [--interval 15]\n");
      return 2;
    }
  }
  // The crashing tasks must not flood the terminal with core-dump notes of their own.
  std::printf("tandem soak: %.1f minutes, a line every %.0f s\n", minutes, interval);
  Books books;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::ratio<60>>(minutes));
  Holdings baseline{};
  auto next_line = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(interval));
  while (Clock::now() < end || books.rounds == 0) {
    const tandem::StartMethod method = method_of(books.rounds);
    pool_round(method, books.rounds, books);
    queue_round(method, books.rounds, books);
    lock_round(method, books.rounds, books);
    thread_round(books);
    ++books.rounds;
    if (books.rounds == 1) baseline = settled_holdings({0, 0, 0, 0});  // after the first round: warm
    if (Clock::now() >= next_line) {
      print_line("  ", std::chrono::duration<double>(Clock::now() - start).count(), books, holdings());
      next_line += std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(interval));
    }
  }
  const Holdings final = settled_holdings(baseline);
  print_line("end", std::chrono::duration<double>(Clock::now() - start).count(), books, final);
  std::printf("baseline after round 1: processes %zu, fds %zu, shm %zu, rss %ld KiB\n", baseline.processes,
              baseline.descriptors, baseline.shm, baseline.rss_kib);
  bool ok = books.balanced();
  std::printf("queue: %llu items got, %llu confirmed put, %llu producers killed mid-way\n",
              static_cast<unsigned long long>(books.items_got), static_cast<unsigned long long>(books.items_put),
              static_cast<unsigned long long>(books.producers_killed));
  std::printf("books: results %llu + lost %llu + timed out %llu + raised %llu = %llu of %llu tasks: %s\n",
              static_cast<unsigned long long>(books.results), static_cast<unsigned long long>(books.lost),
              static_cast<unsigned long long>(books.timed_out), static_cast<unsigned long long>(books.raised),
              static_cast<unsigned long long>(books.results + books.lost + books.timed_out + books.raised),
              static_cast<unsigned long long>(books.tasks), books.balanced() ? "balanced" : "NOT BALANCED");
  for (const auto& mismatch : books.mismatches) std::printf("  mismatch: %s\n", mismatch.c_str());
  const long rss_margin_kib = 16 * 1024;  // allocator caches; a leak per round would be far above
  const bool held_back = final.processes <= baseline.processes && final.descriptors <= baseline.descriptors &&
                         final.shm <= baseline.shm && final.rss_kib <= baseline.rss_kib + rss_margin_kib;
  std::printf("holdings back to baseline (rss within %ld KiB): %s\n", rss_margin_kib, held_back ? "yes" : "NO");
  ok = ok && held_back;
  std::printf("%s\n", ok ? "SOAK PASSED" : "SOAK FAILED");
  return ok ? 0 : 1;
}
