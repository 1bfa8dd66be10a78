// Must not compile: a type with neither trivially copyable bytes nor a cereal serialize()
// cannot travel as an argument.
#include <memory>

#include "tandem/process_pool.hpp"

struct Handle {
  std::unique_ptr<int> owned;
};

int main() {
  tandem::ProcessPool pool(1);
  return pool.submit([](const Handle& h) { return h.owned ? 1 : 0; }, Handle{}).get();
}
