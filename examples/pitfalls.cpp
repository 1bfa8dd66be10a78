// The pitfall diagnostics at work. A thread and a process take two locks in opposite orders, one
// after the other, so nothing hangs yet: tandem reports the inversion, with both code sites, at
// the acquisition that closes the cycle. Then a thread and a process really deadlock (a lock
// and a queue): the watchdog reports who waits for whom within a second, and the example breaks
// the deadlock by closing the queue. With Mode::abort (or TANDEM_DEADLOCK=abort) either finding
// would stop the program instead.
//
//   ./pitfalls
#include <tandem/diagnostics.hpp>
#include <tandem/event.hpp>
#include <tandem/lock.hpp>
#include <tandem/process.hpp>
#include <tandem/queue.hpp>
#include <tandem/start_method.hpp>
#include <tandem/thread.hpp>

#include <chrono>
#include <cstdio>
#include <thread>

int main(int argc, char** argv) {
  tandem::init(argc, argv);
  tandem::diagnostics::enable();  // findings go to stderr and to diagnostics::reports()

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
  std::printf("%zu findings; the program ends normally\n", tandem::diagnostics::reports().size());
}
