// A single-producer, single-consumer ring of messages in memory shared by two processes.
//
// Each message is one frame: an 8-byte header {length, kind} and the payload padded to 8 bytes.
// A frame never wraps around the end: when it does not fit there, the producer writes a "wrap"
// frame and starts again at offset 0, so a consumer always reads a message in place. A message
// may therefore take up to half the ring (max_message()).
//
// Waking: each side sleeps on a futex word in the shared control block and says so in a flag;
// the other side pays for a futex_wake only when that flag is set.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <algorithm>
#include <chrono>
#include <span>
#include <thread>

#include "tandem/detail/futex.hpp"

namespace tandem::detail {

struct RingControl {
  alignas(64) std::atomic<std::uint64_t> head{0};  // bytes published by the producer
  std::atomic<std::uint32_t> data_seq{0};          // futex word: bumped when data arrives
  std::atomic<std::uint32_t> consumer_sleeping{0};
  alignas(64) std::atomic<std::uint64_t> tail{0};  // bytes released by the consumer
  std::atomic<std::uint32_t> space_seq{0};         // futex word: bumped when space frees up
  std::atomic<std::uint32_t> producer_sleeping{0};
};

class ByteRing {
 public:
  static constexpr std::size_t kFrameHeader = 8;

  ByteRing() = default;
  // `capacity` must be a power of two and a multiple of 8.
  ByteRing(RingControl* control, std::byte* data, std::size_t capacity) noexcept
      : control_(control), data_(data), capacity_(capacity) {}

  std::size_t capacity() const noexcept { return capacity_; }
  std::size_t max_message() const noexcept { return capacity_ / 2 - kFrameHeader; }
  bool empty() const noexcept {
    return control_->tail.load(std::memory_order_acquire) == control_->head.load(std::memory_order_acquire);
  }

  // Producer: room for a message of `n` bytes, to be filled and then published by commit();
  // the payload is 8-byte aligned. nullptr when there is no room now (nothing is written).
  std::byte* try_reserve(std::size_t n) noexcept {
    const std::size_t frame = kFrameHeader + padded(n);
    if (frame > capacity_ / 2) return nullptr;
    const std::uint64_t head = control_->head.load(std::memory_order_relaxed);
    const std::uint64_t tail = control_->tail.load(std::memory_order_acquire);
    const std::size_t offset = head & (capacity_ - 1);
    const std::size_t to_end = capacity_ - offset;
    const std::size_t skip = frame <= to_end ? 0 : to_end;
    if (head + skip + frame - tail > capacity_) return nullptr;
    if (skip != 0) write_header(offset, 0, kWrap);
    const std::size_t at = (head + skip) & (capacity_ - 1);
    write_header(at, static_cast<std::uint32_t>(n), kMessage);
    reserved_head_ = head + skip + frame;
    return data_ + at + kFrameHeader;
  }

  // Producer: publishes the message try_reserve() made room for.
  void commit() noexcept {
    control_->head.store(reserved_head_, std::memory_order_seq_cst);
    if (control_->consumer_sleeping.load(std::memory_order_seq_cst)) {
      control_->data_seq.fetch_add(1, std::memory_order_seq_cst);
      futex_wake_all(control_->data_seq);
    }
  }

  // Producer: try_reserve, copy, commit. Returns where the payload lies, or nullptr.
  std::byte* try_push(const void* payload, std::size_t n) noexcept {
    std::byte* at = try_reserve(n);
    if (!at) return nullptr;
    if (n != 0) std::memcpy(at, payload, n);
    commit();
    return at;
  }

  // Consumer: the oldest message, in place, until pop(); `empty` when there is none. A frame
  // that does not make sense (a peer that scribbled on the ring) gives `corrupt`.
  enum class Peek { message, empty, corrupt };
  Peek peek(std::span<const std::byte>& message) noexcept {
    std::uint64_t tail = control_->tail.load(std::memory_order_relaxed);
    for (;;) {
      const std::uint64_t head = control_->head.load(std::memory_order_seq_cst);
      if (tail == head) return Peek::empty;
      const std::size_t offset = tail & (capacity_ - 1);
      std::uint32_t header[2];
      std::memcpy(header, data_ + offset, sizeof header);
      if (header[1] == kWrap) {
        tail += capacity_ - offset;
        control_->tail.store(tail, std::memory_order_release);
        continue;
      }
      const std::size_t frame = kFrameHeader + padded(header[0]);
      if (header[1] != kMessage || frame > capacity_ - offset || tail + frame > head) return Peek::corrupt;
      message = {data_ + offset + kFrameHeader, header[0]};
      return Peek::message;
    }
  }

