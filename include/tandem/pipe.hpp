// Pipe<T>: two connected ends, as Python's multiprocessing.Pipe: what one end sends, the other
// receives, in order. Duplex by default; a one-way pipe's first end only receives and its
// second only sends.
//
//   auto [parent, child] = tandem::Pipe<std::string>();
//   tandem::Process p([](tandem::Connection<std::string> c) { c.send("ready"); }, child);
//   p.start();  parent.recv();   // "ready"
//
// Each direction is a tandem::Queue<T> (see queue.hpp): the same rules for what travels, the same
// capacity and timeouts. A Connection passes to other agents like a Queue.
//
// Ends close as a pipe's descriptors do in Python: each Connection object (a copy, one received
// by another agent, one inherited by a fork) holds its end open until it is closed (close()) or
// destroyed, or its process dies. When no live holder of an end is left, the pipe's directions
// close: the peer receives what was already sent, then QueueClosed (Python's EOFError), and its
// sends fail with QueueClosed. So, as in Python, close the end you passed to a child in the
// parent, or the parent will never see the child's end close:
//
//   auto [here, there] = tandem::Pipe<int>();
//   tandem::Process child([](tandem::Connection<int> end) { end.send(1); }, there);
//   child.start();  there.close();        // the child holds its own copy
//   here.recv();    here.recv();          // 1, then QueueClosed once the child is done
#pragma once

#include <chrono>
#include <optional>
#include <utility>

#include "tandem/detail/codec.hpp"
#include "tandem/error.hpp"
#include "tandem/queue.hpp"

namespace tandem {

template <class T>
class Connection {
 public:
  // tandem::Error on an end that only receives. The timed forms throw TimeoutError when the
  // direction stayed full.
  void send(const T& item) { outgoing("send").put(item); }
  template <class Rep, class Period>
  void send_for(const T& item, std::chrono::duration<Rep, Period> timeout) {
    outgoing("send_for").put_for(item, timeout);
  }
  template <class Clock, class Duration>
  void send_until(const T& item, std::chrono::time_point<Clock, Duration> deadline) {
    outgoing("send_until").put_until(item, deadline);
  }
  // tandem::Error on an end that only sends. The timed forms throw TimeoutError when nothing
  // arrived.
  T recv() { return incoming("recv").get(); }
  template <class Rep, class Period>
  T recv_for(std::chrono::duration<Rep, Period> timeout) {
    return incoming("recv_for").get_for(timeout);
  }
  template <class Clock, class Duration>
  T recv_until(std::chrono::time_point<Clock, Duration> deadline) {
    return incoming("recv_until").get_until(deadline);
  }
  // nullopt if nothing is there; QueueClosed if nothing is there and the peer's end is closed.
  std::optional<T> try_recv() { return incoming("try_recv").try_get(); }
  // Whether recv would return at once: something is waiting, or the peer's end is closed (a
  // snapshot).
  bool poll() {
    Queue<T>& queue = incoming("poll");
    return !queue.empty() || queue.closed();
  }
  bool readable() const noexcept { return incoming_.has_value(); }
  bool writable() const noexcept { return outgoing_.has_value(); }
  // Lets go of this end here: later calls on this object (and copies made of it after) throw
  // tandem::Error; other copies hold on (see above).
  void close() noexcept { hold_.release(); }
  bool closed() const noexcept { return !hold_.held(); }

 private:
  template <class>
  friend class Pipe;
  friend struct detail::Traveller<Connection>;
  Connection(std::optional<Queue<T>> incoming, std::optional<Queue<T>> outgoing, detail::PipeEndHold hold)
      : incoming_(std::move(incoming)), outgoing_(std::move(outgoing)), hold_(std::move(hold)) {}
  // A new end's first holder, here.
  Connection(std::optional<Queue<T>> incoming, std::optional<Queue<T>> outgoing)
      : Connection(incoming, outgoing, detail::PipeEndHold(bytes_of(incoming), bytes_of(outgoing))) {}
  static std::optional<detail::ByteQueue> bytes_of(const std::optional<Queue<T>>& queue) {
    return queue ? std::optional<detail::ByteQueue>(queue->queue_) : std::nullopt;
  }

  Queue<T>& incoming(const char* call) {
    if (!incoming_) throw Error(std::string("Connection::") + call + ": this end of a one-way pipe only sends");
    check_open(call);
    return *incoming_;
  }
  Queue<T>& outgoing(const char* call) {
    if (!outgoing_) throw Error(std::string("Connection::") + call + ": this end of a one-way pipe only receives");
    check_open(call);
    return *outgoing_;
  }
  void check_open(const char* call) {
    if (!hold_.held()) throw Error(std::string("Connection::") + call + ": this connection was closed (close())");
    hold_.peer_gone();
  }

  std::optional<Queue<T>> incoming_;
  std::optional<Queue<T>> outgoing_;
  detail::PipeEndHold hold_;
};

template <class T>
class Pipe {
 public:
  explicit Pipe(bool duplex = true, QueueOptions options = {})
      : Pipe(direction(options), duplex ? std::optional<Queue<T>>(direction(options)) : std::nullopt) {}

  Connection<T> first;
  Connection<T> second;

 private:
  static Queue<T> direction(const QueueOptions& options) {
    Queue<T> queue(options);
    queue.queue_.count_pipe_ends();
    return queue;
  }
  // first receives what second sends on `to_first`, and the reverse on `to_second`.
  Pipe(Queue<T> to_first, std::optional<Queue<T>> to_second)
      : first(to_first, to_second), second(to_second, to_first) {}
};

namespace detail {
template <class T>
struct Traveller<Connection<T>> {
  // [held][per direction: present, queue, the index it leaves from]. A closed Connection
  // arrives closed.
  static void encode(ByteWriter& out, const Connection<T>& end) {
    out.write_raw(static_cast<std::uint8_t>(end.hold_.held()));
    const std::optional<Queue<T>>* queues[2] = {&end.incoming_, &end.outgoing_};
    for (int role = 0; role < 2; ++role) {
      out.write_raw(static_cast<std::uint8_t>(queues[role]->has_value()));
      if (!*queues[role]) continue;
      Traveller<Queue<T>>::encode(out, **queues[role]);
      const bool counted = end.hold_.held();
      out.write_raw(counted ? end.hold_.send_away(static_cast<PipeEndHold::Role>(role)) : std::uint8_t{0});
    }
  }
  static Connection<T> decode(ByteReader& in) {
    const auto held = in.read_raw<std::uint8_t>();
    if (held > 1) throw_malformed("a pipe end whose held flag is neither 0 nor 1");
    std::optional<Queue<T>> queues[2];
    std::uint8_t from[2] = {0, 0};
    for (int role = 0; role < 2; ++role) {
      const auto present = in.read_raw<std::uint8_t>();
      if (present > 1) throw_malformed("a pipe end whose direction flag is neither 0 nor 1");
      if (present == 0) continue;
      queues[role] = Traveller<Queue<T>>::decode(in);
      from[role] = in.read_raw<std::uint8_t>();
    }
    PipeEndHold hold = held != 0 ? PipeEndHold(Connection<T>::bytes_of(queues[0]), from[0], Connection<T>::bytes_of(queues[1]), from[1])
                                 : PipeEndHold();
    return Connection<T>(std::move(queues[0]), std::move(queues[1]), std::move(hold));
  }
};
}  // namespace detail

}  // namespace tandem
