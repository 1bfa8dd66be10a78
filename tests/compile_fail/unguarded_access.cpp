// Touching data guarded by a tandem::Lock without holding it: clang's -Wthread-safety must reject
// this (the test compiles it with -Werror and expects the diagnostic).
#include "tandem/lock.hpp"

struct Account {
  tandem::Lock lock;
  long balance TANDEM_GUARDED_BY(lock) = 0;

  void deposit(long amount) {
    tandem::LockGuard guard(lock);
    balance += amount;  // fine: held
  }
  void steal(long amount) { balance -= amount; }  // not held: the error this test expects
};

int main() {
  Account account;
  account.deposit(10);
  account.steal(5);
}
