// The cereal archive tandem reads values of other processes with: cereal's binary format, read
// from a ByteReader, with every count checked against the bytes left before anything is sized.
//
// cereal's own BinaryInputArchive trusts the counts it reads: a container or string that claims
// 2^40 elements is resized to that before its elements are read, so four bytes from a broken
// worker could make the pool allocate (and zero) all of memory. Here every element takes at least
// one byte of the message (a type whose elements serialize to nothing cannot have more elements
// than bytes left), so a count is a promise the message can be checked to keep.
#pragma once

#include <cereal/archives/binary.hpp>
#include <cereal/cereal.hpp>

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "tandem/detail/byte_buffer.hpp"

namespace tandem::detail {

class CheckedInputArchive : public cereal::InputArchive<CheckedInputArchive, cereal::AllowEmptyClassElision> {
 public:
  explicit CheckedInputArchive(ByteReader& in) : InputArchive(this), in_(in) {}

  void loadBinary(void* data, std::size_t size) { in_.read(data, size); }
  std::size_t left() const noexcept { return in_.left(); }

 private:
  ByteReader& in_;
};

template <class T>
std::enable_if_t<std::is_arithmetic_v<T> && !std::is_same_v<T, bool>> CEREAL_LOAD_FUNCTION_NAME(
    CheckedInputArchive& archive, T& value) {
  archive.loadBinary(std::addressof(value), sizeof value);
}

// A bool is one byte that must be 0 or 1: any other value would be undefined behaviour to read.
inline void CEREAL_LOAD_FUNCTION_NAME(CheckedInputArchive& archive, bool& value) {
  std::uint8_t byte = 0;
  archive.loadBinary(&byte, 1);
  if (byte > 1) throw_malformed("a bool that is neither 0 nor 1");
  value = byte == 1;
}

template <class T>
void CEREAL_SERIALIZE_FUNCTION_NAME(CheckedInputArchive& archive, cereal::NameValuePair<T>& pair) {
  archive(pair.value);
}

template <class T>
void CEREAL_SERIALIZE_FUNCTION_NAME(CheckedInputArchive& archive, cereal::SizeTag<T>& tag) {
  archive(tag.size);
  if (tag.size > archive.left()) throw_malformed("a count larger than the bytes that follow it");
}

template <class T>
void CEREAL_LOAD_FUNCTION_NAME(CheckedInputArchive& archive, cereal::BinaryData<T>& data) {
  archive.loadBinary(data.data, static_cast<std::size_t>(data.size));
}

}  // namespace tandem::detail

// It reads what cereal::BinaryOutputArchive writes (whose own pairing, with cereal's
// BinaryInputArchive, stays as it is).
namespace cereal::traits::detail {
template <>
struct get_output_from_input<tandem::detail::CheckedInputArchive> {
  using type = cereal::BinaryOutputArchive;
};
}  // namespace cereal::traits::detail
