// Queue<T> and JoinableQueue<T>: multi-producer, multi-consumer FIFO queues that work between
// threads and, unchanged, between processes (Python's queue.Queue and multiprocessing.Queue in
// one type).
//
//   tandem::Queue<std::string> jobs;
//   tandem::Process worker([](tandem::Queue<std::string> q) { while (true) handle(q.get()); }, jobs);
//   jobs.put("first");
//
// Items travel as to a ProcessPool (process_pool.hpp, "What travels"): trivially copyable types
// and vectors or strings of them as raw bytes, other types through cereal; a T that cannot
// travel is a compile-time error. Each put copies the encoded item into a ring in shared memory
// and each get copies it out: no feeder thread, no pipe, so a producer can always exit and
// nothing put is lost when it does.
//
// A Queue is a handle: copies are the same queue, and it reaches other agents as an argument or
// by inheritance (any start method, pool tasks included). It holds QueueOptions::capacity_bytes
// of encoded items (8 MiB by default, reserved when the queue is made; at most 16 GiB), and at most
// `maxsize` items when that is set; put blocks while the queue is full. An item that can never fit
// is a tandem::Error in the producer at once, not a hang, and a consumer's get_for that times out
// says so too. For data larger than a queue should hold, put a SharedMemory handle in the queue.
//
// A process that dies inside put or get (SIGKILL included) does not stop the queue: within
// about 50 ms a waiter frees the slots it held (see docs/shared_state.md). Every blocking call
// has timed forms (put_for/put_until, get_for/get_until: tandem::TimeoutError) and a
// non-blocking one (try_put, try_get). close() wakes every blocked caller: put then throws
// tandem::QueueClosed; get still returns what is queued, then throws QueueClosed.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <span>
#include <type_traits>
#include <vector>

#include "tandem/detail/byte_queue.hpp"
#include "tandem/detail/codec.hpp"
#include "tandem/detail/deadline.hpp"
#include "tandem/error.hpp"

namespace tandem {

template <class T>
class Connection;
template <class T>
class Pipe;

struct QueueOptions {
  std::size_t maxsize = 0;                      // at most this many items; 0: as many as fit
  std::size_t capacity_bytes = std::size_t{8} << 20;  // room for encoded items (the largest item, too)
  std::string name = {};  // what the pitfall diagnostics call it (up to 47 characters are kept)
};

namespace detail {
// A buffer to encode one item into before it is copied into a queue, taken from this thread's
// spares and given back after the put. Not one buffer per thread: encoding an item runs the
// user's code (a cereal serialize function), which may put into another queue.
class ScratchLease {
 public:
  ScratchLease();
  ScratchLease(const ScratchLease&) = delete;
  ScratchLease& operator=(const ScratchLease&) = delete;
  ~ScratchLease();
  ByteWriter& writer() noexcept { return *writer_; }

 private:
  std::unique_ptr<ByteWriter> writer_;
};
// TimeoutError for `what`, saying so if a put into `queue` was refused as never fitting.
[[noreturn]] void throw_queue_timeout(const char* what, const ByteQueue& queue);
}  // namespace detail

template <class T>
class Queue {
  static_assert(detail::kCanTravel<T>,
                "tandem::Queue<T>: an argument or result type cannot travel between processes: use a trivially "
                "copyable type, a std::vector or std::string of such, or give T a cereal serialize() function and a default constructor");

 public:
  Queue() : Queue(QueueOptions{}) {}
  explicit Queue(QueueOptions options) : queue_(detail::ByteQueue::create(options.capacity_bytes, options.maxsize, false, options.name)) {}

  // Blocks while the queue is full. The timed forms throw TimeoutError when it stayed full.
  void put(const T& item) { put_by(item, detail::Clock::time_point::max()); }
  template <class Rep, class Period>
  void put_for(const T& item, std::chrono::duration<Rep, Period> timeout) {
    if (!put_by(item, detail::deadline_after(timeout))) detail::throw_queue_timeout("Queue::put_for: the queue stayed full", queue_);
  }
  template <class Clock, class Duration>
  void put_until(const T& item, std::chrono::time_point<Clock, Duration> deadline) {
    if (!put_by(item, detail::deadline_at(deadline))) detail::throw_queue_timeout("Queue::put_until: the queue stayed full", queue_);
  }
  // Without waiting; false if the queue is full.
  bool try_put(const T& item) { return put_by(item, detail::Clock::time_point::min()); }

