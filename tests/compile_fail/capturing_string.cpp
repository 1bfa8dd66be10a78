// Must not compile: a lambda capturing a std::string. Its state is invisible to the compiler, so
// it cannot be sent to a worker process; ctest checks that the compiler says so in tandem's words.
#include <string>

#include "tandem/process_pool.hpp"

int main() {
  tandem::ProcessPool pool(1);
  const std::string name = "x";
  return static_cast<int>(pool.submit([name] { return name.size(); }).get());
}
