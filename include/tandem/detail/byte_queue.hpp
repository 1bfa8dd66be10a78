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

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
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

  // A Pipe's direction (pipe.hpp): the live Connection objects of the end that receives from it
  // ([0]) and of the end that sends into it ([1]), per process index; and those on their way to
  // another process (encoded and not yet decoded, or in a fork being made), per the index of the
  // process they leave. Once either end has none left in a live process, the direction closes.
  std::atomic<std::uint32_t> counts_pipe_ends{0};
  std::atomic<std::uint32_t> pipe_holders[2][kProcessSlots + 1] = {};
  std::atomic<std::uint32_t> pipe_in_transit[2][kProcessSlots + 1] = {};
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
  // Batches (Queue::put_many, get_many): producers and consumers meet once per batch, not once
  // per item. put_some copies in the longest prefix of `items` (up to kMostPerBatch) that fits,
  // in one claim, waiting until `deadline` only while not even the first item fits; it returns
  // how many went in. get_some hands up to `most` items (at most kMostPerBatch) to `consume` in
  // order, waiting only while there is none; it returns how many.
  static constexpr std::size_t kMostPerBatch = 256;
  std::size_t put_some(std::span<const std::span<const std::byte>> items, Clock::time_point deadline);
  std::size_t get_some(Consumer consume, void* context, std::size_t most, Clock::time_point deadline);

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

  // A Pipe's direction (see QueueState): which end of the pipe a Connection holds it as.
  enum class PipeRole : int { receiver = 0, sender = 1 };
  void count_pipe_ends() { state_->counts_pipe_ends.store(1, std::memory_order_release); }
  // One more Connection of `role` in this process; returns this process's index, for the drop.
  std::uint8_t add_pipe_holder(PipeRole role);
  // One fewer (of the process at `index`); closes the direction if that end is now gone.
  void drop_pipe_holder(PipeRole role, std::uint8_t index);
  // A Connection of `role` leaves this process (encoded, or inherited by a fork being made);
  // returns this process's index, which travels with it to arrive_pipe_holder.
  std::uint8_t send_pipe_holder_away(PipeRole role);
  // It arrived here: counted as held here, then no longer in transit from `from`. Returns this
  // process's index.
  std::uint8_t arrive_pipe_holder(PipeRole role, std::uint8_t from);
  // Closes the direction of a pipe once either end has no holder in a live process. True if it
  // is closed.
  bool close_if_a_pipe_end_is_gone();

 private:
  explicit ByteQueue(SharedState<QueueState> state);
  enum class Claim { claimed, full, too_many_items };
  // `slots` consecutive slots for `count` items (counted against maxsize).
  Claim try_claim(std::uint64_t slots, std::uint64_t count, std::uint64_t& position);
  void check_fits(std::size_t bytes);
  void mark_claimed(std::uint64_t position, std::size_t bytes, std::uint8_t index);
  void copy_in(std::uint64_t position, std::span<const std::byte> item);
  void publish(std::uint64_t position, std::span<const std::span<const std::byte>> items);
  struct TakenItem {
    std::uint64_t position, slots;
    std::size_t bytes;
  };
  std::size_t try_take_some(std::size_t most, TakenItem* taken);
  void read_out(std::uint64_t position, std::size_t bytes, Consumer consume, void* context);
  void free_taken(std::uint64_t position, std::uint64_t slots) noexcept;
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

// One Connection object's hold on its end of a Pipe: the directions it receives from and sends
// into, counted in their shared memory (QueueState's pipe counts) for as long as the object
// lives, as a descriptor keeps a pipe's end open. A copy is one more hold; a move carries it.
// A fork carries every hold of the forking process into the child (see byte_queue.cpp), except
// into tandem's own helpers (release_pipe_holds_inherited_by_fork).
class PipeEndHold {
 public:
  using Role = ByteQueue::PipeRole;
  PipeEndHold() noexcept = default;
  // Held here, from now on.
  PipeEndHold(std::optional<ByteQueue> receives_from, std::optional<ByteQueue> sends_into);
  // Arrived from the process at index `from_receiving` / `from_sending` (as send_away said).
  PipeEndHold(std::optional<ByteQueue> receives_from, std::uint8_t from_receiving, std::optional<ByteQueue> sends_into,
              std::uint8_t from_sending);
  PipeEndHold(const PipeEndHold& other);
  PipeEndHold(PipeEndHold&& other) noexcept;
  PipeEndHold& operator=(PipeEndHold other) noexcept;
  ~PipeEndHold() { release(); }

  // Lets go of the end here (Connection::close): the directions close once no live process
  // holds the end.
  void release() noexcept;
  bool held() const noexcept { return held_; }
  // The hold of role `role` is leaving this process (encoded): the index to send with it.
  std::uint8_t send_away(Role role) const;
  // Whether the peer's end is gone (every holder let go or died); a direction found closed
  // closes the other too, since one end holds both. Deaths are looked for at most every
  // kLivenessCheckEvery per hold (a look reads /proc); a blocked call looks on its own.
  bool peer_gone();

 private:
  friend struct PipeHoldRegistry;
  struct Direction {
    mutable ByteQueue queue;  // counting a departure caches this process's index in it
    std::uint8_t index = 0;  // this process's, in the queue's table
  };
  void link() noexcept;
  void unlink() noexcept;
  void take(PipeEndHold& other) noexcept;

  std::optional<Direction> directions_[2];  // by Role
  pid_t holder_ = 0;  // the process the counts are for: a forked child's copy counts anew
  bool held_ = false;
  std::atomic<std::int64_t> next_look_ns_{0};  // not copied: each hold looks on its own
  PipeEndHold* previous_ = nullptr;  // this process's live holds, for fork
  PipeEndHold* next_ = nullptr;
};

// In a child forked by tandem for its own use (the fork server, a ProcessPool worker): the holds
// it inherited are let go, since nothing in it will use them, so that they do not keep the
// program's pipes open.
void release_pipe_holds_inherited_by_fork() noexcept;

}  // namespace tandem::detail
