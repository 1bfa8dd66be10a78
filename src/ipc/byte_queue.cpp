#include "tandem/detail/byte_queue.hpp"

#include "tandem/queue.hpp"

#include <pthread.h>

#include <algorithm>
#include <mutex>
#include <atomic>
#include <bit>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tandem/detail/wait.hpp"
#include "tandem/error.hpp"

namespace tandem::detail {
namespace {

constexpr std::size_t kMinSlots = 16;

constexpr std::size_t kMaxCapacity = std::size_t{16} << 30;  // keeps slot counts far below 2^31

// Each retry of a claim follows another agent's progress (its claim won). Bounded, so that words
// another process scribbled over cannot keep a call looping: it then reports "not now", and a
// call with a deadline waits (and gives up) as it would on a full or empty queue.
constexpr int kMaxClaimRetries = 256;
// How long the process table's mutex is waited for (it is held for a few instructions).
constexpr std::chrono::milliseconds kBookkeepingPatience{100};

constexpr std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

constexpr std::uint64_t slots_for(std::size_t bytes) {
  return std::max<std::uint64_t>(1, (bytes + QueueState::kSlotBytes - 1) / QueueState::kSlotBytes);
}

// How far `sequence` is past `expected` (both positions, compared by their low 32 bits).
constexpr std::int32_t lag(std::uint32_t sequence, std::uint64_t expected) {
  return static_cast<std::int32_t>(sequence - static_cast<std::uint32_t>(expected));
}

// Where the slot records, the owner arrays and the slots' bytes start, for `slots` slots.
constexpr std::size_t meta_offset() { return round_up(sizeof(Tagged<QueueState>), 64); }
constexpr std::size_t writers_offset(std::uint64_t slots) {
  return round_up(meta_offset() + static_cast<std::size_t>(slots) * sizeof(SlotMeta), 64);
}
constexpr std::size_t readers_offset(std::uint64_t slots) {
  return round_up(writers_offset(slots) + static_cast<std::size_t>(slots), 64);
}
constexpr std::size_t data_offset(std::uint64_t slots) {
  return round_up(readers_offset(slots) + static_cast<std::size_t>(slots), 64);
}

// Bumped in every forked child: a queue handle inherited by fork registers the child afresh.
std::atomic<std::uint64_t> fork_generation{0};

}  // namespace

// This process's live pipe holds. A fork carries each into the child: before it, each is counted
// as in transit from here, and in the child it arrives, counted under the child's index, so that
// the end is never without a holder while the parent lets go of its own.
struct PipeHoldRegistry {
  static inline std::mutex mutex;
  static inline PipeEndHold* first = nullptr;
  static inline pid_t forking = 0;

