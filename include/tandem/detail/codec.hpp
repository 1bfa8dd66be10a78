// How values cross a process boundary: raw bytes for trivially copyable types and contiguous
// ranges of them, cereal's binary format for the rest, always into a reused buffer. The reader
// checks every length and count against what it was given, so malformed bytes from a worker
// become a tandem::Error, never a read past the end nor an allocation the message cannot fill.
#pragma once

#include <cereal/archives/binary.hpp>
#include <cereal/types/array.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/set.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/unordered_map.hpp>
#include <cereal/types/unordered_set.hpp>
#include <cereal/types/utility.hpp>
#include <cereal/types/variant.hpp>
#include <cereal/types/vector.hpp>
#include <algorithm>
#include <array>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <ostream>
#include <span>
#include <streambuf>
#include <string>
#include <type_traits>
#include <vector>

#include "tandem/detail/byte_buffer.hpp"
#include "tandem/detail/checked_archive.hpp"
#include "tandem/detail/holds_address.hpp"
#include "tandem/detail/traveller.hpp"
#include "tandem/error.hpp"

namespace tandem::detail {

template <class T>
struct IsContiguousOfRaw : std::false_type {};

template <class C, class Tr, class A>
struct IsContiguousOfRaw<std::basic_string<C, Tr, A>> : std::true_type {};

// Raw: copied as its bytes. A pointer, a view or a struct holding one is trivially copyable too,
// but its address means nothing in another process; an optional or variant (also as a field)
// has a tag that must be checked when read, so it goes through cereal (holds_address.hpp).
template <class T>
inline constexpr bool kIsRaw = std::is_trivially_copyable_v<T> && !kHoldsAddress<T> && !kHoldsTag<T>;

template <class T, class A>
struct IsContiguousOfRaw<std::vector<T, A>> : std::bool_constant<kIsRaw<T> && !std::is_same_v<T, bool>> {};

// Whether a value holds an address anywhere the compiler can see: itself (holds_address.hpp), or
// the elements of the standard containers and wrappers cereal serializes for any element type
// (cereal would say a vector of pointers is serializable, then fail deep inside itself).
template <class T>
struct ContainsAddress : std::bool_constant<kHoldsAddress<T>> {};
template <class T, std::size_t N>
struct ContainsAddress<std::array<T, N>> : ContainsAddress<T> {};
template <class T, class A>
struct ContainsAddress<std::vector<T, A>> : ContainsAddress<T> {};
template <class T>
struct ContainsAddress<std::optional<T>> : ContainsAddress<T> {};
template <class... Ts>
struct ContainsAddress<std::tuple<Ts...>> : std::disjunction<ContainsAddress<Ts>...> {};
template <class... Ts>
struct ContainsAddress<std::variant<Ts...>> : std::disjunction<ContainsAddress<Ts>...> {};
template <class A, class B>
struct ContainsAddress<std::pair<A, B>> : std::disjunction<ContainsAddress<A>, ContainsAddress<B>> {};
template <class K, class V, class C, class A>
struct ContainsAddress<std::map<K, V, C, A>> : std::disjunction<ContainsAddress<K>, ContainsAddress<V>> {};
template <class K, class V, class H, class E, class A>
struct ContainsAddress<std::unordered_map<K, V, H, E, A>> : std::disjunction<ContainsAddress<K>, ContainsAddress<V>> {};
template <class K, class C, class A>
struct ContainsAddress<std::set<K, C, A>> : ContainsAddress<K> {};
template <class K, class H, class E, class A>
struct ContainsAddress<std::unordered_set<K, H, E, A>> : ContainsAddress<K> {};

// std::conjunction stops at the first false: asking cereal about a raw pointer would trip a
// static_assert inside cereal before tandem's own message could explain.
template <class T>
inline constexpr bool kIsCerealizable =
    std::conjunction_v<std::negation<ContainsAddress<T>>,
                       cereal::traits::is_output_serializable<T, cereal::BinaryOutputArchive>,
                       cereal::traits::is_input_serializable<T, CheckedInputArchive>,
                       std::is_default_constructible<T>>;

// Whether a value of type T can travel between processes.
template <class T>
inline constexpr bool kCanTravel =
    TravelsByHandle<T> || kIsRaw<T> || IsContiguousOfRaw<T>::value || kIsCerealizable<T> || std::is_void_v<T>;

// cereal writes through a std::ostream: this adapts one to a ByteWriter without a stringstream's
// copy. (It reads back through CheckedInputArchive, which reads the ByteReader itself.)
class WriterStreambuf final : public std::streambuf {
 public:
  explicit WriterStreambuf(ByteWriter& out) : out_(out) {}

