// Test helper: a T in named shared memory that a task can reach in any worker process, whatever
// its start method: the task captures a SharedHandle (the segment's name, trivially copyable)
// and maps the segment on first use in each process. (Real programs would use tandem's
// shared-memory types; the tests keep to the pools under test.)
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>

namespace test_support {

// Per process: each maps a segment once. Names are never reused within a test program.
inline std::mutex attach_mutex;
inline std::map<std::string, void*> attached;
inline std::atomic<int> segments_created{0};

inline void* attach_shared(const char* name, std::size_t size) {
  std::lock_guard lock(attach_mutex);
  auto& mapped = attached;
  if (auto it = mapped.find(name); it != mapped.end()) return it->second;
  const int fd = ::shm_open(name, O_RDWR, 0);
  if (fd < 0) throw std::runtime_error(std::string("shm_open ") + name);
  void* memory = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (memory == MAP_FAILED) throw std::runtime_error("mmap failed");
  return mapped[name] = memory;
}

}  // namespace test_support

template <class T>
struct SharedHandle {
  char name[48];
  T* operator->() const { return static_cast<T*>(test_support::attach_shared(name, sizeof(T))); }
  T& operator*() const { return *operator->(); }
};

template <class T>
class SharedBlock {
 public:
  SharedBlock() {
    std::snprintf(handle_.name, sizeof handle_.name, "/tandem-test-%d-%d", static_cast<int>(::getpid()),
                  test_support::segments_created++);
    const int fd = ::shm_open(handle_.name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || ::ftruncate(fd, sizeof(T)) != 0) throw std::runtime_error("shm_open/ftruncate failed");
    ::close(fd);
    new (handle_.operator->()) T();
  }
  SharedBlock(const SharedBlock&) = delete;
  SharedBlock& operator=(const SharedBlock&) = delete;
  // The name goes; mappings stay valid until each process ends.
  ~SharedBlock() { ::shm_unlink(handle_.name); }

  SharedHandle<T> get() const noexcept { return handle_; }
  T* operator->() const { return handle_.operator->(); }

 private:
  SharedHandle<T> handle_;
};

// A one-shot gate that tasks wait on, opened by the test.
struct Gate {
  std::atomic<int> opened{0};
  void open() noexcept { opened.store(1); }
  void wait() const noexcept {
    while (opened.load() == 0) std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
};
