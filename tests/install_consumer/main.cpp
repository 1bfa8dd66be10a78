#include <tandem/lock.hpp>
#include <tandem/queue.hpp>
#include <tandem/thread_pool.hpp>

#include <cstdio>
#include <vector>

int main() {
  tandem::ThreadPool pool(2);
  const auto squares = pool.map([](int x) { return x * x; }, std::vector<int>{1, 2, 3});
  tandem::Queue<int> queue;
  tandem::Lock lock;
  pool.submit([queue, lock]() mutable {
        tandem::LockGuard guard(lock);
        queue.put(7);
      }).get();
  const bool ok = squares == std::vector<int>{1, 4, 9} && queue.get() == 7;
  std::printf("consumer: tandem %s\n", ok ? "works" : "FAILED");
  return ok ? 0 : 1;
}