  // Consumer: releases the message peek() returned.
  void pop() noexcept {
    const std::uint64_t tail = control_->tail.load(std::memory_order_relaxed);
    std::uint32_t length = 0;
    std::memcpy(&length, data_ + (tail & (capacity_ - 1)), sizeof length);
    control_->tail.store(tail + kFrameHeader + padded(length), std::memory_order_seq_cst);
    if (control_->producer_sleeping.load(std::memory_order_seq_cst)) {
      control_->space_seq.fetch_add(1, std::memory_order_seq_cst);
      futex_wake_all(control_->space_seq);
    }
  }

  // Consumer: blocks until a message is there or `deadline` passes; spins for `spin` first.
  // `give_up()` is checked between naps: true ends the wait.
  template <class GiveUp>
  bool wait_for_message(std::chrono::microseconds spin, Clock::time_point deadline, GiveUp&& give_up) {
    return wait(spin, deadline, give_up, [this] { return !empty(); }, control_->data_seq, control_->consumer_sleeping);
  }

  // Producer: blocks until `n` bytes would fit (see wait_for_message).
  template <class GiveUp>
  bool wait_for_space(std::size_t n, std::chrono::microseconds spin, Clock::time_point deadline, GiveUp&& give_up) {
    return wait(spin, deadline, give_up, [this, n] { return fits(n); }, control_->space_seq,
                control_->producer_sleeping);
  }

  // Producer: whether a message of `n` bytes fits now.
  bool fits(std::size_t n) const noexcept {
    const std::size_t frame = kFrameHeader + padded(n);
    if (frame > capacity_ / 2) return false;
    const std::uint64_t head = control_->head.load(std::memory_order_relaxed);
    const std::uint64_t tail = control_->tail.load(std::memory_order_acquire);
    const std::size_t to_end = capacity_ - (head & (capacity_ - 1));
    return head + (frame <= to_end ? 0 : to_end) + frame - tail <= capacity_;
  }

 private:
  static constexpr std::uint32_t kMessage = 1;
  static constexpr std::uint32_t kWrap = 2;

  static std::size_t padded(std::size_t n) noexcept { return (n + 7) & ~std::size_t{7}; }

  void write_header(std::size_t offset, std::uint32_t length, std::uint32_t kind) noexcept {
    const std::uint32_t header[2] = {length, kind};
    std::memcpy(data_ + offset, header, sizeof header);
  }

  template <class GiveUp, class Ready>
  static bool wait(std::chrono::microseconds spin, Clock::time_point deadline, GiveUp& give_up, Ready ready,
                   std::atomic<std::uint32_t>& seq, std::atomic<std::uint32_t>& sleeping) {
    const auto start = Clock::now();
    const auto spin_end = start + spin;
    while (!ready()) {
      const auto now = Clock::now();
      if (now >= deadline) return ready();
      if (now < spin_end) {
        // A few microseconds of pure spinning catch a quick peer without a system call; after
        // that the core is offered to others between looks: on a machine with fewer cores than
        // busy processes, a spinner that kept its core would delay the peer it waits for.
        if (now - start < std::chrono::microseconds(5)) {
          for (int i = 0; i < 32; ++i) cpu_relax();
        } else {
          std::this_thread::yield();
        }
        continue;
      }
      if (give_up()) return ready();
      const std::uint32_t seen = seq.load(std::memory_order_seq_cst);
      sleeping.store(1, std::memory_order_seq_cst);
      if (!ready()) {
        // Naps are bounded so that give_up() (the peer died, a stop request) is seen in time.
        futex_wait(seq, seen, std::min(deadline, Clock::now() + std::chrono::milliseconds(100)));
      }
      sleeping.store(0, std::memory_order_relaxed);
    }
    return true;
  }

  RingControl* control_ = nullptr;
  std::byte* data_ = nullptr;
  std::size_t capacity_ = 0;
  std::uint64_t reserved_head_ = 0;  // producer: where commit() moves the head
};

}  // namespace tandem::detail
