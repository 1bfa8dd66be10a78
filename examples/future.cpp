// Futures without a pool: Promise, then, wait_any, as_completed.
//   build/release/examples/future
#include <tandem/future.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

int main() {
  // A promise fulfilled by a plain thread; then() chains work on the result.
  tandem::Promise<int> promise;
  tandem::Future<int> answer = promise.get_future();
  tandem::Future<std::string> text = answer.then([](int v) { return "the answer is " + std::to_string(v); });
  std::jthread producer([&promise] {
    std::this_thread::sleep_for(20ms);
    promise.set_value(42);
  });
  std::printf("%s\n", text.get().c_str());

  // Three results arriving in reverse order: wait_any sees the first, as_completed all of them.
  std::vector<tandem::Promise<int>> promises(3);
  std::vector<tandem::Future<int>> futures;
  for (auto& p : promises) futures.push_back(p.get_future());
  std::jthread late([&promises] {
    for (int i = 2; i >= 0; --i) {
      std::this_thread::sleep_for(10ms);
      promises[static_cast<std::size_t>(i)].set_value(i * 100);
    }
  });
  std::printf("wait_any: future %zu finished first\n", tandem::wait_any(futures));
  for (tandem::Future<int>& done : tandem::as_completed(futures)) std::printf("as_completed: %d\n", done.get());

  // A promise dropped without a value never leaves its consumer hanging.
  tandem::Future<int> orphan = tandem::Promise<int>().get_future();
  try {
    orphan.get();
  } catch (const tandem::BrokenPromise& e) {
    std::printf("broken promise: %s\n", e.what());
  }
}