  static void before_fork() {
    mutex.lock();
    forking = ::getpid();
    for (PipeEndHold* hold = first; hold != nullptr; hold = hold->next_) {
      if (hold->holder_ != forking) continue;
      for (int role = 0; role < 2; ++role) {
        if (!hold->directions_[role]) continue;
        try {
          hold->directions_[role]->queue.send_pipe_holder_away(static_cast<PipeEndHold::Role>(role));
        } catch (...) {  // a garbage process table: the child's arrival then counts it alone
        }
      }
    }
  }
  static void after_fork_in_parent() { mutex.unlock(); }
  static void after_fork_in_child() {
    fork_generation.fetch_add(1, std::memory_order_relaxed);  // first: the arrivals below need the child's index
    for (PipeEndHold* hold = first; hold != nullptr; hold = hold->next_) {
      if (hold->holder_ != forking) continue;
      for (int role = 0; role < 2; ++role) {
        auto& direction = hold->directions_[role];
        if (!direction) continue;
        try {
          direction->index = direction->queue.arrive_pipe_holder(static_cast<PipeEndHold::Role>(role), direction->index);
        } catch (...) {  // a garbage process table: this copy goes uncounted
        }
      }
      hold->holder_ = ::getpid();
    }
    mutex.unlock();
  }
};

namespace {
// Registered at start-up, not at first use: a first use that raced a fork in another thread would
// leave the child a half-done static initialization, and the child would hang in it.
[[maybe_unused]] const bool counting_forks =
    ::pthread_atfork(PipeHoldRegistry::before_fork, PipeHoldRegistry::after_fork_in_parent,
                     PipeHoldRegistry::after_fork_in_child) == 0;

std::uint8_t load_owner(std::uint8_t& owner) {
  return std::atomic_ref<std::uint8_t>(owner).load(std::memory_order_acquire);
}
void store_owner(std::uint8_t& owner, std::uint8_t index) {
  std::atomic_ref<std::uint8_t>(owner).store(index, std::memory_order_release);
}
constexpr std::size_t total_bytes(std::uint64_t slots) {
  return data_offset(slots) + static_cast<std::size_t>(slots) * QueueState::kSlotBytes;
}

// Waits until `ready()`, registered as a sleeper on `event` from the first nap to the end (see
// EventCount for why the first nap is short), and as a `kind` wait on the queue `key` (called
// `name`) for the diagnostics. Naps last at most kLivenessCheckEvery; after each that no wake-up ended,
// `stalled()` looks for dead holders.
template <class Ready, class Stalled>
bool wait_on(EventCount& event, WaitKind kind, std::uint64_t key, std::string_view name, Ready& ready,
             Clock::time_point deadline, Stalled&& stalled) {
  struct Registration {
    EventCount& event;
    bool active = false;
    std::optional<TrackedWait> tracked;
    ~Registration() {
      if (active) event.sleepers.fetch_sub(1, std::memory_order_relaxed);
    }
  } registration{event, false, std::nullopt};
  bool napped = false;
  auto sleep = [&](Clock::time_point until) {
    if (!registration.active) {
      event.sleepers.fetch_add(1, std::memory_order_seq_cst);
      registration.active = true;
      if (tracking_on()) registration.tracked.emplace(kind, key, name, deadline != Clock::time_point::max());
    }
    const std::uint32_t epoch = event.epoch.load(std::memory_order_seq_cst);
    if (ready()) return;
    const auto nap = napped ? Clock::duration(kLivenessCheckEvery) : Clock::duration(EventCount::kFirstNap);
    const bool woken = futex_wait(event.epoch, epoch, std::min(until, Clock::now() + nap));
    if (napped && !woken) stalled();
    napped = true;
  };
  return block_until(ready, sleep, deadline);
}

}  // namespace

ByteQueue ByteQueue::create(std::size_t capacity_bytes, std::size_t maxsize, bool joinable, std::string_view name) {
  if (capacity_bytes == 0) throw Error("Queue: the capacity must be at least one byte");
  if (capacity_bytes > kMaxCapacity) throw Error("Queue: a capacity above 16 GiB is not supported");
  const std::uint64_t slots =
      std::bit_ceil(std::max(kMinSlots, (capacity_bytes + QueueState::kSlotBytes - 1) / QueueState::kSlotBytes));
  auto state = SharedState<QueueState>::create(total_bytes(slots), slots, maxsize, joinable, name);
  auto* meta = reinterpret_cast<SlotMeta*>(state.memory().data() + meta_offset());
  for (std::uint64_t i = 0; i < slots; ++i) new (&meta[i]) SlotMeta{{static_cast<std::uint32_t>(i)}, {0}, {}};
  return ByteQueue(std::move(state));
}

ByteQueue ByteQueue::decode(ByteReader& in) { return ByteQueue(SharedState<QueueState>::decode(in)); }

ByteQueue::ByteQueue(SharedState<QueueState> state)
    : state_(std::move(state)),
      slot_count_(state_->slot_count),
      maxsize_(state_->maxsize),
      joinable_(state_->joinable) {
  const std::uint64_t slots = slot_count_;
  if (slots < kMinSlots || !std::has_single_bit(slots) || slots > kMaxCapacity / QueueState::kSlotBytes ||
      state_.memory().size() < total_bytes(slots)) {
    throw_malformed("a queue handle whose memory does not match its size");
  }
  meta_ = std::launder(reinterpret_cast<SlotMeta*>(state_.memory().data() + meta_offset()));
  writers_ = reinterpret_cast<std::uint8_t*>(state_.memory().data() + writers_offset(slots));
  readers_ = reinterpret_cast<std::uint8_t*>(state_.memory().data() + readers_offset(slots));
  data_ = state_.memory().data() + data_offset(slots);
  mask_ = slots - 1;
}

ByteQueue::Claim ByteQueue::try_claim(std::uint64_t slots, std::uint64_t count, std::uint64_t& position) {
  QueueState& state = *state_;
  std::uint64_t tail = state.tail.load(std::memory_order_relaxed);
  for (int retry = 0; retry < kMaxClaimRetries; ++retry) {
    bool moved_on = false;
    for (std::uint64_t j = 0; j < slots; ++j) {
      const std::int32_t behind = lag(meta(tail + j).sequence.load(std::memory_order_acquire), tail + j);
      if (behind < 0) return Claim::full;  // still holds last lap's item
      if (behind > 0) {                    // another producer claimed it: our view of tail is stale
        moved_on = true;
        break;
      }
    }
    if (moved_on) {
      tail = state.tail.load(std::memory_order_relaxed);
      continue;
    }
    // The slots are free: count the item against maxsize just before claiming them, so that a
    // failed claim holds a unit for as short a time as possible (and gives it back with a wake-up).
    if (maxsize_ != 0) {
      std::uint64_t items = state.items.load(std::memory_order_acquire);
      do {
        if (items + count > maxsize_) return Claim::too_many_items;
      } while (!state.items.compare_exchange_weak(items, items + count, std::memory_order_relaxed));
      // (Each failed exchange here is another agent's count going through: bounded in practice,
      // and a scribbled count only makes the queue look full.)
    }
    if (state.tail.compare_exchange_strong(tail, tail + slots, std::memory_order_relaxed)) {
      position = tail;
      return Claim::claimed;
    }
    if (maxsize_ != 0) {
      state.items.fetch_sub(count, std::memory_order_release);
      state.space_ready.notify_all();
    }
  }
  return Claim::full;
}

bool ByteQueue::put(std::span<const std::byte> item, Clock::time_point deadline) {
  const std::uint64_t slots = slots_for(item.size());
  check_fits(item.size());
  std::uint64_t position = 0;
  bool claimed = false;
  const std::uint8_t index = my_index();  // before the claim, so that it is marked at once after
  auto ready = [&] {
    if (claimed) return true;
    if (closed()) throw QueueClosed("Queue: put on a closed queue");
    claimed = try_claim(slots, 1, position) == Claim::claimed;
    return claimed;
  };
  if (!wait_on(state_->space_ready, WaitKind::queue_put, state_->key, state_->name.view(), ready, deadline,
               [this] {
                 free_slots_of_dead_consumers();
                 close_if_a_pipe_end_is_gone();
               })) {
    return false;
  }

  mark_claimed(position, item.size(), index);
  copy_in(position, item);
  publish(position, std::span(&item, 1));
  return true;
}

void ByteQueue::check_fits(std::size_t bytes) {
  if (slots_for(bytes) <= slot_count_ && bytes <= UINT32_MAX) return;
  // Said to the consumers too: one waiting for this item would otherwise wait in silence.
  state_->refused_bytes.store(bytes, std::memory_order_relaxed);
  throw Error("Queue: an item of " + std::to_string(bytes) + " bytes can never fit in a queue of " +
              std::to_string(capacity_bytes()) +
              " bytes (make it larger: QueueOptions::capacity_bytes, or send a SharedMemory handle for big data)");
}

// Right after the claim: the item's size, then its producer's mark (an owner seen means the size
// is there), so that the slots of a producer killed from here on can be freed.
void ByteQueue::mark_claimed(std::uint64_t position, std::size_t bytes, std::uint8_t index) {
  meta(position).bytes.store(static_cast<std::uint32_t>(bytes), std::memory_order_relaxed);
  store_owner(writers_[position & mask_], index);
}

void ByteQueue::copy_in(std::uint64_t position, std::span<const std::byte> item) {
  if (item.size() <= SlotMeta::kInlineBytes) {
    std::memcpy(meta(position).inline_bytes, item.data(), item.size());
    return;
  }
  const std::size_t offset = static_cast<std::size_t>(position & mask_) * QueueState::kSlotBytes;
  const std::size_t room_to_end = static_cast<std::size_t>(slot_count_) * QueueState::kSlotBytes - offset;
  const std::size_t head_part = std::min(item.size(), room_to_end);
  std::memcpy(data_ + offset, item.data(), head_part);
  std::memcpy(data_, item.data() + head_part, item.size() - head_part);
}

// Makes `items`, copied in from `position` on, visible to consumers, in order. (Their places
// come from their own sizes, not from the records another process could rewrite.)
void ByteQueue::publish(std::uint64_t position, std::span<const std::span<const std::byte>> items) {
  if (joinable_) state_->unfinished.fetch_add(static_cast<std::uint32_t>(items.size()), std::memory_order_relaxed);
  // Noted before the items are visible: a getter whose wait began after the note must see them.
  if (tracking_on()) [[unlikely]]
    note_releaser(WaitKind::queue_get, state_->key);
  for (const auto& item : items) {
    store_owner(writers_[position & mask_], 0);
    meta(position).sequence.store(static_cast<std::uint32_t>(position + 1), std::memory_order_release);
    position += slots_for(item.size());
  }
  state_->items_ready.notify_all();
}

std::size_t ByteQueue::put_some(std::span<const std::span<const std::byte>> items, Clock::time_point deadline) {
  if (items.empty()) return 0;
  // At most kMostPerBatch items, and no more slots than the ring has.
  std::size_t count = 0;
  for (std::uint64_t slots = 0; count < std::min(items.size(), kMostPerBatch); ++count) {
    check_fits(items[count].size());
    slots += slots_for(items[count].size());
    if (slots > slot_count_ && count > 0) break;
  }
  std::uint64_t position = 0;
  std::size_t claimed = 0;
  const std::uint8_t index = my_index();
  // The whole batch if it fits now, else halves of it, else the first item alone, waited for.
  auto ready = [&] {
    if (claimed != 0) return true;
    if (closed()) throw QueueClosed("Queue: put on a closed queue");
    for (std::size_t k = count; k >= 1;) {
      std::uint64_t k_slots = 0;
      for (std::size_t i = 0; i < k; ++i) k_slots += slots_for(items[i].size());
      const Claim claim = try_claim(k_slots, k, position);
      if (claim == Claim::claimed) {
        claimed = k;
        return true;
      }
      if (claim == Claim::too_many_items) {  // as many as maxsize leaves room for
        const std::uint64_t in = state_->items.load(std::memory_order_acquire);
        k = std::min<std::uint64_t>(k - 1, in < maxsize_ ? maxsize_ - in : 0);
      } else {
        k /= 2;  // the ring is short of slots: a shorter prefix may fit
      }
    }
    return false;
  };
  if (!wait_on(state_->space_ready, WaitKind::queue_put, state_->key, state_->name.view(), ready, deadline,
               [this] {
                 free_slots_of_dead_consumers();
                 close_if_a_pipe_end_is_gone();
               })) {
    return 0;
  }
  // Every item is marked before any is copied: a producer killed while copying leaves each of
  // its items attributable.
  std::uint64_t at = position;
  for (std::size_t i = 0; i < claimed; ++i) {
    mark_claimed(at, items[i].size(), index);
    at += slots_for(items[i].size());
  }
  at = position;
  for (std::size_t i = 0; i < claimed; ++i) {
    copy_in(at, items[i]);
    at += slots_for(items[i].size());
  }
  publish(position, items.first(claimed));
  return claimed;
}

bool ByteQueue::try_take(std::uint64_t& position, std::uint64_t& slots, std::size_t& bytes) {
  QueueState& state = *state_;
  const std::uint8_t index = my_index();  // before the claim, so that it is marked at once after
  std::uint64_t head = state.head.load(std::memory_order_relaxed);
  for (int retry = 0; retry < kMaxClaimRetries; ++retry) {
    SlotMeta& first = meta(head);
    const std::int32_t ahead = lag(first.sequence.load(std::memory_order_acquire), head + 1);
    if (ahead < 0) return false;  // empty
    if (ahead > 0) {              // another consumer took it
      head = state.head.load(std::memory_order_relaxed);
      continue;
    }
    const std::uint64_t spanned = slots_for(first.bytes.load(std::memory_order_relaxed));
    if (spanned > slot_count_) throw_malformed("a queue item whose record is corrupt");
    // The mark goes on before the item is ours, as a claim other consumers respect: a consumer
    // killed at any point of a take leaves either its mark on the item at head (cleared once it
    // is dead, clear_dead_take_mark) or a marked item below head (freed once it is dead,
    // free_slots_of_dead_consumers), never an item taken and unmarked, which nothing could free.
    // (Marking after the take left that window, and a consumer killed just as it woke for an
    // item stalled the ring for good: QueueAcrossAgents.AConsumerKilledInsideAGetDoesNotStopTheQueue.)
    const std::uint64_t at = head;
    std::atomic_ref<std::uint8_t> reader(readers_[at & mask_]);
    if (index != 0) {
      std::uint8_t none = 0;
      if (!reader.compare_exchange_strong(none, index, std::memory_order_seq_cst)) {
        // Another consumer is taking this item, or the last lap's taker has not cleared its
        // mark yet (or died before it did): look again.
        head = state.head.load(std::memory_order_relaxed);
        continue;
      }
    }
    if (state.head.compare_exchange_strong(head, at + spanned, std::memory_order_seq_cst)) {
      // Only now, with the item ours, is its record known not to change under an honest peer;
      // what is read here is all that is used, so a dishonest one cannot widen it later.
      const std::size_t size = first.bytes.load(std::memory_order_relaxed);
      if (spanned > slot_count_ || slots_for(size) != spanned) throw_malformed("a queue item whose record is corrupt");
      position = head;
      slots = spanned;
      bytes = size;
      return true;
    }
    if (index != 0) {
      std::uint8_t mine = index;  // the item went another way (a dead producer's slots were skipped)
      reader.compare_exchange_strong(mine, 0, std::memory_order_acq_rel);
    }
  }
  return false;
}

// try_take for up to `most` consecutive items, all marked before the one compare-and-swap on
// head that makes them this consumer's (see try_take for why the marks go first).
std::size_t ByteQueue::try_take_some(std::size_t most, TakenItem* taken) {
  QueueState& state = *state_;
  const std::uint8_t index = my_index();
  std::uint64_t head = state.head.load(std::memory_order_relaxed);
  for (int retry = 0; retry < kMaxClaimRetries; ++retry) {
    std::size_t count = 0;
    std::uint64_t at = head;
    bool look_again = false;
    while (count < most) {
      const SlotMeta& record = meta(at);
      const std::int32_t ahead = lag(record.sequence.load(std::memory_order_acquire), at + 1);
      if (ahead != 0) {
        look_again = count == 0 && ahead > 0;  // another consumer took the first
        break;
      }
      const std::uint64_t spanned = slots_for(record.bytes.load(std::memory_order_relaxed));
      if (spanned > slot_count_ || at + spanned - head > slot_count_) {
        if (count == 0) throw_malformed("a queue item whose record is corrupt");
        break;
      }
      if (index != 0) {
        std::uint8_t none = 0;
        if (!std::atomic_ref<std::uint8_t>(readers_[at & mask_]).compare_exchange_strong(none, index, std::memory_order_seq_cst)) {
          look_again = count == 0;
          break;
        }
      }
      taken[count++] = {at, spanned, 0};
      at += spanned;
    }
    if (count != 0 && state.head.compare_exchange_strong(head, at, std::memory_order_seq_cst)) {
      for (std::size_t i = 0; i < count; ++i) {
        const std::size_t size = meta(taken[i].position).bytes.load(std::memory_order_relaxed);
        if (slots_for(size) != taken[i].slots) throw_malformed("a queue item whose record is corrupt");
        taken[i].bytes = size;
      }
      return count;
    }
    for (std::size_t i = 0; i < count && index != 0; ++i) {
      std::uint8_t mine = index;  // the items went another way
      std::atomic_ref<std::uint8_t>(readers_[taken[i].position & mask_]).compare_exchange_strong(mine, 0, std::memory_order_acq_rel);
    }
    if (count == 0 && !look_again) return 0;  // empty
    head = state.head.load(std::memory_order_relaxed);
  }
  return 0;
}

std::size_t ByteQueue::get_some(Consumer consume, void* context, std::size_t most, Clock::time_point deadline) {
  TakenItem taken[kMostPerBatch];
  most = std::min(most, kMostPerBatch);
  std::size_t count = 0;
  auto ready = [&] {
    if (count != 0) return true;
    count = try_take_some(most, taken);
    if (count == 0 && closed() && (count = try_take_some(most, taken)) == 0 && nothing_in_flight()) {
      throw QueueClosed("Queue: get on a closed, empty queue");
    }
    return count != 0;
  };
  if (most == 0) return 0;
  if (!wait_on(state_->items_ready, WaitKind::queue_get, state_->key, state_->name.view(), ready, deadline, [this] {
        free_slots_of_dead_producer();
        clear_dead_take_mark();
        close_if_a_pipe_end_is_gone();
      })) {
    return 0;
  }
  if (tracking_on()) [[unlikely]]
    note_releaser(WaitKind::queue_put, state_->key);
  // Every item taken is freed, even when one fails to decode (then the rest are dropped with it:
  // only a dishonest peer writes such an item).
  struct Releaser {
    ByteQueue& queue;
    std::span<const TakenItem> items;
    ~Releaser() {
      for (const TakenItem& item : items) queue.free_taken(item.position, item.slots);
      queue.state_->space_ready.notify_all();
    }
  } releaser{*this, std::span<const TakenItem>(taken, count)};
  for (std::size_t i = 0; i < count; ++i) read_out(taken[i].position, taken[i].bytes, consume, context);
  return count;
}

bool ByteQueue::clear_dead_take_mark() {
  const std::uint64_t head = state_->head.load(std::memory_order_acquire);
  std::atomic_ref<std::uint8_t> reader(readers_[head & mask_]);
  // A consumer's mark is its process index (1..kProcessSlots).
  std::uint8_t mark = reader.load(std::memory_order_acquire);
  if (mark == 0) return false;
  // A mark naming no process slot was written by no honest consumer: garbage, cleared as well.
  const bool garbage = mark > QueueState::kProcessSlots;
  if (!garbage && !holder_is_dead(mark)) return false;
  // Its owner is dead, so nobody else can take this item while the mark is there: clearing it
  // lets the others claim it. (Had the head moved meanwhile, the mark was a stale one, which
  // free_slots_of_dead_consumers would clear the same way.)
  return reader.compare_exchange_strong(mark, 0, std::memory_order_acq_rel);
}

bool ByteQueue::nothing_in_flight() const noexcept {
  return state_->head.load(std::memory_order_acquire) == state_->tail.load(std::memory_order_acquire);
}

// The first slot is freed last and its owner cleared after it: a consumer killed half-way leaves
// either its mark on a first slot still full (free_slots_of_dead_consumers frees the whole item)
// or a stale mark on a freed one (which it only clears).
void ByteQueue::free_taken(std::uint64_t position, std::uint64_t slots) noexcept {
  for (std::uint64_t j = slots - 1; j > 0; --j) {
    meta(position + j).sequence.store(static_cast<std::uint32_t>(position + j + slot_count_), std::memory_order_release);
  }
  meta(position).sequence.store(static_cast<std::uint32_t>(position + slot_count_), std::memory_order_release);
  if (maxsize_ != 0) state_->items.fetch_sub(1, std::memory_order_release);
  // A plain store: while this consumer's mark is on the slot, no other consumer can mark the item
  // a lap later (a mark is claimed from 0, see try_take), so the mark cleared is its own.
  store_owner(readers_[position & mask_], 0);
}

void ByteQueue::release(std::uint64_t position, std::uint64_t slots) noexcept {
  free_taken(position, slots);
  state_->space_ready.notify_all();
}

bool ByteQueue::get(Consumer consume, void* context, Clock::time_point deadline) {
  std::uint64_t position = 0, slots = 0;
  std::size_t bytes = 0;
  bool taken = false;
  auto ready = [&] {
    if (taken) return true;
    taken = try_take(position, slots, bytes);
    // Items put before the close are still delivered, those claimed but not yet published
    // included (they are waited for); only a closed queue with nothing in it fails.
    if (!taken && closed() && !(taken = try_take(position, slots, bytes)) && nothing_in_flight()) {
      throw QueueClosed("Queue: get on a closed, empty queue");
    }
    return taken;
  };
  if (!wait_on(state_->items_ready, WaitKind::queue_get, state_->key, state_->name.view(), ready, deadline, [this] {
        free_slots_of_dead_producer();
        clear_dead_take_mark();
        close_if_a_pipe_end_is_gone();
      })) {
    return false;
  }
  // Noted before the item's slots are freed (see put).
  if (tracking_on()) [[unlikely]]
    note_releaser(WaitKind::queue_put, state_->key);

  struct Releaser {
    ByteQueue& queue;
    std::uint64_t position, slots;
    ~Releaser() { queue.release(position, slots); }
  } releaser{*this, position, slots};
  read_out(position, bytes, consume, context);
  return true;
}

void ByteQueue::read_out(std::uint64_t position, std::size_t bytes, Consumer consume, void* context) {
  const SlotMeta& first = meta(position);
  if (bytes <= SlotMeta::kInlineBytes) {
    consume(context, {first.inline_bytes, bytes});
    return;
  }
  const std::size_t offset = static_cast<std::size_t>(position & mask_) * QueueState::kSlotBytes;
  const std::size_t room_to_end = static_cast<std::size_t>(slot_count_) * QueueState::kSlotBytes - offset;
  if (bytes <= room_to_end) {
    consume(context, {data_ + offset, bytes});
    return;
  }
  thread_local std::vector<std::byte> wrapped;
  wrapped.resize(bytes);
  std::memcpy(wrapped.data(), data_ + offset, room_to_end);
  std::memcpy(wrapped.data() + room_to_end, data_, bytes - room_to_end);
  consume(context, wrapped);
}

std::uint8_t ByteQueue::my_index() {
  const std::uint64_t generation = fork_generation.load(std::memory_order_relaxed) + 1;
  std::atomic_ref<std::uint64_t> cache(index_cache_);
  const std::uint64_t cached = cache.load(std::memory_order_relaxed);
  if ((cached >> 8) == generation) return static_cast<std::uint8_t>(cached & 0xff);
  const ProcessIdentity self = ProcessIdentity::self();
  std::uint8_t index = 0;
  {
    // Bounded: a table mutex another process scribbled over leaves this process unknown (index
    // 0, assumed alive by the others), which costs only the recovery of its own death.
    BookkeepingGuard guard(state_->processes_mutex, Clock::now() + kBookkeepingPatience);
    for (int i = 1; guard.held() && i <= QueueState::kProcessSlots && index == 0; ++i) {
      if (state_->processes[i] == self) index = static_cast<std::uint8_t>(i);
    }
    for (int i = 1; guard.held() && i <= QueueState::kProcessSlots && index == 0; ++i) {
      if (state_->processes[i].pid == 0) {
        state_->processes[i] = self;
        index = static_cast<std::uint8_t>(i);
      }
    }
  }
  cache.store((generation << 8) | index, std::memory_order_relaxed);
  return index;
}

bool ByteQueue::holder_is_dead(std::uint8_t index) const {
  if (index == 0 || index > QueueState::kProcessSlots) return false;  // unknown: assume alive
  ProcessIdentity holder;
  {
    BookkeepingGuard guard(state_->processes_mutex, Clock::now() + kBookkeepingPatience);
    if (!guard.held()) return false;
    holder = state_->processes[index];
  }
  return holder.pid != 0 && !holder.alive();
}

// A producer that died between claiming its slots and publishing left them claimed at `head`:
// consumers would wait there for ever. Take the slots as a consumer would (one compare-and-swap
// decides who), and free them: the put never completed, so nothing put is lost.
bool ByteQueue::free_slots_of_dead_producer() {
  QueueState& state = *state_;
  std::uint64_t head = state.head.load(std::memory_order_acquire);
  if (head == state.tail.load(std::memory_order_acquire)) return false;
  const SlotMeta& first = meta(head);
  if (lag(first.sequence.load(std::memory_order_acquire), head) != 0) return false;  // published, or taken
  const std::uint8_t owner = load_owner(writers_[head & mask_]);
  if (!holder_is_dead(owner)) return false;
  const std::uint64_t spanned = slots_for(first.bytes.load(std::memory_order_relaxed));
  if (spanned > slot_count_ || !state.head.compare_exchange_strong(head, head + spanned, std::memory_order_acq_rel)) {
    return false;
  }
  store_owner(writers_[head & mask_], 0);
  release(head, spanned);
  state.items_ready.notify_all();
  return true;
}

// Consumers that died between taking an item and freeing its slots left them full for ever
// (and, with maxsize, the item counted). Taken items lie below `head` and within a lap of
// `tail`, each marked on its first slot: free those whose taker is dead, as the taker would have.
// The compare-and-swap on the first slot decides who frees an item, exactly once; the item was
// taken, so nothing is delivered twice.
bool ByteQueue::free_slots_of_dead_consumers() {
  QueueState& state = *state_;
  const std::uint64_t tail = state.tail.load(std::memory_order_acquire);
  // Taken items lie within a lap before the tail: no more than slot_count_ positions are looked
  // at, whatever the shared words say.
  const std::uint64_t head = std::min(state.head.load(std::memory_order_acquire), tail);
  const std::uint64_t from = tail > slot_count_ ? tail - slot_count_ : 0;
  enum Liveness : std::uint8_t { unknown, alive, dead };
  Liveness known[QueueState::kProcessSlots + 1] = {};  // one look in /proc per holder
  bool freed = false;
  for (std::uint64_t position = from; position < head; ++position) {
    std::uint8_t& reader = readers_[position & mask_];
    std::uint8_t owner = load_owner(reader);
    if (owner == 0 || owner > QueueState::kProcessSlots) continue;
    Liveness& taker = known[owner];
    if (taker == unknown) taker = holder_is_dead(owner) ? dead : alive;
    if (taker != dead) continue;
    SlotMeta& first = meta(position);
    auto taken = static_cast<std::uint32_t>(position + 1);
    if (first.sequence.compare_exchange_strong(taken, static_cast<std::uint32_t>(position + slot_count_),
                                               std::memory_order_acq_rel)) {
      // The first slot is free now, so no producer can reach the others before they are freed too.
      const std::uint64_t spanned = std::min<std::uint64_t>(slots_for(first.bytes.load(std::memory_order_relaxed)), slot_count_);
      for (std::uint64_t j = 1; j < spanned; ++j) {
        meta(position + j).sequence.store(static_cast<std::uint32_t>(position + j + slot_count_), std::memory_order_release);
      }
      if (maxsize_ != 0) state.items.fetch_sub(1, std::memory_order_release);
      freed = true;
    }
    std::atomic_ref<std::uint8_t>(reader).compare_exchange_strong(owner, 0);  // freed, or a stale mark
  }
  if (freed) state.space_ready.notify_all();
  return freed;
}

void ByteQueue::close() {
  state_->closed.store(1, std::memory_order_seq_cst);
  state_->items_ready.wake_all();
  state_->space_ready.wake_all();
}

bool ByteQueue::empty() const noexcept { return nothing_in_flight(); }

// Walks the items from head to tail by their records. No count is kept for this (one would cost
// every put and get an atomic on a shared line); an item being put as the walk passes may show
// a record of the last lap, which makes the answer approximate then, as Python's qsize is.
std::size_t ByteQueue::item_count() const noexcept {
  const std::uint64_t tail = state_->tail.load(std::memory_order_acquire);
  std::uint64_t position = std::min(state_->head.load(std::memory_order_acquire), tail);
  std::size_t items = 0;
  // At most one lap of records, whatever the shared words say.
  for (std::uint64_t looked = 0; position < tail && looked < slot_count_; ++looked) {
    ++items;
    position += std::min<std::uint64_t>(slots_for(meta(position).bytes.load(std::memory_order_relaxed)), slot_count_);
  }
  return items;
}

bool ByteQueue::full() const noexcept {
  if (maxsize_ != 0 && state_->items.load(std::memory_order_acquire) >= maxsize_) return true;
  const std::uint64_t tail = state_->tail.load(std::memory_order_acquire);
  return lag(meta(tail).sequence.load(std::memory_order_acquire), tail) < 0;  // still holds last lap's item
}

namespace {

// Decrements `count` unless it is 0 already (a count in shared memory may be garbage).
void decrement_saturating(std::atomic<std::uint32_t>& count) {
  std::uint32_t seen = count.load(std::memory_order_acquire);
  while (seen != 0 && !count.compare_exchange_weak(seen, seen - 1, std::memory_order_acq_rel)) {
  }
}

}  // namespace

std::uint8_t ByteQueue::add_pipe_holder(PipeRole role) {
  const std::uint8_t index = my_index();
  state_->pipe_holders[static_cast<int>(role)][index].fetch_add(1, std::memory_order_acq_rel);
  return index;
}

void ByteQueue::drop_pipe_holder(PipeRole role, std::uint8_t index) {
  if (index > QueueState::kProcessSlots) return;
  decrement_saturating(state_->pipe_holders[static_cast<int>(role)][index]);
  close_if_a_pipe_end_is_gone();
}

std::uint8_t ByteQueue::send_pipe_holder_away(PipeRole role) {
  const std::uint8_t index = my_index();
  state_->pipe_in_transit[static_cast<int>(role)][index].fetch_add(1, std::memory_order_acq_rel);
  return index;
}

std::uint8_t ByteQueue::arrive_pipe_holder(PipeRole role, std::uint8_t from) {
  const std::uint8_t index = add_pipe_holder(role);  // counted here first: never a moment with neither
  if (from <= QueueState::kProcessSlots) decrement_saturating(state_->pipe_in_transit[static_cast<int>(role)][from]);
  return index;
}

// Index 0 (a process the table had no room for) is taken to be alive, as elsewhere.
bool ByteQueue::close_if_a_pipe_end_is_gone() {
  QueueState& state = *state_;
  if (state.counts_pipe_ends.load(std::memory_order_acquire) == 0) return false;
  if (closed()) return true;
  for (int role = 0; role < 2; ++role) {
    bool held = false;
    for (int index = 0; index <= QueueState::kProcessSlots && !held; ++index) {
      if (state.pipe_holders[role][index].load(std::memory_order_acquire) == 0 &&
          state.pipe_in_transit[role][index].load(std::memory_order_acquire) == 0) {
        continue;
      }
      held = index == 0 || !holder_is_dead(static_cast<std::uint8_t>(index));
    }
    if (!held) {
      close();
      return true;
    }
  }
  return false;
}

void ByteQueue::task_done() {
  std::uint32_t unfinished = state_->unfinished.load(std::memory_order_relaxed);
  do {
    if (unfinished == 0) throw Error("JoinableQueue::task_done: called more times than items were put");
  } while (!state_->unfinished.compare_exchange_weak(unfinished, unfinished - 1, std::memory_order_acq_rel));
  if (unfinished == 1) futex_wake_all(state_->unfinished);
}

bool ByteQueue::join(Clock::time_point deadline) {
  auto done = [this] { return state_->unfinished.load(std::memory_order_acquire) == 0; };
  auto sleep = [this](Clock::time_point until) {
    const std::uint32_t unfinished = state_->unfinished.load(std::memory_order_acquire);
    if (unfinished != 0) futex_wait(state_->unfinished, unfinished, until);
  };
  return block_until(done, sleep, deadline);
}

}  // namespace tandem::detail

