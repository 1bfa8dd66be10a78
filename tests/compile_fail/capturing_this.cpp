// Must not compile: a lambda capturing `this` (an address in the caller's memory).
#include <vector>

#include "tandem/process_pool.hpp"

struct Model {
  int scale = 3;
  std::vector<int> apply(tandem::ProcessPool& pool, const std::vector<int>& xs) {
    return pool.map([this](int x) { return x * scale; }, xs);
  }
};

int main() {
  tandem::ProcessPool pool(1);
  Model model;
  return static_cast<int>(model.apply(pool, {1, 2, 3}).size());
}
