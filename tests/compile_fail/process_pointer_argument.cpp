// Must not compile: a Process argument that holds an address. The child would follow the pointer
// into its own memory.
#include "tandem/process.hpp"

int main() {
  int x = 42;
  tandem::Process process([](int* value) { *value = 7; }, &x);
  process.start();
  process.join();
  return x;
}
