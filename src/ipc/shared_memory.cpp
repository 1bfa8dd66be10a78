// A segment starts with a small header (a magic number, a random identity and the size), so a
// process that reaches it by name or through /proc can check it found what the handle meant:
// a descriptor number may have been reused for something else by then.
#include "tandem/shared_memory.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <string_view>
#include <mutex>
#include <new>
#include <unordered_map>
#include <utility>

#include "ipc/segment_janitor.hpp"
#include "tandem/detail/unique_fd.hpp"
#include "tandem/error.hpp"

namespace tandem {
namespace detail {
namespace {

constexpr std::uint64_t kMagic = 0x4d53'6d65'646e'6174;  // "tandemSM"
constexpr std::size_t kHeaderBytes = 64;                 // keeps the user's bytes cache-line aligned
constexpr std::size_t kMaxNameLength = 250;

struct Header {
  std::uint64_t magic;
  std::uint64_t id;
  std::uint64_t size;
};

std::uint64_t random_u64() {
  std::uint64_t value = 0;
  if (::getrandom(&value, sizeof value, 0) != sizeof value) throw Error("shared memory: getrandom failed");
  return value;
}

[[noreturn]] void fail(const std::string& what, int error) {
  throw Error("shared memory: " + what + ": " + std::strerror(error));
}

std::string normalized_name(std::string name) {
  if (name.empty()) {
    char generated[32];
    std::snprintf(generated, sizeof generated, "/tandem-%016llx", static_cast<unsigned long long>(random_u64()));
    return generated;
  }
  if (name.front() != '/') name.insert(name.begin(), '/');
  if (name.size() > kMaxNameLength + 1 || name.find('/', 1) != std::string::npos || name.size() == 1) {
    throw Error("shared memory name \"" + name + "\": use 1 to 250 characters and no '/' after the first");
  }
  return name;
}

std::optional<std::size_t> free_bytes_of_dev_shm() {
  struct statvfs info {};
  if (::statvfs("/dev/shm", &info) != 0) return std::nullopt;
  return static_cast<std::size_t>(info.f_bavail) * info.f_frsize;
}
std::string free_space_of_dev_shm() {
  const auto bytes = free_bytes_of_dev_shm();
  return bytes ? std::to_string(*bytes) + " bytes" : "unknown";
}

// A number of bytes from one line of a /proc or /sys file ("MemAvailable:  123 kB", "456").
std::optional<std::size_t> read_bytes(const char* path, std::string_view key = {}) {
  std::ifstream file(path);
  std::string line;
  while (std::getline(file, line)) {
    if (!key.empty() && line.rfind(key, 0) != 0) continue;
    std::istringstream fields(line.substr(key.size()));
    unsigned long long value = 0;
    std::string unit;
    if (!(fields >> value)) return std::nullopt;
    fields >> unit;
    return static_cast<std::size_t>(value) * (unit == "kB" ? 1024 : 1);
  }
  return std::nullopt;
}

// The memory this process may still fill: what the kernel says is available (swap included), and
// within a container, what is left of its cgroup's limit (v2, then v1).
std::size_t memory_that_can_back() {
  std::size_t bytes = read_bytes("/proc/meminfo", "MemAvailable:").value_or(SIZE_MAX / 2) +
                      read_bytes("/proc/meminfo", "SwapFree:").value_or(0);
  for (const auto& [limit_file, usage_file] : {std::pair{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"},
                                               std::pair{"/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                                         "/sys/fs/cgroup/memory/memory.usage_in_bytes"}}) {
    const auto limit = read_bytes(limit_file), usage = read_bytes(usage_file);
    if (limit && usage) {
      bytes = std::min(bytes, *limit > *usage ? *limit - *usage : 0);
      break;
    }
  }
  return bytes;
}

// `total` bytes of `what` (on /dev/shm when named), or tandem::Error before anything is
// reserved: a reservation past what memory can back ends in the out-of-memory killer (and a
// machine-wide one for an anonymous file), never in an error.
void check_can_back(std::size_t total, const std::string& what, bool on_dev_shm) {
  if (const auto room = free_bytes_of_dev_shm(); on_dev_shm && room && total > *room) {
    throw Error("shared memory: no room for " + std::to_string(total) + " bytes of " + what +
                ": more than /dev/shm can back (/dev/shm has " + std::to_string(*room) + " bytes free)");
  }
  const std::size_t memory = memory_that_can_back();
  if (total > memory) {
    throw Error("shared memory: " + std::to_string(total) + " bytes of " + what + " are more than this system can back (" +
                std::to_string(memory) + " bytes of memory and swap are available to this process)");
  }
}

}  // namespace

struct Segment {
  UniqueFd file;
  void* mapping = nullptr;
  std::size_t mapped_bytes = 0;
  std::uint64_t id = 0;
  std::size_t size = 0;
  std::string name;
  bool creator = false;
  pid_t creator_pid = 0;  // a forked child's copy of the handle must not remove its parent's name

  Segment() = default;
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;
  ~Segment();

  std::byte* data() const noexcept { return static_cast<std::byte*>(mapping) + kHeaderBytes; }
  const Header& header() const noexcept { return *static_cast<const Header*>(mapping); }
  void map(std::size_t bytes, const std::string& what) {
    mapping = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, file.get(), 0);
    if (mapping == MAP_FAILED) {
      mapping = nullptr;
      fail("mmap " + what, errno);
    }
    mapped_bytes = bytes;
  }
};

namespace {

// The segments this process maps, by identity, so that a handle arriving in a process that has
// the memory already (it created it, received it before, or inherited it by fork) maps nothing.
class Registry {
 public:
  static Registry& instance() {
    static Registry registry;
    return registry;
  }
  // A forked child's copy of the mutex may have been held by a thread that does not exist in it.
  static void reset_lock_in_forked_child() { new (&instance().mutex_) std::mutex; }
  std::shared_ptr<Segment> find(std::uint64_t id) {
    std::lock_guard lock(mutex_);
    const auto it = segments_.find(id);
    return it == segments_.end() ? nullptr : it->second.lock();
  }
  void add(const std::shared_ptr<Segment>& segment) {
    std::lock_guard lock(mutex_);
    segments_[segment->id] = segment;
  }
  void remove_expired(std::uint64_t id) {
    std::lock_guard lock(mutex_);
    const auto it = segments_.find(id);
    if (it != segments_.end() && it->second.expired()) segments_.erase(it);
  }

 private:
  std::mutex mutex_;
  std::unordered_map<std::uint64_t, std::weak_ptr<Segment>> segments_;
};

// Registered at start-up, not at first use: a first use that raced a fork in another thread would
// leave the child a half-done static initialization, and the child would hang in it.
[[maybe_unused]] const bool registry_resets_in_children =
    ::pthread_atfork(nullptr, nullptr, &Registry::reset_lock_in_forked_child) == 0;

// Sizes the file, reserves its pages and maps it with a fresh header.
std::shared_ptr<Segment> initialize(std::shared_ptr<Segment> segment, std::size_t bytes, const std::string& what) {
  if (bytes == 0) throw Error("shared memory: the size must be at least one byte");
  if (bytes > static_cast<std::size_t>(std::numeric_limits<off_t>::max()) - kHeaderBytes) {
    throw Error("shared memory: " + std::to_string(bytes) + " bytes of " + what +
                " are more than this system can back (a file holds at most 2^63 - 1 bytes)");
  }
  const std::size_t total = kHeaderBytes + bytes;
  check_can_back(total, what, !segment->name.empty());
  if (const int error = ::posix_fallocate(segment->file.get(), 0, static_cast<off_t>(total)); error != 0) {
    if (error == ENOSPC) {
      throw Error("shared memory: no room for " + std::to_string(bytes) + " bytes of " + what +
                  " (/dev/shm has " + free_space_of_dev_shm() + " free)");
    }
    fail("reserving " + std::to_string(bytes) + " bytes of " + what, error);
  }
  // An anonymous file is sealed at its size: no holder can shrink it under the others' mappings
  // (which would turn their reads into SIGBUS). A named one cannot be sealed.
  if (segment->name.empty() &&
      ::fcntl(segment->file.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    fail("sealing " + what, errno);
  }
  segment->map(total, what);
  segment->id = random_u64();
  segment->size = bytes;
  *static_cast<Header*>(segment->mapping) = Header{kMagic, segment->id, bytes};
  Registry::instance().add(segment);
  return segment;
}

// Maps a segment that `file` refers to, checking its header (and identity when `expected_id`).
// `reuse`: the mapping this process has of it already, if any, is returned instead (a handle
// that arrives); open() by name makes a mapping of its own, which never owns the name.
enum class Reuse { existing, never };
std::shared_ptr<Segment> attach(UniqueFd file, std::string name, std::uint64_t expected_id, const std::string& what,
                                Reuse reuse) {
  struct stat info {};
  if (::fstat(file.get(), &info) != 0) fail("fstat " + what, errno);
  const auto file_bytes = static_cast<std::size_t>(info.st_size);
  if (file_bytes < kHeaderBytes) throw Error("shared memory: " + what + " is not tandem shared memory");
  auto segment = std::make_shared<Segment>();
  segment->file = std::move(file);
  segment->map(file_bytes, what);
  const Header& header = segment->header();
  if (header.magic != kMagic || header.size > file_bytes - kHeaderBytes) {
    throw Error("shared memory: " + what + " is not tandem shared memory");
  }
  if (expected_id != 0 && header.id != expected_id) {
    throw Error("shared memory: " + what + " is no longer the memory that was sent");
  }
  segment->id = header.id;
  segment->size = header.size;
  segment->name = std::move(name);
  if (auto existing = Registry::instance().find(segment->id)) {
    if (reuse == Reuse::existing) return existing;
  } else {
    Registry::instance().add(segment);
  }
  return segment;
}

}  // namespace

Segment::~Segment() {
  if (mapping) ::munmap(mapping, mapped_bytes);
  if (creator && !name.empty() && creator_pid == ::getpid()) {
    ::shm_unlink(name.c_str());
    try {
      janitor_forget(name);
    } catch (const Error&) {
      // The name is gone already; the janitor's later attempt to remove it is harmless.
    }
  }
  if (id != 0) Registry::instance().remove_expired(id);
}

}  // namespace detail

SharedMemory::SharedMemory(std::shared_ptr<detail::Segment> segment) noexcept
    : segment_(std::move(segment)), data_(segment_->data()), size_(segment_->size) {}

SharedMemory::SharedMemory(std::size_t bytes) : SharedMemory([bytes] {
      auto segment = std::make_shared<detail::Segment>();
      segment->file.reset(::memfd_create("tandem-shared", MFD_CLOEXEC | MFD_ALLOW_SEALING));
      if (!segment->file) detail::fail("memfd_create", errno);
      segment->creator = true;
      segment->creator_pid = ::getpid();
      return detail::initialize(std::move(segment), bytes, "anonymous memory");
    }()) {}

SharedMemory SharedMemory::create(std::size_t bytes, std::string name) {
  name = detail::normalized_name(std::move(name));
  auto segment = std::make_shared<detail::Segment>();
  segment->file.reset(::shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!segment->file) {
    if (errno == EEXIST) throw Error("shared memory " + name + " exists already");
    detail::fail("creating " + name, errno);
  }
  segment->name = name;
  segment->creator = true;  // from here on, the destructor removes the name
  segment->creator_pid = ::getpid();
  detail::janitor_track(name);
  return SharedMemory(detail::initialize(std::move(segment), bytes, name));
}

SharedMemory SharedMemory::open(std::string name) {
  name = detail::normalized_name(std::move(name));
  detail::UniqueFd file(::shm_open(name.c_str(), O_RDWR | O_CLOEXEC, 0));
  if (!file) {
    if (errno == ENOENT) throw Error("no shared memory named " + name);
    detail::fail("opening " + name, errno);
  }
  return SharedMemory(detail::attach(std::move(file), name, 0, name, detail::Reuse::never));
}

const std::string& SharedMemory::name() const noexcept { return segment_->name; }
bool SharedMemory::is_creator() const noexcept { return segment_->creator && segment_->creator_pid == ::getpid(); }

namespace detail {

// On the wire: identity, the sender's pid and descriptor (any holder can pass the memory on),
// and the name if it has one.
void Traveller<SharedMemory>::encode(ByteWriter& out, const SharedMemory& memory) {
  const Segment& segment = *memory.segment_;
  out.write_raw(segment.id);
  out.write_raw(static_cast<std::int32_t>(::getpid()));
  out.write_raw(static_cast<std::int32_t>(segment.file.get()));
  encode_text(out, segment.name);
}

SharedMemory Traveller<SharedMemory>::decode(ByteReader& in) {
  const auto id = in.read_raw<std::uint64_t>();
  const auto pid = in.read_raw<std::int32_t>();
  const auto fd = in.read_raw<std::int32_t>();
  std::string name = decode_text(in);
  if (id == 0) throw_malformed("a shared memory handle without identity");
  if (auto segment = Registry::instance().find(id)) return SharedMemory(std::move(segment));
  if (!name.empty()) {
    if (name.size() > kMaxNameLength + 1 || name.front() != '/') throw_malformed("a shared memory name");
    UniqueFd file(::shm_open(name.c_str(), O_RDWR | O_CLOEXEC, 0));
    if (file) return SharedMemory(attach(std::move(file), name, id, name, Reuse::existing));
  }
  const std::string path = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
  UniqueFd file(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!file) {
    throw Error("shared memory cannot be reached: the process that sent it (pid " + std::to_string(pid) +
                ") no longer holds it (" + std::strerror(errno) +
                "); keep a copy alive until every agent it was sent to has received it");
  }
  return SharedMemory(attach(std::move(file), std::move(name), id, "shared memory from pid " + std::to_string(pid),
                             Reuse::existing));
}

}  // namespace detail
}  // namespace tandem
