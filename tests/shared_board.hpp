// Test helper: a Board (whatever the agents of a test share: counters, flags) in anonymous shared
// memory, which reaches threads and processes alike as an argument, and the lost-update workload
// that every lock must make exact.
//
//   tandem::SharedMemory memory = test_support::make_board<Board>();
//   test_support::board<Board>(memory).counter
#pragma once

#include <atomic>
#include <mutex>
#include <new>
#include <thread>

#include "tandem/shared_memory.hpp"

namespace test_support {

template <class Board>
Board& board(const tandem::SharedMemory& memory) {
  return *reinterpret_cast<Board*>(memory.data());
}

template <class Board>
tandem::SharedMemory make_board() {
  tandem::SharedMemory memory(sizeof(Board));
  new (memory.data()) Board{};
  return memory;
}

// Three agents meet on Board::arrived, so that they contend, then each adds 1 to Board::counter
// `times` times under `lock`, by a read-modify-write wide enough to lose updates without it.
template <class Board, class L>
void increment_under_lock(L lock, tandem::SharedMemory memory, int times) {
  long& counter = board<Board>(memory).counter;
  board<Board>(memory).arrived.fetch_add(1);
  while (board<Board>(memory).arrived.load() < 3) std::this_thread::yield();
  for (int i = 0; i < times; ++i) {
    std::lock_guard guard(lock);
    const long seen = counter;
    for (int spin = 0; spin < 20; ++spin) asm volatile("" ::: "memory");  // widen the window
    counter = seen + 1;
  }
}

}  // namespace test_support
