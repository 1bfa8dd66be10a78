// Must not compile: a Process running a lambda that captures a reference, under any start method
// (the method is chosen at run time, so the rule cannot depend on it). Under forkserver or spawn
// the child would read memory that is not the caller's `x`.
#include "tandem/process.hpp"

int main() {
  int x = 42;
  tandem::Process process(tandem::ProcessOptions{.start_method = tandem::StartMethod::fork}, [&x] { x = 7; });
  process.start();
  process.join();
  return x;
}
