// WorkerInitializer: what a ProcessPool runs once in each worker as it starts (Python's
// initializer and initargs), kept as bytes so that it reaches workers under any start method.
//
//   tandem::ProcessPoolOptions options{.initializer = {load_model, std::string("model.bin"), 4}};
//
// Like a task's callable: a function pointer or a captureless lambda; the values after it are
// bound as tandem::partial binds them (checked and encoded as task arguments are), of any size.
#pragma once

#include <cstddef>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "tandem/detail/byte_buffer.hpp"
#include "tandem/detail/remote_task.hpp"
#include "tandem/partial.hpp"

namespace tandem {

class WorkerInitializer {
 public:
  // None: workers start straight away.
  WorkerInitializer() = default;
  // f(args...) in each worker. Implicit, so that `.initializer = f` and `.initializer = {f, args...}` read naturally.
  template <class F, class... Args>
    requires(!std::is_same_v<std::decay_t<F>, WorkerInitializer>)
  WorkerInitializer(F f, Args&&... args) {  // NOLINT(google-explicit-constructor)
    if constexpr (sizeof...(Args) == 0) {
      encode_call(f);
    } else {
      encode_call(partial(f, std::forward<Args>(args)...));
    }
  }

  explicit operator bool() const noexcept { return !bytes_.empty(); }
  // The encoded call: [entry offset][callable]; run in a worker by detail::run_initializer.
  std::span<const std::byte> bytes() const noexcept { return bytes_; }

 private:
  template <class F>
  void encode_call(const F& f) {
    static_assert(detail::kCallableCanTravel<F>,
                  "ProcessPoolOptions::initializer runs in the worker processes, so it must travel there: a "
                  "function pointer or a captureless lambda, with any values after it (or bound by "
                  "tandem::partial) of types that travel as task arguments do");
    static_assert(std::is_invocable_v<F&>,
                  "ProcessPoolOptions::initializer: the function must take exactly the values given after it");
    detail::ByteWriter out;
    out.write_raw(detail::code_offset(reinterpret_cast<const void*>(&call_entry<F>)));
    detail::encode_callable(out, f);
    bytes_.assign(out.data(), out.data() + out.size());
  }
  template <class F>
  static void call_entry(detail::ByteReader& in, detail::ByteWriter&) {
    F f = detail::decode_callable<F>(in);
    f();
  }

  std::vector<std::byte> bytes_;
};

namespace detail {
// Runs, in this process, the call that a WorkerInitializer's bytes describe.
void run_initializer(std::span<const std::byte> bytes);
}  // namespace detail

}  // namespace tandem
