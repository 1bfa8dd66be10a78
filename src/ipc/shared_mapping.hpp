// Memory shared between processes: an anonymous memory file (memfd) mapped MAP_SHARED. The file
// descriptor lets a process that was not forked from the creator (a fork server's child, a
// spawned program) map the same pages; nothing appears under /dev/shm, so nothing can leak there.
//
// Every such file is sealed against shrinking (F_SEAL_SHRINK) as it is made, and a file that
// arrives from another process is mapped only once it carries that seal: a peer that truncated a
// file both map would turn the other's next access into SIGBUS. Growing stays allowed (a worker
// enlarges the file it encodes a result into), and cannot hurt a mapping already made.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>
#include <utility>

#include "os/private_descriptors.hpp"
#include "tandem/detail/unique_fd.hpp"
#include "tandem/error.hpp"

namespace tandem::detail {

class SharedMapping {
 public:
  SharedMapping() = default;
  // Whether every page is faulted in at once: for memory about to be written or read whole (a
  // large message), one call instead of a fault per page.
  enum class Populate { lazily, now };

  // A new, zero-filled region of `bytes`.
  explicit SharedMapping(std::size_t bytes, Populate populate = Populate::lazily)
      : file_(out_of_the_way(::memfd_create("tandem", MFD_CLOEXEC | MFD_ALLOW_SEALING))) {
    if (!file_) fail("memfd_create", bytes);
    if (::ftruncate(file_.get(), static_cast<off_t>(bytes)) != 0) fail("ftruncate", bytes);
    if (::fcntl(file_.get(), F_ADD_SEALS, F_SEAL_SHRINK) != 0) fail("sealing", bytes);
    map(bytes, populate);
  }
  // Maps the region another process created and passed as `file`, after making sure it cannot
  // shrink. `written` (when not 0): the bytes the sender says it wrote, which must lie in the
  // file and be backed by memory; only those are mapped (a sender's file may be far larger, or
  // sparse, and populating it would allocate what was never written). A read-only `file` (opened
  // O_RDONLY) is mapped read-only.
  enum class Access { read_write, read_only };
  static SharedMapping attach(UniqueFd file, Populate populate = Populate::lazily, std::size_t written = 0,
                              Access access = Access::read_write) {
    SharedMapping mapping;
    const int seals = ::fcntl(file.get(), F_GET_SEALS);
    if (seals < 0 || ((seals & F_SEAL_SHRINK) == 0 && ::fcntl(file.get(), F_ADD_SEALS, F_SEAL_SHRINK) != 0)) {
      throw Error("shared memory from another process: a memory file that may shrink under its mappings");
    }
    struct stat info {};
    if (::fstat(file.get(), &info) != 0 || info.st_size <= 0) fail("fstat", 0);
    const auto size = static_cast<std::size_t>(info.st_size);
    if (written > size || static_cast<std::size_t>(info.st_blocks) * 512 < written / 4096 * 4096) {
      throw Error("shared memory from another process: " + std::to_string(written) +
                  " bytes said to be written in a file of " + std::to_string(size) + " bytes, " +
                  std::to_string(static_cast<std::size_t>(info.st_blocks) * 512) + " of them backed");
    }
    mapping.file_ = std::move(file);
    const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    mapping.map(written == 0 ? size : std::min(size, (written + page - 1) / page * page), populate, access);
    return mapping;
  }
  SharedMapping(SharedMapping&& other) noexcept
      : file_(std::move(other.file_)), data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  SharedMapping& operator=(SharedMapping&& other) noexcept {
    if (this != &other) {
      reset();
      file_ = std::move(other.file_);
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  ~SharedMapping() { reset(); }

  // Enlarges the file and its mapping to `bytes`, keeping the contents (the mapping may move).
  void grow(std::size_t bytes) {
    if (bytes <= size_) return;
    // (The file may be larger than mapped already: shrinking it is sealed, and not needed.)
    struct stat info {};
    const bool large_enough = ::fstat(file_.get(), &info) == 0 && static_cast<std::size_t>(info.st_size) >= bytes;
    if (!large_enough && ::ftruncate(file_.get(), static_cast<off_t>(bytes)) != 0) fail("ftruncate", bytes);
    void* memory = ::mremap(data_, size_, bytes, MREMAP_MAYMOVE);
    if (memory == MAP_FAILED) fail("mremap", bytes);
    data_ = static_cast<std::byte*>(memory);
    size_ = bytes;
  }
  // A child forked later does not inherit this mapping (a large message's memory must not stay
  // alive in a fork-method worker or a user's fork after the pool is done with it, and a worker
  // must not inherit the rings of the workers forked before it).
  void keep_out_of_forks() noexcept { ::madvise(data_, size_, MADV_DONTFORK); }
  explicit operator bool() const noexcept { return data_ != nullptr; }
  std::byte* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  int fd() const noexcept { return file_.get(); }
  void reset() noexcept {
    if (data_) ::munmap(data_, size_);
    data_ = nullptr;
    size_ = 0;
    file_.reset();
  }

 private:
  [[noreturn]] static void fail(const char* what, std::size_t bytes) {
    throw Error(std::string("shared memory of ") + std::to_string(bytes) + " bytes: " + what + ": " +
                std::strerror(errno));
  }
  void map(std::size_t bytes, Populate populate, Access access = Access::read_write) {
    const int flags = MAP_SHARED | (populate == Populate::now ? MAP_POPULATE : 0);
    const int protection = access == Access::read_only ? PROT_READ : PROT_READ | PROT_WRITE;
    void* memory = ::mmap(nullptr, bytes, protection, flags, file_.get(), 0);
    if (memory == MAP_FAILED) fail("mmap", bytes);
    data_ = static_cast<std::byte*>(memory);
    size_ = bytes;
  }

  UniqueFd file_;
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace tandem::detail