  // Blocks while the queue is empty. The timed forms throw TimeoutError when it stayed empty.
  T get() { return *get_by(detail::Clock::time_point::max()); }
  template <class Rep, class Period>
  T get_for(std::chrono::duration<Rep, Period> timeout) {
    return got(get_by(detail::deadline_after(timeout)), "Queue::get_for: the queue stayed empty");
  }
  template <class Clock, class Duration>
  T get_until(std::chrono::time_point<Clock, Duration> deadline) {
    return got(get_by(detail::deadline_at(deadline)), "Queue::get_until: the queue stayed empty");
  }
  // Without waiting; nullopt if the queue is empty.
  std::optional<T> try_get() { return get_by(detail::Clock::time_point::min()); }

  // Batches: several items per meeting of producer and consumer, so small items cost a fraction
  // of a put or get each. put_many puts `items` in order (another producer's items may come
  // between its batches of up to 256) and blocks until all are in; the timed forms throw
  // TimeoutError, saying how many went in, when not all did; try_put_many puts what fits now
  // and returns how many.
  void put_many(std::span<const T> items) { put_many_by(items, detail::Clock::time_point::max(), "put_many"); }
  template <class Rep, class Period>
  void put_many_for(std::span<const T> items, std::chrono::duration<Rep, Period> timeout) {
    put_many_by(items, detail::deadline_after(timeout), "put_many_for");
  }
  template <class Clock, class Duration>
  void put_many_until(std::span<const T> items, std::chrono::time_point<Clock, Duration> deadline) {
    put_many_by(items, detail::deadline_at(deadline), "put_many_until");
  }
  std::size_t try_put_many(std::span<const T> items) { return put_some(items, detail::Clock::time_point::min()); }
  // Up to `most` items, in order, as many as are there once one is (at most 256 at a time): blocks
  // while the queue is empty; the timed forms throw TimeoutError when it stayed empty;
  // try_get_many returns what is there now, perhaps nothing.
  std::vector<T> get_many(std::size_t most) { return get_many_by(most, detail::Clock::time_point::max()); }
  template <class Rep, class Period>
  std::vector<T> get_many_for(std::size_t most, std::chrono::duration<Rep, Period> timeout) {
    return got_many(get_many_by(most, detail::deadline_after(timeout)), most, "Queue::get_many_for: the queue stayed empty");
  }
  template <class Clock, class Duration>
  std::vector<T> get_many_until(std::size_t most, std::chrono::time_point<Clock, Duration> deadline) {
    return got_many(get_many_by(most, detail::deadline_at(deadline)), most, "Queue::get_many_until: the queue stayed empty");
  }
  std::vector<T> try_get_many(std::size_t most) { return get_many_by(most, detail::Clock::time_point::min()); }

  void close() { queue_.close(); }
  bool closed() const noexcept { return queue_.closed(); }
  // Snapshots, as Python's: another agent may put or get at any moment, and while one does,
  // qsize may be off by the items under way. empty counts an item being put as there.
  bool empty() const noexcept { return queue_.empty(); }
  // The items in the queue: O(items), at most one look per slot of the ring.
  std::size_t qsize() const noexcept { return queue_.item_count(); }
  // Whether a put would wait now: `maxsize` items are in, or the ring has no free slot at all
  // (an item larger than one slot may wait before the ring is full).
  bool full() const noexcept { return queue_.full(); }
  std::size_t capacity_bytes() const noexcept { return queue_.capacity_bytes(); }

 protected:
  explicit Queue(detail::ByteQueue queue) : queue_(std::move(queue)) {}

