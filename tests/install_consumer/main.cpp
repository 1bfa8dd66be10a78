#include <tandem/thread_pool.hpp>

#include <cstdio>
#include <vector>

int main() {
  tandem::ThreadPool pool(2);
  const auto squares = pool.map([](int x) { return x * x; }, std::vector<int>{1, 2, 3});
  const bool ok = squares == std::vector<int>{1, 4, 9} && pool.submit([] { return 7; }).get() == 7;
  std::printf("consumer: tandem %s\n", ok ? "works" : "FAILED");
  return ok ? 0 : 1;
}
