// Test helper: a T in anonymous shared memory, created before a pool forks its workers, so a
// task on a ThreadPool and a task in a ProcessPool worker both reach the same object through a
// captured pointer. (Real programs would use tandem's shared-memory types; tests keep to the
// pools under test.)
#pragma once

#include <sys/mman.h>

#include <atomic>
#include <chrono>
#include <new>
#include <stdexcept>
#include <thread>

template <class T>
class SharedBlock {
 public:
  SharedBlock() {
    void* memory = ::mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) throw std::runtime_error("mmap failed");
    value_ = new (memory) T();
  }
  SharedBlock(const SharedBlock&) = delete;
  SharedBlock& operator=(const SharedBlock&) = delete;
  ~SharedBlock() {
    value_->~T();
    ::munmap(value_, sizeof(T));
  }
  T* get() const noexcept { return value_; }
  T* operator->() const noexcept { return value_; }

 private:
  T* value_;
};

// A one-shot gate that tasks wait on, opened by the test.
struct Gate {
  std::atomic<int> opened{0};
  void open() noexcept { opened.store(1); }
  void wait() const noexcept {
    while (opened.load() == 0) std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
};
