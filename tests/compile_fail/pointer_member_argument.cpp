// Must not compile: a trivially copyable struct whose field is a pointer, passed as an argument.
// Its bytes would travel, and the pointer would point into the worker's own memory.
#include "tandem/process_pool.hpp"

struct Slice {
  const double* data;
  int length;
};

int main() {
  tandem::ProcessPool pool(1);
  const double values[] = {1.0, 2.0};
  return pool.submit([](Slice s) { return s.length; }, Slice{values, 2}).get();
}