 protected:
  std::streamsize xsputn(const char* data, std::streamsize n) override {
    out_.write(data, static_cast<std::size_t>(n));
    return n;
  }
  int_type overflow(int_type c) override {
    if (c != traits_type::eof()) {
      const char ch = traits_type::to_char_type(c);
      out_.write(&ch, 1);
    }
    return traits_type::not_eof(c);
  }

 private:
  ByteWriter& out_;
};

template <class T>
void encode(ByteWriter& out, const T& value) {
  static_assert(kCanTravel<T>,
                "This type cannot travel to another process: use a trivially copyable type holding no pointer, "
                "reference or view (also in a field), a std::vector or std::string of such, or give the type a "
                "cereal serialize() function and a default constructor "
                "(https://uscilab.github.io/cereal/) and include the cereal/types/ header it needs.");
  if constexpr (TravelsByHandle<T>) {
    Traveller<T>::encode(out, value);
  } else if constexpr (kIsRaw<T>) {
    out.write_raw(value);
  } else if constexpr (IsContiguousOfRaw<T>::value) {
    const std::uint64_t count = value.size();
    out.write_raw(count);
    out.write(value.data(), count * sizeof(typename T::value_type));
  } else {
    WriterStreambuf buffer(out);
    std::ostream stream(&buffer);
    cereal::BinaryOutputArchive archive(stream);
    archive(value);
  }
}

// Writes `values` as a std::vector<T> would be written, straight from the caller's memory.
template <class T>
void encode_span(ByteWriter& out, std::span<const T> values) {
  if constexpr (IsContiguousOfRaw<std::vector<T>>::value) {
    const std::uint64_t count = values.size();
    out.write_raw(count);
    out.write(values.data(), values.size_bytes());
  } else {
    std::vector<T> copy(values.begin(), values.end());
    encode(out, copy);
  }
}

template <class T>
T decode(ByteReader& in) {
  static_assert(kCanTravel<T>, "This type cannot travel to another process (see encode).");
  if constexpr (TravelsByHandle<T>) {
    return Traveller<T>::decode(in);
  } else if constexpr (std::is_same_v<T, bool>) {
    const auto byte = in.read_raw<std::uint8_t>();
    if (byte > 1) throw_malformed("a bool that is neither 0 nor 1");
    return byte == 1;
  } else if constexpr (kIsRaw<T>) {
    return in.template read_raw<T>();
  } else if constexpr (IsContiguousOfRaw<T>::value) {
    using Element = typename T::value_type;
    const auto count = in.read_raw<std::uint64_t>();
    if (count > in.left() / sizeof(Element)) throw_malformed("a sequence is longer than its message");
    T value;
    if constexpr (std::is_default_constructible_v<Element>) {
      value.resize(static_cast<std::size_t>(count));
      in.read(value.data(), static_cast<std::size_t>(count) * sizeof(Element));
    } else {
      value.reserve(static_cast<std::size_t>(count));
      for (std::uint64_t i = 0; i < count; ++i) value.push_back(in.read_raw<Element>());
    }
    return value;
  } else {
    T value;
    try {
      CheckedInputArchive archive(in);
      archive(value);
    } catch (const cereal::Exception& e) {
      throw_malformed(e.what());
    }
    return value;
  }
}


}  // namespace tandem::detail
