// A single-producer, single-consumer ring of messages in memory shared by two processes.
//
// Each message is one frame: an 8-byte header {length, kind} and the payload padded to 8 bytes.
// A frame never wraps around the end: when it does not fit there, the producer writes a "wrap"
// frame and starts again at offset 0, so a consumer always reads a message in place. A message
// may therefore take up to half the ring (max_message()).
//
// The other side is not trusted: it may be a process whose task scribbles over the ring. So each
// side keeps its own position privately (the shared word is only published for the peer), and
// what it reads of the peer (its position, a frame header) is checked before it is used: a peer
// position behind ours or more than a ring ahead, a frame that does not fit, a wrap where none
// can be: each is `corrupt`, never a loop, a read out of bounds or a wait for ever.
//
// Waking: each side sleeps on a futex word in the shared control block and says so in a flag;
// the other side pays for a futex_wake only when that flag is set.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
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
  // `capacity` must be a power of two and a multiple of 8. Both positions start where the
  // shared words say (a fresh ring: 0).
  ByteRing(RingControl* control, std::byte* data, std::size_t capacity) noexcept
      : control_(control),
        data_(data),
        capacity_(capacity),
        head_(control->head.load(std::memory_order_acquire)),
        tail_(control->tail.load(std::memory_order_acquire)) {}

  std::size_t capacity() const noexcept { return capacity_; }
  std::size_t max_message() const noexcept { return capacity_ / 2 - kFrameHeader; }

  // ---- producer ----

  enum class Room { ok, full, corrupt };

  // Room for a message of `n` bytes, to be filled at `at` and then published by commit(); the
  // payload is 8-byte aligned. `full` when there is no room now, `corrupt` when the consumer's
  // position makes no sense (nothing is written then).
  Room reserve(std::size_t n, std::byte*& at) noexcept {
    const std::size_t frame = kFrameHeader + padded(n);
    if (frame > capacity_ / 2) return Room::full;
    const std::uint64_t tail = control_->tail.load(std::memory_order_acquire);
    if (!plausible(head_, tail)) return Room::corrupt;
    const std::size_t offset = head_ & (capacity_ - 1);
    const std::size_t to_end = capacity_ - offset;
    const std::size_t skip = frame <= to_end ? 0 : to_end;
    if (head_ + skip + frame - tail > capacity_) return Room::full;
    if (skip != 0) write_header(offset, 0, kWrap);
    const std::size_t position = (head_ + skip) & (capacity_ - 1);
    write_header(position, static_cast<std::uint32_t>(n), kMessage);
    reserved_head_ = head_ + skip + frame;
    at = data_ + position + kFrameHeader;
    return Room::ok;
  }

  // Publishes the message reserve() made room for.
  void commit() noexcept {
    head_ = reserved_head_;
    control_->head.store(head_, std::memory_order_seq_cst);
    if (control_->consumer_sleeping.load(std::memory_order_seq_cst)) {
      control_->data_seq.fetch_add(1, std::memory_order_seq_cst);
      futex_wake_all(control_->data_seq);
    }
  }

  // reserve, copy, commit.
  Room push(const void* payload, std::size_t n) noexcept {
    std::byte* at = nullptr;
    const Room room = reserve(n, at);
    if (room != Room::ok) return room;
    if (n != 0) std::memcpy(at, payload, n);
    commit();
    return Room::ok;
  }

  // Whether a message of `n` bytes fits now; true also when the ring is corrupt, so that a
  // waiter wakes and reserve() says so.
  bool fits(std::size_t n) const noexcept {
    const std::size_t frame = kFrameHeader + padded(n);
    if (frame > capacity_ / 2) return false;
    const std::uint64_t tail = control_->tail.load(std::memory_order_acquire);
    if (!plausible(head_, tail)) return true;
    const std::size_t to_end = capacity_ - (head_ & (capacity_ - 1));
    return head_ + (frame <= to_end ? 0 : to_end) + frame - tail <= capacity_;
  }

  // Where the producer has published up to, and where the consumer says it has taken up to.
  std::uint64_t producer_position() const noexcept { return head_; }
  std::uint64_t consumer_position() const noexcept { return control_->tail.load(std::memory_order_acquire); }

  // Blocks until `n` bytes would fit (see wait_for_message).
  template <class GiveUp>
  bool wait_for_space(std::size_t n, std::chrono::microseconds spin, Clock::time_point deadline, GiveUp&& give_up) {
    return wait(spin, deadline, give_up, [this, n] { return fits(n); }, control_->space_seq,
                control_->producer_sleeping);
  }

  // ---- consumer ----

  // The oldest message, in place, until pop(); `empty` when there is none. Anything that does
  // not make sense gives `corrupt`.
  enum class Peek { message, empty, corrupt };
  Peek peek(std::span<const std::byte>& message) noexcept {
    const std::uint64_t head = own_head_ ? head_ : control_->head.load(std::memory_order_seq_cst);
    if (!plausible(head, tail_)) return Peek::corrupt;
    if (head == tail_) return Peek::empty;
    std::uint64_t at = tail_;
    std::size_t offset = at & (capacity_ - 1);
    std::uint32_t header[2];
    std::memcpy(header, data_ + offset, sizeof header);
    if (header[1] == kWrap) {
      // Only where a frame of up to half the ring could not fit before the end: after one, the
      // next frame starts at offset 0, where no wrap can be.
      if (offset == 0 || capacity_ - offset >= capacity_ / 2 || head - at < capacity_ - offset) return Peek::corrupt;
      at += capacity_ - offset;
      if (head == at) return Peek::empty;  // the producer is between its wrap and its frame
      offset = 0;
      std::memcpy(header, data_, sizeof header);
    }
    const std::size_t frame = kFrameHeader + padded(header[0]);
    if (header[1] != kMessage || frame > capacity_ / 2 || frame > capacity_ - offset || head - at < frame) {
      return Peek::corrupt;
    }
    peeked_tail_ = at + frame;
    message = {data_ + offset + kFrameHeader, header[0]};
    return Peek::message;
  }

  // Releases the message peek() returned (as peek() measured it: the header may have changed).
  void pop() noexcept {
    tail_ = peeked_tail_;
    control_->tail.store(tail_, std::memory_order_seq_cst);
    if (control_->producer_sleeping.load(std::memory_order_seq_cst)) {
      control_->space_seq.fetch_add(1, std::memory_order_seq_cst);
      futex_wake_all(control_->space_seq);
    }
  }

  bool empty() const noexcept { return control_->head.load(std::memory_order_acquire) == tail_; }

  // Blocks until a message is there or `deadline` passes; spins for `spin` first.
  // `give_up()` is checked between naps: true ends the wait.
  template <class GiveUp>
  bool wait_for_message(std::chrono::microseconds spin, Clock::time_point deadline, GiveUp&& give_up) {
    return wait(spin, deadline, give_up, [this] { return !empty(); }, control_->data_seq, control_->consumer_sleeping);
  }

  // A consumer's view of this ring, from where the consumer published it was: for the producer,
  // to read back what a consumer that died had not taken. Its first peek() checks that position;
  // the end is the producer's own head, not the shared word (which the consumer could write).
  ByteRing as_consumer() const noexcept {
    ByteRing view = *this;
    view.tail_ = control_->tail.load(std::memory_order_acquire);
    view.own_head_ = true;
    return view;
  }

 private:
  static constexpr std::uint32_t kMessage = 1;
  static constexpr std::uint32_t kWrap = 2;

  static std::size_t padded(std::size_t n) noexcept { return (n + 7) & ~std::size_t{7}; }

  // Positions an honest pair can have: frames are 8-byte aligned, and the producer is at most a
  // ring ahead of the consumer. (A consumer position read from the shared word, as_consumer(),
  // may be anything.)
  bool plausible(std::uint64_t head, std::uint64_t tail) const noexcept {
    return ((head | tail) & 7) == 0 && tail <= head && head - tail <= capacity_;
  }

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
  std::uint64_t head_ = 0;           // producer: what it has published
  std::uint64_t reserved_head_ = 0;  // producer: where commit() moves the head
  std::uint64_t tail_ = 0;           // consumer: what it has released
  std::uint64_t peeked_tail_ = 0;    // consumer: where pop() moves the tail
  bool own_head_ = false;            // as_consumer(): the end is head_, this side's own
};

}  // namespace tandem::detail
