// Must not compile: a lambda capturing a reference. Copied into a worker process, it would read
// the worker's own copy of `x` (under forkserver or spawn, not the caller's 42 at all).
#include "tandem/process_pool.hpp"

int main() {
  tandem::ProcessPool pool(1);
  int x = 42;
  return pool.submit([&x] { return x; }).get();
}
