// A Synchronized of a type that cannot live in shared memory must say to choose Sharing::threads,
// not silently become a threads-only object.
#include <vector>

#include "tandem/synchronized.hpp"

int main() {
  tandem::Synchronized<std::vector<int>> numbers;
  return static_cast<int>(numbers.copy().size());
}
