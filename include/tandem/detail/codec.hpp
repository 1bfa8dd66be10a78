// How values cross a process boundary: raw bytes for trivially copyable types and contiguous
// ranges of them, cereal's binary archive for the rest, always into a reused buffer. The reader
// checks every length against what it was given, so malformed bytes from a worker become a
// tandem::Error, never a read past the end.
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
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <istream>
#include <new>
#include <ostream>
#include <span>
#include <streambuf>
#include <string>
#include <type_traits>
#include <vector>

#include "tandem/detail/holds_address.hpp"
#include "tandem/error.hpp"

namespace tandem::detail {

// An append-only byte buffer whose storage is kept across messages: its own vector, or memory
// it is given (a worker encodes its results straight into a memory file it may hand over).
class ByteWriter {
 public:
  // Memory a writer may use instead of its vector.
  class Storage {
   public:
    virtual std::byte* data() noexcept = 0;
    virtual std::size_t capacity() const noexcept = 0;
    // Makes room for `capacity` bytes, keeping the bytes already there.
    virtual void grow(std::size_t capacity) = 0;

   protected:
    ~Storage() = default;
  };

  ByteWriter() = default;
  ByteWriter(const ByteWriter&) = delete;
  ByteWriter& operator=(const ByteWriter&) = delete;

  void clear() noexcept { size_ = 0; }
  std::size_t size() const noexcept { return size_; }
  const std::byte* data() const noexcept { return data_; }
  std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }

  // Room for `n` more bytes, to be filled by the caller.
  std::byte* extend(std::size_t n) {
    if (size_ + n > capacity_) grow(size_ + n);
    std::byte* out = data_ + size_;
    size_ += n;
    return out;
  }
  void write(const void* data, std::size_t n) {
    if (n != 0) std::memcpy(extend(n), data, n);
  }
  template <class T>
  void write_raw(const T& value) {
    write(&value, sizeof value);
  }

  // Writes into `storage` from now on (nullptr: into the writer's own vector), starting empty.
  void use(Storage* storage) noexcept {
    storage_ = storage;
    data_ = storage ? storage->data() : owned_.data();
    capacity_ = storage ? storage->capacity() : owned_.size();
    size_ = 0;
  }

 private:
  void grow(std::size_t needed) {
    const std::size_t capacity = std::max(needed, capacity_ * 2);
    if (storage_) {
      storage_->grow(capacity);
      data_ = storage_->data();
    } else {
      owned_.resize(capacity);
      data_ = owned_.data();
    }
    capacity_ = capacity;
  }

  std::vector<std::byte> owned_;
  Storage* storage_ = nullptr;
  std::byte* data_ = nullptr;
  std::size_t capacity_ = 0;
  std::size_t size_ = 0;
};

[[noreturn]] void throw_malformed(const char* what);

// Reads from bytes it does not own; every read is bounds-checked.
class ByteReader {
 public:
  explicit ByteReader(std::span<const std::byte> bytes) noexcept : bytes_(bytes) {}

  std::size_t left() const noexcept { return bytes_.size() - position_; }
  const std::byte* take(std::size_t n) {
    if (n > left()) throw_malformed("a value runs past the end of its message");
    const std::byte* at = bytes_.data() + position_;
    position_ += n;
    return at;
  }
  void read(void* out, std::size_t n) {
    if (n != 0) std::memcpy(out, take(n), n);
  }
  template <class T>
  T read_raw() {
    return load_raw<T>(take(sizeof(T)));
  }

  // A trivially copyable T from unaligned bytes. Such types are implicit-lifetime: copying bytes
  // into storage creates one, without needing a default constructor (closures have none).
  template <class T>
  static T load_raw(const std::byte* at) noexcept {
    alignas(T) std::byte storage[sizeof(T)];
    std::memcpy(storage, at, sizeof(T));
    return *std::launder(reinterpret_cast<T*>(storage));
  }

 private:
  std::span<const std::byte> bytes_;
  std::size_t position_ = 0;
};

template <class T>
struct IsContiguousOfRaw : std::false_type {};
template <class T, class A>
struct IsContiguousOfRaw<std::vector<T, A>>
    : std::bool_constant<std::is_trivially_copyable_v<T> && !kHoldsAddress<T> && !std::is_same_v<T, bool>> {};
template <class C, class Tr, class A>
struct IsContiguousOfRaw<std::basic_string<C, Tr, A>> : std::true_type {};

// Raw: copied as its bytes. A pointer, a view or a struct holding one is trivially copyable too,
// but its address means nothing in another process (holds_address.hpp).
template <class T>
inline constexpr bool kIsRaw = std::is_trivially_copyable_v<T> && !kHoldsAddress<T>;

// std::conjunction stops at the first false: asking cereal about a raw pointer would trip a
// static_assert inside cereal before tandem's own message could explain.
template <class T>
inline constexpr bool kIsCerealizable =
    std::conjunction_v<std::negation<std::is_pointer<T>>,
                       cereal::traits::is_output_serializable<T, cereal::BinaryOutputArchive>,
                       cereal::traits::is_input_serializable<T, cereal::BinaryInputArchive>,
                       std::is_default_constructible<T>>;

// Types that travel as a reference to memory both processes map (tandem's shared objects:
// SharedMemory, Lock, Value ...) specialize Traveller with
//   static void encode(ByteWriter&, const T&);  static T decode(ByteReader&);
template <class T>
struct Traveller {};

template <class T>
concept TravelsByHandle = requires(ByteWriter& out, ByteReader& in, const T& value) {
  Traveller<T>::encode(out, value);
  { Traveller<T>::decode(in) } -> std::same_as<T>;
};

// Whether a value of type T can travel between processes.
template <class T>
inline constexpr bool kCanTravel =
    TravelsByHandle<T> || kIsRaw<T> || IsContiguousOfRaw<T>::value || kIsCerealizable<T> || std::is_void_v<T>;

// cereal writes through a std::ostream; these adapt one to a ByteWriter and a ByteReader
// without a stringstream's copy.
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

class ReaderStreambuf final : public std::streambuf {
 public:
  ReaderStreambuf(const std::byte* data, std::size_t n) {
    char* begin = const_cast<char*>(reinterpret_cast<const char*>(data));
    setg(begin, begin, begin + n);
  }
  std::size_t consumed() const noexcept { return static_cast<std::size_t>(gptr() - eback()); }
};

template <class T>
void encode(ByteWriter& out, const T& value) {
  static_assert(kCanTravel<T>,
                "This type cannot travel to another process: use a trivially copyable type holding no pointer, "
                "reference or view (also in a field), a std::vector or std::string of such, or give the type a "
                "cereal serialize() function "
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
  } else if constexpr (kIsRaw<T>) {
    return in.template read_raw<T>();
  } else if constexpr (IsContiguousOfRaw<T>::value) {
    using Element = typename T::value_type;
    const auto count = in.read_raw<std::uint64_t>();
    if (count > in.left() / sizeof(Element)) throw_malformed("a sequence is longer than its message");
    T value;
    value.resize(static_cast<std::size_t>(count));
    in.read(value.data(), static_cast<std::size_t>(count) * sizeof(Element));
    return value;
  } else {
    const std::size_t n = in.left();
    ReaderStreambuf buffer(in.take(0), n);
    std::istream stream(&buffer);
    T value;
    try {
      cereal::BinaryInputArchive archive(stream);
      archive(value);
    } catch (const cereal::Exception& e) {
      throw_malformed(e.what());
    }
    in.take(buffer.consumed());
    return value;
  }
}

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
