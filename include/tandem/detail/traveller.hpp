// Traveller<T>: how a handle to memory that several processes map (tandem's shared objects:
// SharedMemory, Lock, Event, Queue, Value ...) is written and read as bytes. Kept apart from
// codec.hpp, which serializes user types through cereal: a header of a shared object needs only
// this, so including lock.hpp or event.hpp does not pull in cereal.
#pragma once

#include <concepts>
#include <cstdint>
#include <string>

#include "tandem/detail/byte_buffer.hpp"

namespace tandem::detail {

// A type that travels as a reference to shared memory specializes Traveller with
//   static void encode(ByteWriter&, const T&);  static T decode(ByteReader&);
// and decode checks what it reads: the bytes may come from a process that wrote garbage.
template <class T>
struct Traveller {};

template <class T>
concept TravelsByHandle = requires(ByteWriter& out, ByteReader& in, const T& value) {
  Traveller<T>::encode(out, value);
  { Traveller<T>::decode(in) } -> std::same_as<T>;
};

// A short text in a handle (a shared object's name): [uint32 size][bytes], the size checked
// against what is left when read.
inline void encode_text(ByteWriter& out, const std::string& text) {
  const auto size = static_cast<std::uint32_t>(text.size());
  out.write_raw(size);
  out.write(text.data(), size);
}

inline std::string decode_text(ByteReader& in) {
  const auto size = in.read_raw<std::uint32_t>();
  const std::byte* at = in.take(size);
  return std::string(reinterpret_cast<const char*>(at), size);
}

}  // namespace tandem::detail
