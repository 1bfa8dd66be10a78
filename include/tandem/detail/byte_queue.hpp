// The machinery under Queue<T>, JoinableQueue<T> and Pipe<T>: a bounded multi-producer,
// multi-consumer queue of byte strings in shared memory.
//
// The ring is an array of 64-byte slots, each with a sequence number (Dmitry Vyukov's bounded
// MPMC queue, extended to items that span several consecutive slots). A producer claims slots
// by advancing `tail` with one compare-and-swap once it has seen them all free for this lap,
// copies its bytes in, and publishes by setting the first slot's sequence; a consumer claims an
// item by advancing `head` past it, copies it out and frees its slots for the next lap. No lock
// is held while bytes are copied, so producers and consumers on different cores proceed in
// parallel. Waiting is spin-then-futex on event counts that are touched only when somebody
// sleeps.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "tandem/detail/codec.hpp"
#include "tandem/detail/futex.hpp"
#include "tandem/detail/process_identity.hpp"
#include "tandem/detail/robust_mutex.hpp"
#include "tandem/detail/shared_state.hpp"
#include "tandem/detail/tracking.hpp"

namespace tandem::detail {

// How producers and consumers wake each other. A notifier publishes its change with a release
// store and then looks for sleepers with a plain load: no full barrier, which would cost a
// stall per item. That load may run before the store is visible to other cores, so a sleeper
// registering at that instant could be missed. Sleepers therefore stay registered for their
// whole wait, and their first nap is short (kFirstNap): by the time they look again, such a
// store has long been visible (a store buffer drains in nanoseconds), and from then on every
// notifier sees the registration. A missed wake-up costs at most kFirstNap, and only in that
// race; when nobody sleeps, a notification is one load.
struct EventCount {
  static constexpr std::chrono::microseconds kFirstNap{500};

  std::atomic<std::uint32_t> epoch{0};
  std::atomic<std::uint32_t> sleepers{0};

  // After a release store of the state that sleepers wait on.
  void notify_all() noexcept {
    std::atomic_signal_fence(std::memory_order_seq_cst);  // keeps the compiler from hoisting the load
    if (sleepers.load(std::memory_order_relaxed) != 0) wake_all();
  }
  void wake_all() noexcept {
    epoch.fetch_add(1, std::memory_order_seq_cst);
    futex_wake_all(epoch);
  }
};

struct QueueState {
  static constexpr std::uint32_t kTag = 0x51554555;  // "QUEU"
  static constexpr std::size_t kSlotBytes = 64;

  QueueState(std::uint64_t slots, std::uint64_t max_items, bool is_joinable, std::string_view queue_name)
      : slot_count(slots), maxsize(max_items), joinable(is_joinable), name(queue_name) {}

  const std::uint64_t slot_count;  // a power of two
  const std::uint64_t maxsize;     // 0: as many items as fit
  const bool joinable;
  alignas(64) std::atomic<std::uint64_t> tail{0};
  alignas(64) std::atomic<std::uint64_t> head{0};
  alignas(64) EventCount items_ready;
  alignas(64) EventCount space_ready;
  alignas(64) std::atomic<std::uint64_t> items{0};  // counted only when maxsize > 0
  std::atomic<std::uint32_t> closed{0};
  std::atomic<std::uint64_t> refused_bytes{0};  // the size of the last item refused as never fitting
  std::atomic<std::uint32_t> unfinished{0};  // JoinableQueue: put and not yet task_done
  const std::uint64_t key = new_object_key();  // names the queue in the diagnostics
  const ObjectName name;

