// Must not compile: a lambda capturing a pointer, which means nothing in another process.
#include "tandem/process_pool.hpp"

int main() {
  tandem::ProcessPool pool(1);
  int x = 42;
  const int* p = &x;
  return pool.submit([p] { return *p; }).get();
}
