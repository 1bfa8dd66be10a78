// The pitfall diagnostics at work. A thread and a process take two locks in opposite orders, one
// after the other, so nothing hangs yet: tandem reports the inversion, with both code sites, at
// the acquisition that closes the cycle. Then a thread and a process really deadlock (a lock
// and a queue): the watchdog reports who waits for whom within a second, and the example breaks
// the deadlock by closing the queue. With Mode::abort (or TANDEM_DEADLOCK=abort) either finding
// would stop the program instead. Then the cures of starvation and livelock: two threads that
// retake a Lock at once let each other in less often than on a FairLock, which serves its waiters
// in arrival order; two pool tasks that each defer to the other ("after you") livelock, which
// the pool's stall report catches, and stepping aside for a Backoff pause cures it.
//
//   ./pitfalls
#include <tandem/backoff.hpp>
#include <tandem/diagnostics.hpp>
#include <tandem/event.hpp>
#include <tandem/fair_lock.hpp>
#include <tandem/lock.hpp>
#include <tandem/process.hpp>
#include <tandem/queue.hpp>
#include <tandem/start_method.hpp>
#include <tandem/thread.hpp>
#include <tandem/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

// Two threads take `lock` 2000 times each, in a tight loop; returns how often the holder changed.
template <class AnyLock>
int handovers(AnyLock lock) {
  std::vector<int> holders;
  std::atomic<int> ready{0};
  auto take_turns = [&](int me) {
    ready.fetch_add(1);
    while (ready.load() < 2) std::this_thread::yield();  // start together
    for (int i = 0; i < 2000; ++i) {
      tandem::LockGuard guard(lock);
      holders.push_back(me);
    }
  };
  std::thread a(take_turns, 0), b(take_turns, 1);
  a.join();
  b.join();
  int changes = 0;
  for (std::size_t i = 1; i < holders.size(); ++i) changes += holders[i] != holders[i - 1] ? 1 : 0;
  return changes;
}

// Two pool tasks that each want both locks and defer to the other while it wants them too.
// Insisting, each keeps wanting while it defers: once both want, neither ever goes first. Stepping aside, a task
// stops wanting for a Backoff pause, which lets the other through.
int courteous(tandem::Lock first, tandem::Lock second, std::atomic<int>& wanting, const std::atomic<bool>& stop,
              bool step_aside) {
  int done = 0;
  tandem::Backoff backoff;
  wanting.fetch_add(1);
  while (wanting.load() < 2) std::this_thread::yield();  // start together
  while (done < 100 && !stop.load()) {
    first.lock();
    if (wanting.load() == 1 && second.try_lock()) {  // alone: go
      ++done;
      second.unlock();
      first.unlock();
      backoff.reset();
      continue;
    }
    first.unlock();  // "after you"
    if (step_aside) {
      wanting.fetch_sub(1);
      backoff.pause();
      wanting.fetch_add(1);
    } else {
      std::this_thread::yield();
    }
  }
  wanting.fetch_sub(1);
  return done;
}

int livelock(bool step_aside) {
  tandem::Lock left("left"), right("right");
  std::atomic<int> wanting{0};
  std::atomic<bool> stop{false};
  tandem::ThreadPool pool(2);
  auto a = pool.submit([&] { return courteous(left, right, wanting, stop, step_aside); });
  auto b = pool.submit([&] { return courteous(right, left, wanting, stop, step_aside); });
  if (!step_aside) {
    // Once both want the locks, insisting tasks never end: stop them when the stall is reported.
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    auto stalled = [] {
      for (const auto& report : tandem::diagnostics::reports()) {
        if (report.finding == tandem::diagnostics::Finding::stall) return true;
      }
      return false;
    };
    while (!stalled() && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    stop = true;
  }
  return a.get() + b.get();
}

int main(int argc, char** argv) {
  tandem::init(argc, argv);
  // Findings go to stderr and to diagnostics::reports(). A pool that finishes nothing for 300 ms
  // is reported as stalled (the default is 2 s).
  tandem::diagnostics::enable({.stall_threshold = std::chrono::milliseconds(300)});

  // 1. A potential deadlock: "accounts" then "audit" here, "audit" then "accounts" there.
  tandem::Lock accounts("accounts"), audit("audit");
  tandem::Thread clerk(
      [](tandem::Lock a, tandem::Lock b) {
        tandem::LockGuard first(a);
        tandem::LockGuard second(b);
      },
      accounts, audit);
  clerk.start();
  clerk.join();
  tandem::Process auditor(
      [](tandem::Lock a, tandem::Lock b) {
        tandem::LockGuard first(b);
        tandem::LockGuard second(a);
      },
      accounts, audit);
  auditor.start();
  auditor.join();

  // 2. A deadlock: the thread holds the ledger and waits for a job; the process, the only one
  // that puts jobs, waits for the ledger.
  tandem::Lock ledger("ledger");
  tandem::Queue<int> jobs(tandem::QueueOptions{.name = "jobs"});
  tandem::Event holding;
  tandem::Thread worker(
      [](tandem::Lock l, tandem::Queue<int> q, tandem::Event h) {
        q.get();
        tandem::LockGuard guard(l);
        h.set();
        try {
          q.get();
        } catch (const tandem::QueueClosed&) {
          std::puts("worker: the queue was closed, giving the ledger back");
        }
      },
      ledger, jobs, holding);
  tandem::Process producer(
      [](tandem::Lock l, tandem::Queue<int> q, tandem::Event h) {
        q.put(1);
        h.wait();
        tandem::LockGuard guard(l);
      },
      ledger, jobs, holding);
  worker.start();
  producer.start();
  holding.wait();
  while (tandem::diagnostics::reports().size() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  jobs.close();
  worker.join();
  producer.join();

  // 3. Starvation's cure: how often the lock changed hands in 4000 acquisitions.
  std::printf("Lock: %d handovers; FairLock: %d handovers\n", handovers(tandem::Lock("turns")),
              handovers(tandem::FairLock("fair turns")));

  // 4. A livelock, reported as a pool stall, and its cure.
  std::printf("insisting: %d transactions\n", livelock(false));
  std::printf("stepping aside with Backoff: %d transactions\n", livelock(true));
  std::printf("%zu findings; the program ends normally\n", tandem::diagnostics::reports().size());
}
