// Locks and shared values between processes: a Synchronized counter, a Value under its RLock,
// and what happens when a process dies holding a Lock: the next locker is told (OwnerDied),
// repairs, and goes on, where Python's multiprocessing.Lock would hang forever.
//
//   ./locks
#include <signal.h>

#include <tandem/array.hpp>
#include <tandem/barrier.hpp>
#include <tandem/lock.hpp>
#include <tandem/process.hpp>
#include <tandem/synchronized.hpp>
#include <tandem/value.hpp>

#include <chrono>
#include <cstdio>
#include <vector>

struct Account {
  long balance;
  long operations;
};

int main() {
  // Data reachable only under its lock, shared by four processes.
  tandem::Synchronized<Account> account(Account{0, 0});
  tandem::Barrier start(4);
  std::vector<tandem::Process> clerks;
  for (int i = 0; i < 4; ++i) {
    clerks.emplace_back([](tandem::Synchronized<Account> a, tandem::Barrier b) {
      b.wait();  // all four at once
      for (int n = 0; n < 10'000; ++n) {
        a.with_lock([](Account& acc) {
          acc.balance += 3;
          ++acc.operations;
        });
      }
    }, account, start);
    clerks.back().start();
  }
  for (auto& c : clerks) c.join();
  const Account total = account.copy();
  std::printf("balance %ld after %ld operations (expected 120000 after 40000)\n", total.balance, total.operations);

  // Value and Array: Python's multiprocessing.Value and Array.
  tandem::Value<double> temperature(20.5);
  tandem::Array<int> histogram(4);
  tandem::Process sensor([](tandem::Value<double> t, tandem::Array<int> h) {
    t.store(t.load() + 1.0);
    h.with_lock([](std::span<int> bins) { ++bins[2]; });
  }, temperature, histogram);
  sensor.start();
  sensor.join();
  std::printf("temperature %.1f, histogram bin 2 = %d\n", temperature.load(), histogram.load(2));

  // A holder that dies: the next locker gets OwnerDied, holding the lock.
  tandem::Lock lock;
  tandem::Process doomed([](tandem::Lock l) {
    l.lock();
    ::raise(SIGKILL);  // dies holding it
  }, lock);
  doomed.start();
  doomed.join();
  try {
    if (lock.try_lock_for(std::chrono::seconds(5))) lock.unlock();
  } catch (const tandem::OwnerDied&) {
    std::printf("the previous holder died: repairing, then going on\n");
    lock.mark_consistent();
    lock.unlock();
  }
  tandem::LockGuard guard(lock);
  std::printf("the lock works again\n");
}
