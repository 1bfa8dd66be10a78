// Which callables can be sent to another process, and how they travel.
//
// C++ cannot see what a closure captured: a lambda capturing `[&x]`, `[this]` or a pointer is a
// trivially copyable object whose copy, in a worker process, reads that process's own memory
// (stale, or nothing at all). So only callables whose state the compiler can check travel:
//  - a function pointer: as its offset from code_anchor, valid in a copy of the program that is
//    mapped at another address (a spawned worker, under address-space randomization);
//  - a stateless function object (a captureless lambda, std::plus<>): its type says it all;
//  - a tandem::Partial: its function as above, then its bound values as arguments travel;
//  - a pool's own wrappers (starmap's unpacking) around any of these.
#pragma once

#include <cstdint>
#include <tuple>
#include <type_traits>
#include <utility>

#include "tandem/detail/code_offset.hpp"
#include "tandem/detail/codec.hpp"
#include "tandem/partial.hpp"

namespace tandem::detail {

// Function pointers and stateless function objects. (The primary template: the wrappers below
// specialize it.)
template <class F>
struct CallableTraveller {
  static constexpr bool kFunctionPointer = std::is_pointer_v<F> && std::is_function_v<std::remove_pointer_t<F>>;
  static constexpr bool kStateless = std::is_class_v<F> && std::is_empty_v<F> && std::is_trivially_copyable_v<F>;
  static constexpr bool kTravels = kFunctionPointer || kStateless;
  // Whether its encoding is a fixed number of bytes that can be copied in place.
  static constexpr bool kFixedBytes = kStateless;

  static void encode(ByteWriter& out, const F& f) {
    if constexpr (kFunctionPointer) {
      out.write_raw(code_offset(reinterpret_cast<const void*>(f)));
    } else {
      out.write_raw(f);
    }
  }
  static F decode(ByteReader& in) {
    if constexpr (kFunctionPointer) {
      return function_at<F>(in.read_raw<std::int64_t>());
    } else {
      return in.read_raw<F>();
    }
  }
};

template <class F, class... Values>
struct CallableTraveller<Partial<F, Values...>> {
  static constexpr bool kTravels = CallableTraveller<F>::kTravels && (detail::kCanTravel<Values> && ...);
  static constexpr bool kFixedBytes = false;

  static void encode(ByteWriter& out, const Partial<F, Values...>& partial) {
    CallableTraveller<F>::encode(out, partial.function());
    std::apply([&out](const Values&... values) { (detail::encode(out, values), ...); }, partial.values());
  }
  static Partial<F, Values...> decode(ByteReader& in) {
    F f = CallableTraveller<F>::decode(in);
    std::tuple<Values...> values{detail::decode<Values>(in)...};  // braces: decoded left to right
    return std::apply([&f](Values&... v) { return Partial<F, Values...>(std::move(f), std::move(v)...); }, values);
  }
};

// starmap's callable: f applied to the elements of a tuple.
template <class F>
struct Unpacking {
  F f;
  template <class Tuple>
  decltype(auto) operator()(Tuple&& args) {
    return std::apply(f, std::forward<Tuple>(args));
  }
};

template <class F>
struct CallableTraveller<Unpacking<F>> {
  static constexpr bool kTravels = CallableTraveller<F>::kTravels;
  static constexpr bool kFixedBytes = false;

  static void encode(ByteWriter& out, const Unpacking<F>& unpacking) { CallableTraveller<F>::encode(out, unpacking.f); }
  static Unpacking<F> decode(ByteReader& in) { return Unpacking<F>{CallableTraveller<F>::decode(in)}; }
};

// Whether a callable can be sent to a worker process.
template <class F>
inline constexpr bool kCallableCanTravel = CallableTraveller<F>::kTravels;

template <class F>
void encode_callable(ByteWriter& out, const F& f) {
  CallableTraveller<F>::encode(out, f);
}
template <class F>
F decode_callable(ByteReader& in) {
  return CallableTraveller<F>::decode(in);
}

}  // namespace tandem::detail
