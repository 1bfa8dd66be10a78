// The pool everyone writes first: one mutex, one condition variable, one std::queue of
// std::function, two workers. The floor BRIEF §5 calls "a naive mutex+condvar pool".
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

#include "peers.hpp"

namespace tandem::bench {
namespace {

class NaivePool {
 public:
  explicit NaivePool(int workers) {
    for (int i = 0; i < workers; ++i) {
      threads_.emplace_back([this] {
        for (;;) {
          std::function<void()> task;
          {
            std::unique_lock lock(mutex_);
            ready_.wait(lock, [this] { return stop_ || !tasks_.empty(); });
            if (tasks_.empty()) return;
            task = std::move(tasks_.front());
            tasks_.pop();
          }
          task();
          std::lock_guard lock(mutex_);
          if (--pending_ == 0) idle_.notify_all();
        }
      });
    }
  }
  ~NaivePool() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    ready_.notify_all();
    for (auto& t : threads_) t.join();
  }
  void post(std::function<void()> task) {
    {
      std::lock_guard lock(mutex_);
      tasks_.push(std::move(task));
      ++pending_;
    }
    ready_.notify_one();
  }
  void wait() {
    std::unique_lock lock(mutex_);
    idle_.wait(lock, [this] { return pending_ == 0; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_, idle_;
  std::queue<std::function<void()>> tasks_;
  std::size_t pending_ = 0;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace

double naive_pool_burst(std::size_t tasks) {
  NaivePool pool(2);
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < tasks; ++i) pool.post([] {});
  pool.wait();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace tandem::bench
