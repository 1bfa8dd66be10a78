// The bytes of a message: ByteWriter appends them into storage kept across messages, ByteReader
// reads them back with every read bounds-checked (a message from another process is not trusted).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <span>
#include <vector>

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

}  // namespace tandem::detail