namespace tandem::detail {

namespace {
constexpr std::size_t kSpareScratchBuffers = 4;
thread_local std::vector<std::unique_ptr<ByteWriter>> spare_scratch;
}  // namespace

ScratchLease::ScratchLease() {
  if (spare_scratch.empty()) {
    writer_ = std::make_unique<ByteWriter>();
  } else {
    writer_ = std::move(spare_scratch.back());
    spare_scratch.pop_back();
  }
}

ScratchLease::~ScratchLease() {
  if (spare_scratch.size() < kSpareScratchBuffers) {
    writer_->clear();
    spare_scratch.push_back(std::move(writer_));
  }
}

void throw_queue_timeout(const char* what, const ByteQueue& queue) {
  std::string text = what;
  if (const std::uint64_t refused = queue.refused_bytes(); refused != 0) {
    text += "; note: a put of an item of " + std::to_string(refused) + " bytes was refused, since it can never fit in " +
            "this queue of " + std::to_string(queue.capacity_bytes()) + " bytes (QueueOptions::capacity_bytes)";
  }
  throw TimeoutError(text);
}

}  // namespace tandem::detail

namespace tandem::detail {

PipeEndHold::PipeEndHold(std::optional<ByteQueue> receives_from, std::optional<ByteQueue> sends_into)
    : holder_(::getpid()), held_(true) {
  std::optional<ByteQueue>* queues[2] = {&receives_from, &sends_into};
  for (int role = 0; role < 2; ++role) {
    if (!*queues[role]) continue;
    const std::uint8_t index = (*queues[role])->add_pipe_holder(static_cast<Role>(role));
    directions_[role] = Direction{std::move(**queues[role]), index};
  }
  link();
}

PipeEndHold::PipeEndHold(std::optional<ByteQueue> receives_from, std::uint8_t from_receiving,
                         std::optional<ByteQueue> sends_into, std::uint8_t from_sending)
    : holder_(::getpid()), held_(true) {
  std::optional<ByteQueue>* queues[2] = {&receives_from, &sends_into};
  const std::uint8_t from[2] = {from_receiving, from_sending};
  for (int role = 0; role < 2; ++role) {
    if (!*queues[role]) continue;
    const std::uint8_t index = (*queues[role])->arrive_pipe_holder(static_cast<Role>(role), from[role]);
    directions_[role] = Direction{std::move(**queues[role]), index};
  }
  link();
}

PipeEndHold::PipeEndHold(const PipeEndHold& other) : holder_(::getpid()), held_(other.held_) {
  if (!held_) return;
  for (int role = 0; role < 2; ++role) {
    if (!other.directions_[role]) continue;
    ByteQueue queue = other.directions_[role]->queue;
    const std::uint8_t index = queue.add_pipe_holder(static_cast<Role>(role));
    directions_[role] = Direction{std::move(queue), index};
  }
  link();
}

PipeEndHold::PipeEndHold(PipeEndHold&& other) noexcept { take(other); }

PipeEndHold& PipeEndHold::operator=(PipeEndHold other) noexcept {
  release();
  take(other);
  return *this;
}

// Takes over `other`'s hold and its place in the list (this one holds nothing).
void PipeEndHold::take(PipeEndHold& other) noexcept {
  std::lock_guard guard(PipeHoldRegistry::mutex);
  if (!other.held_) return;
  directions_[0] = std::move(other.directions_[0]);
  directions_[1] = std::move(other.directions_[1]);
  holder_ = other.holder_;
  held_ = true;
  previous_ = other.previous_;
  next_ = other.next_;
  (previous_ != nullptr ? previous_->next_ : PipeHoldRegistry::first) = this;
  if (next_ != nullptr) next_->previous_ = this;
  other.previous_ = other.next_ = nullptr;
  other.directions_[0].reset();
  other.directions_[1].reset();
  other.held_ = false;
}

void PipeEndHold::link() noexcept {
  std::lock_guard guard(PipeHoldRegistry::mutex);
  next_ = PipeHoldRegistry::first;
  if (next_ != nullptr) next_->previous_ = this;
  PipeHoldRegistry::first = this;
}

void PipeEndHold::unlink() noexcept {
  std::lock_guard guard(PipeHoldRegistry::mutex);
  (previous_ != nullptr ? previous_->next_ : PipeHoldRegistry::first) = next_;
  if (next_ != nullptr) next_->previous_ = previous_;
  previous_ = next_ = nullptr;
}

void PipeEndHold::release() noexcept {
  if (!held_) return;
  unlink();
  held_ = false;
  // A hold made in another process (inherited by a fork that did not carry it) is not counted
  // here: letting it go changes nothing.
  const bool counted_here = holder_ == ::getpid();
  for (int role = 0; role < 2; ++role) {
    if (!directions_[role]) continue;
    if (counted_here) {
      try {
        directions_[role]->queue.drop_pipe_holder(static_cast<Role>(role), directions_[role]->index);
      } catch (...) {  // a garbage process table: the end then stays open, as if still held
      }
    }
    directions_[role].reset();
  }
}

std::uint8_t PipeEndHold::send_away(Role role) const {
  const auto& direction = directions_[static_cast<int>(role)];
  return direction ? direction->queue.send_pipe_holder_away(role) : 0;
}

bool PipeEndHold::peer_gone() {
  if (!held_) return false;
  const std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
  if (now >= next_look_ns_.load(std::memory_order_relaxed)) {
    next_look_ns_.store(now + std::chrono::nanoseconds(kLivenessCheckEvery).count(), std::memory_order_relaxed);
    for (auto& direction : directions_) {
      if (direction) direction->queue.close_if_a_pipe_end_is_gone();
    }
  }
  bool gone = false;
  for (auto& direction : directions_) gone = gone || (direction && direction->queue.closed());
  if (gone) {
    for (auto& direction : directions_) {
      if (direction) direction->queue.close();
    }
  }
  return gone;
}

void release_pipe_holds_inherited_by_fork() noexcept {
  for (;;) {
    PipeEndHold* hold = nullptr;
    {
      std::lock_guard guard(PipeHoldRegistry::mutex);
      hold = PipeHoldRegistry::first;
    }
    if (hold == nullptr) return;
    hold->release();
  }
}

}  // namespace tandem::detail
