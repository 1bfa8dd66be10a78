// Where a shared object (Lock, Value, Synchronized ...) keeps its state: at an offset in a
// SharedMemory, behind a tag naming the state's type, so a handle that arrives from another
// process is checked before it is trusted.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>

#include "tandem/detail/traveller.hpp"
#include "tandem/shared_memory.hpp"

namespace tandem::detail {

// A State must live in memory several processes map: no pointers, nothing owned elsewhere.
// Each declares `static constexpr std::uint32_t kTag`.
template <class State>
struct Tagged {
  // The State is built in place: some (a process-shared mutex) must never be copied.
  template <class... Args>
  explicit Tagged(std::in_place_t, Args&&... args) : state(std::forward<Args>(args)...) {}

  std::uint32_t tag = State::kTag;
  State state;
};

template <class State>
class SharedState {
 public:
  // A new State at the start of fresh memory of `bytes` (at least the State's own size).
  template <class... Args>
  static SharedState create(std::size_t bytes, Args&&... args) {
    SharedMemory memory(std::max(bytes, sizeof(Tagged<State>)));
    new (memory.data()) Tagged<State>(std::in_place, std::forward<Args>(args)...);
    return SharedState(std::move(memory), 0);
  }
  // The State that `memory` holds at `offset`; tandem::Error if it holds none there.
  SharedState(SharedMemory memory, std::size_t offset) : memory_(std::move(memory)), offset_(offset) {
    if (offset_ % alignof(Tagged<State>) != 0 || offset_ > memory_.size() ||
        memory_.size() - offset_ < sizeof(Tagged<State>)) {
      throw_malformed("a shared object's offset lies outside its memory");
    }
    auto* tagged = std::launder(reinterpret_cast<Tagged<State>*>(memory_.data() + offset_));
    if (tagged->tag != State::kTag) throw_malformed("a shared object's memory holds another kind of object");
    state_ = &tagged->state;
  }

  State& operator*() const noexcept { return *state_; }
  State* operator->() const noexcept { return state_; }
  const SharedMemory& memory() const noexcept { return memory_; }
  // The same memory seen as the Inner state that lies at `member` inside this one.
  template <class Inner>
  SharedState<Inner> inner(Tagged<Inner> State::*member) const {
    const auto* at = reinterpret_cast<const std::byte*>(&(state_->*member));
    return SharedState<Inner>(memory_, static_cast<std::size_t>(at - memory_.data()));
  }

  void encode(ByteWriter& out) const {
    Traveller<SharedMemory>::encode(out, memory_);
    out.write_raw(static_cast<std::uint64_t>(offset_));
  }
  static SharedState decode(ByteReader& in) {
    SharedMemory memory = Traveller<SharedMemory>::decode(in);
    const auto offset = in.read_raw<std::uint64_t>();
    return SharedState(std::move(memory), static_cast<std::size_t>(offset));
  }

 private:
  SharedMemory memory_;
  std::size_t offset_ = 0;
  State* state_ = nullptr;
};

// The one Traveller of the shared objects whose handle is a SharedState (Event, Lock, Semaphore,
// Barrier, FairLock, Value, Array, Synchronized): the tag check is SharedState's, and the rest is
// written here once. Such an object declares, privately,
//   friend struct detail::HandleAccess;
//   using SharedStateType = detail::SharedState<ItsState>;
//   SharedStateType state_;                      and a constructor from a SharedStateType;
// and, when a state of the right tag can still be the wrong one for it (an RLock's state read
// as a Lock's, a Value of another size), a `static void check_handle(const SharedStateType&)`
// that throws through throw_malformed.
struct HandleAccess {
  template <class T>
  static constexpr bool kIsHandle = requires { typename T::SharedStateType; };

  template <class T>
  static void encode(ByteWriter& out, const T& object) {
    object.state_.encode(out);
  }
  template <class T>
  static T decode(ByteReader& in) {
    auto state = T::SharedStateType::decode(in);
    if constexpr (requires { T::check_handle(state); }) T::check_handle(state);
    return T(std::move(state));
  }
};

template <class T>
  requires HandleAccess::kIsHandle<T>
struct Traveller<T> {
  static void encode(ByteWriter& out, const T& object) { HandleAccess::encode(out, object); }
  static T decode(ByteReader& in) { return HandleAccess::template decode<T>(in); }
};

}  // namespace tandem::detail