  // The processes that used the queue, by the small index (1..kProcessSlots; 0: unknown) they
  // write beside the slots they hold, so that a waiter can tell a dead holder from a slow one.
  static constexpr int kProcessSlots = 127;
  alignas(64) RobustMutex processes_mutex{RobustMutex::Kind::plain};
  ProcessIdentity processes[kProcessSlots + 1] = {};
};

// A slot's record: four per cache line. `sequence` holds the low 32 bits of the position the
// slot is free for (position) or full at (position + 1); a ring has far fewer than 2^31 slots,
// so the difference of two such values is exact. Its fields are atomic because a consumer may
// read a record that a later lap is rewriting (its claim then fails and it looks again). Items
// of up to kInlineBytes live in the record itself, the slot's 64 bytes untouched; a larger one
// takes max(1, ceil(bytes / 64)) consecutive slots.
struct SlotMeta {
  static constexpr std::size_t kInlineBytes = 8;
  std::atomic<std::uint32_t> sequence;
  std::atomic<std::uint32_t> bytes;  // the item's size, in its first slot
  std::byte inline_bytes[kInlineBytes];
};
static_assert(sizeof(SlotMeta) == 16);

class ByteQueue {
 public:
  // A queue holding up to `capacity_bytes` of items (rounded up to a power of two of slots).
  static ByteQueue create(std::size_t capacity_bytes, std::size_t maxsize, bool joinable, std::string_view name);
  static ByteQueue decode(ByteReader& in);
  void encode(ByteWriter& out) const { state_.encode(out); }

  // Copies `item` in. False if `deadline` passed first; QueueClosed if the queue is (or gets)
  // closed; tandem::Error if the item can never fit.
  bool put(std::span<const std::byte> item, Clock::time_point deadline);
  // Hands the next item's bytes to `consume(context, bytes)`, valid during the call only. False
  // if `deadline` passed first; QueueClosed if the queue is closed and empty.
  using Consumer = void (*)(void* context, std::span<const std::byte> bytes);
  bool get(Consumer consume, void* context, Clock::time_point deadline);

  void close();
  bool closed() const noexcept { return state_->closed.load(std::memory_order_acquire) != 0; }
  bool empty() const noexcept;
  // Snapshots, exact while no put or get is under way (see Queue::qsize).
  std::size_t item_count() const noexcept;
  bool full() const noexcept;
  std::size_t capacity_bytes() const noexcept { return static_cast<std::size_t>(slot_count_) * QueueState::kSlotBytes; }
  bool joinable() const noexcept { return joinable_; }
  // The size of the last item a put refused because it can never fit (0: none).
  std::uint64_t refused_bytes() const noexcept { return state_->refused_bytes.load(std::memory_order_relaxed); }

  void task_done();
  bool join(Clock::time_point deadline);

 private:
  explicit ByteQueue(SharedState<QueueState> state);
  enum class Claim { claimed, full, too_many_items };
  Claim try_claim(std::uint64_t slots, std::uint64_t& position);
  // The item at `position` spans `slots` and holds `bytes` (checked: at most slots * 64).
  bool try_take(std::uint64_t& position, std::uint64_t& slots, std::size_t& bytes);
  bool nothing_in_flight() const noexcept;
  // This process's index in the queue's process table (registered on first use, again after a
  // fork); 0 when the table is full.
  std::uint8_t my_index();
  bool holder_is_dead(std::uint8_t index) const;
  // A waiter that has waited a while: frees the slots a dead producer claimed at `head` without
  // publishing, or that dead consumers took without freeing. True if it freed any.
  bool free_slots_of_dead_producer();
  bool free_slots_of_dead_consumers();
  // A consumer killed between marking the item at head and taking it left a mark that stops the
  // others: cleared once its owner is dead. True if it cleared one.
  bool clear_dead_take_mark();
  void release(std::uint64_t position, std::uint64_t slots) noexcept;
  SlotMeta& meta(std::uint64_t position) const noexcept { return meta_[position & mask_]; }
  std::byte* slot_data(std::uint64_t position) const noexcept {
    return data_ + (position & mask_) * QueueState::kSlotBytes;
  }

  SharedState<QueueState> state_;
  // Copies of the shape, checked once when the handle is made: another process could change the
  // shared ones afterwards, and every bound below relies on them.
  std::uint64_t slot_count_ = 0;
  std::uint64_t maxsize_ = 0;
  bool joinable_ = false;
  SlotMeta* meta_ = nullptr;
  // Per slot: the index of the producer that claimed it and has not published yet, and (on an
  // item's first slot) of the consumer that took it and has not freed it yet.
  std::uint8_t* writers_ = nullptr;
  std::uint8_t* readers_ = nullptr;
  std::byte* data_ = nullptr;
  std::uint64_t mask_ = 0;
  std::uint64_t index_cache_ = 0;  // (fork generation + 1) << 8 | index, accessed atomically
};

}  // namespace tandem::detail