  bool put_by(const T& item, detail::Clock::time_point deadline) {
    if constexpr (detail::kIsRaw<T> && !detail::TravelsByHandle<T>) {  // its encoding is its bytes
      return queue_.put({reinterpret_cast<const std::byte*>(&item), sizeof(T)}, deadline);
    }
    detail::ScratchLease scratch;
    detail::encode(scratch.writer(), item);
    return queue_.put(scratch.writer().bytes(), deadline);
  }
  // One batch: the longest prefix of `items` that fits by `deadline`.
  std::size_t put_some(std::span<const T> items, detail::Clock::time_point deadline) {
    if (items.empty()) return 0;
    const std::size_t count = std::min(items.size(), detail::ByteQueue::kMostPerBatch);
    std::span<const std::byte> encoded[detail::ByteQueue::kMostPerBatch];
    if constexpr (detail::kIsRaw<T> && !detail::TravelsByHandle<T>) {  // its encoding is its bytes
      for (std::size_t i = 0; i < count; ++i) encoded[i] = {reinterpret_cast<const std::byte*>(&items[i]), sizeof(T)};
      return queue_.put_some(std::span(encoded, count), deadline);
    } else {
      detail::ScratchLease scratch;
      std::size_t ends[detail::ByteQueue::kMostPerBatch];
      for (std::size_t i = 0; i < count; ++i) {
        detail::encode(scratch.writer(), items[i]);
        ends[i] = scratch.writer().size();
      }
      const std::byte* base = scratch.writer().bytes().data();
      for (std::size_t i = 0; i < count; ++i) {
        const std::size_t begin = i == 0 ? 0 : ends[i - 1];
        encoded[i] = {base + begin, ends[i] - begin};
      }
      return queue_.put_some(std::span(encoded, count), deadline);
    }
  }
  void put_many_by(std::span<const T> items, detail::Clock::time_point deadline, const char* call) {
    std::size_t done = 0;
    while (done < items.size()) {
      const std::size_t put = put_some(items.subspan(done), deadline);
      if (put == 0) {
        detail::throw_queue_timeout((std::string("Queue::") + call + ": the queue stayed full; " + std::to_string(done) +
                                     " of " + std::to_string(items.size()) + " items went in").c_str(),
                                    queue_);
      }
      done += put;
    }
  }
  std::vector<T> get_many_by(std::size_t most, detail::Clock::time_point deadline) {
    std::vector<T> items;
    items.reserve(std::min(most, detail::ByteQueue::kMostPerBatch));
    queue_.get_some(
        [](void* context, std::span<const std::byte> bytes) {
          detail::ByteReader in(bytes);
          static_cast<std::vector<T>*>(context)->push_back(detail::decode<T>(in));
          if (in.left() != 0) detail::throw_malformed("a queue item longer than its value");
        },
        &items, most, deadline);
    return items;
  }
  std::vector<T> got_many(std::vector<T> items, std::size_t most, const char* timeout_message) {
    if (items.empty() && most != 0) detail::throw_queue_timeout(timeout_message, queue_);
    return items;
  }
  T got(std::optional<T> item, const char* timeout_message) {
    if (!item) detail::throw_queue_timeout(timeout_message, queue_);
    return std::move(*item);
  }
  std::optional<T> get_by(detail::Clock::time_point deadline) {
    std::optional<T> item;
    queue_.get(
        [](void* context, std::span<const std::byte> bytes) {
          detail::ByteReader in(bytes);
          static_cast<std::optional<T>*>(context)->emplace(detail::decode<T>(in));
          if (in.left() != 0) detail::throw_malformed("a queue item longer than its value");
        },
        &item, deadline);
    return item;
  }

  friend struct detail::Traveller<Queue>;
  template <class>
  friend class Connection;  // holds its pipe end on the queues (detail::PipeEndHold)
  template <class>
  friend class Pipe;
  detail::ByteQueue queue_;
};

// A Queue whose consumers report each item done (task_done), so that a producer can wait until
// all it put has been handled (join), as Python's JoinableQueue.
//
//   tandem::JoinableQueue<int> work;  ... for (int i : items) work.put(i);  work.join();
template <class T>
class JoinableQueue : public Queue<T> {
 public:
  JoinableQueue() : JoinableQueue(QueueOptions{}) {}
  explicit JoinableQueue(QueueOptions options)
      : Queue<T>(detail::ByteQueue::create(options.capacity_bytes, options.maxsize, true, options.name)) {}

  // One item taken by get is handled. tandem::Error if called more often than items were put.
  void task_done() { this->queue_.task_done(); }
  // Blocks until every item put has been reported done. The timed forms return false when some
  // were still not done.
  void join() { this->queue_.join(detail::Clock::time_point::max()); }
  template <class Rep, class Period>
  bool join_for(std::chrono::duration<Rep, Period> timeout) {
    return this->queue_.join(detail::deadline_after(timeout));
  }
  template <class Clock, class Duration>
  bool join_until(std::chrono::time_point<Clock, Duration> deadline) {
    return this->queue_.join(detail::deadline_at(deadline));
  }

 private:
  friend struct detail::Traveller<JoinableQueue>;
  explicit JoinableQueue(detail::ByteQueue queue) : Queue<T>(std::move(queue)) {}
};

namespace detail {
template <class T>
struct Traveller<Queue<T>> {
  static void encode(ByteWriter& out, const Queue<T>& queue) { queue.queue_.encode(out); }
  static Queue<T> decode(ByteReader& in) { return Queue<T>(ByteQueue::decode(in)); }
};
template <class T>
struct Traveller<JoinableQueue<T>> {
  static void encode(ByteWriter& out, const JoinableQueue<T>& queue) { Traveller<Queue<T>>::encode(out, queue); }
  static JoinableQueue<T> decode(ByteReader& in) {
    ByteQueue queue = ByteQueue::decode(in);
    if (!queue.joinable()) throw_malformed("a JoinableQueue handle names a plain Queue");
    return JoinableQueue<T>(std::move(queue));
  }
};
}  // namespace detail

}  // namespace tandem
