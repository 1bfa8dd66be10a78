// Pipe<T>: two connected ends, as Python's multiprocessing.Pipe: what one end sends, the other
// receives, in order. Duplex by default; a one-way pipe's first end only receives and its
// second only sends.
//
//   auto [parent, child] = tandem::Pipe<std::string>();
//   tandem::Process p([](tandem::Connection<std::string> c) { c.send("ready"); }, child);
//   p.start();  parent.recv();   // "ready"
//
// Each direction is a tandem::Queue<T> (see queue.hpp): the same rules for what travels, the same
// capacity and timeouts. A Connection is a handle, passed to other agents like a Queue.
// close() ends both directions: the peer receives what was already sent, then QueueClosed, and
// its sends fail with QueueClosed.
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
  std::optional<T> try_recv() { return incoming("try_recv").try_get(); }
  // Whether something is waiting to be received (a snapshot).
  bool poll() { return !incoming("poll").empty(); }
  bool readable() const noexcept { return incoming_.has_value(); }
  bool writable() const noexcept { return outgoing_.has_value(); }
  void close() {
    if (incoming_) incoming_->close();
    if (outgoing_) outgoing_->close();
  }

 private:
  template <class>
  friend class Pipe;
  friend struct detail::Traveller<Connection>;
  Connection(std::optional<Queue<T>> incoming, std::optional<Queue<T>> outgoing)
      : incoming_(std::move(incoming)), outgoing_(std::move(outgoing)) {}

  Queue<T>& incoming(const char* call) {
    if (!incoming_) throw Error(std::string("Connection::") + call + ": this end of a one-way pipe only sends");
    return *incoming_;
  }
  Queue<T>& outgoing(const char* call) {
    if (!outgoing_) throw Error(std::string("Connection::") + call + ": this end of a one-way pipe only receives");
    return *outgoing_;
  }

  std::optional<Queue<T>> incoming_;
  std::optional<Queue<T>> outgoing_;
};

template <class T>
class Pipe {
 public:
  explicit Pipe(bool duplex = true, QueueOptions options = {})
      : Pipe(Queue<T>(options), duplex ? std::optional<Queue<T>>(Queue<T>(options)) : std::nullopt) {}

  Connection<T> first;
  Connection<T> second;

 private:
  // first receives what second sends on `to_first`, and the reverse on `to_second`.
  Pipe(Queue<T> to_first, std::optional<Queue<T>> to_second)
      : first(to_first, to_second), second(to_second, to_first) {}
};

namespace detail {
template <class T>
struct Traveller<Connection<T>> {
  static void encode(ByteWriter& out, const Connection<T>& end) {
    for (const auto* queue : {&end.incoming_, &end.outgoing_}) {
      out.write_raw(static_cast<std::uint8_t>(queue->has_value()));
      if (*queue) Traveller<Queue<T>>::encode(out, **queue);
    }
  }
  static Connection<T> decode(ByteReader& in) {
    auto read_queue = [&in]() -> std::optional<Queue<T>> {
      if (in.read_raw<std::uint8_t>() == 0) return std::nullopt;
      return Traveller<Queue<T>>::decode(in);
    };
    auto incoming = read_queue();
    auto outgoing = read_queue();
    return Connection<T>(std::move(incoming), std::move(outgoing));
  }
};
}  // namespace detail

}  // namespace tandem
