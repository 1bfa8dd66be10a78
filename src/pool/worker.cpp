#include "pool/worker.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <deque>
#include <cstring>
#include <optional>
#include <fstream>
#include <functional>
#include <new>
#include <string>
#include <utility>
#include <thread>
#include <vector>

#include "os/close_descriptors.hpp"
#include "os/descriptor_passing.hpp"
#include "os/private_descriptors.hpp"
#include "agents/process_family.hpp"
#include "diagnostics/diagnostics_session.hpp"
#include "ipc/shared_mapping.hpp"
#include "tandem/detail/tracking.hpp"
#include "tandem/error.hpp"

namespace tandem::detail {
namespace {

// Set in a worker process as it starts (and only there).
bool this_process_is_worker = false;

constexpr auto kWorkerSpin = std::chrono::microseconds(300);
// Of a task's exception, the pool gets the first 4 KiB of what() (and a note of its length).
constexpr std::size_t kExceptionMessageBytes = 4096;

std::int64_t monotonic_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

template <std::size_t N>
void copy_text(char (&out)[N], const std::string& text) {
  std::snprintf(out, N, "%s", text.c_str());
}

void limit_address_space(std::size_t extra) {
  std::size_t pages = 0;
  std::ifstream("/proc/self/statm") >> pages;
  const rlim_t limit = static_cast<rlim_t>(pages * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)) + extra);
  const rlimit value{limit, limit};
  ::setrlimit(RLIMIT_AS, &value);
}

void begin_response(ByteWriter& out, std::uint64_t sequence, ResponseStatus status) {
  out.clear();
  out.write_raw(ResponseHeader{sequence, static_cast<std::uint64_t>(status)});
}

void write_exception(ByteWriter& out, std::uint64_t sequence, const std::string& type, const std::string& message) {
  begin_response(out, sequence, ResponseStatus::exception);
  encode_text(out, shortened(type, 512));
  encode_text(out, shortened(message, kExceptionMessageBytes));
}

// Runs request number `sequence` into `out`: `in` is the request without its flags word,
// `flags` that word (in the ring, where the pool sets it to have the request skipped).
void serve(WorkerShared& shared, std::uint64_t sequence, std::int64_t entry_offset,
           std::atomic_ref<std::uint64_t> flags, ByteReader& in, ByteWriter& out) {
  const WorkerConfig& config = shared.config;
  // Marked started (below) before the flag is read: the pool stores the flag, then reads the mark
  // (see ProcessPoolCore::cancel), so a cancelled request is skipped here or its run stopped there.
  shared.started.store(sequence + 1, std::memory_order_seq_cst);
  if (flags.load(std::memory_order_seq_cst) != 0) {
    begin_response(out, sequence, ResponseStatus::skipped);
    return;
  }
  try {
    const Entry entry = function_at<Entry>(entry_offset);
    begin_response(out, sequence, ResponseStatus::value);
    if (config.timed) shared.running_since_ns.store(monotonic_ns(), std::memory_order_relaxed);
    entry(in, out);
  } catch (const std::bad_alloc&) {
    if (config.memory_limit != 0) {
      write_exception(out, sequence, "tandem::MemoryLimitExceeded",
                      "the task allocated past the worker's memory_limit of " + std::to_string(config.memory_limit) +
                          " bytes");
    } else {
      write_exception(out, sequence, "std::bad_alloc", "std::bad_alloc");
    }
  } catch (...) {
    const auto [type, text] = describe_current_exception();
    write_exception(out, sequence, type, text);
  }
  if (config.timed) shared.running_since_ns.store(0, std::memory_order_relaxed);
}

// The descriptors a worker was given, checked before each use: a task may have closed them, or
// put a file of its own in their place, and the worker must then stop rather than write into the
// task's file. A check that fails ends the worker; its pool sees a death.
class OwnDescriptor {
 public:
  OwnDescriptor(int fd, const char* expected_link) : fd_(fd), expected_link_(expected_link) {
    struct stat info {};
    if (::fstat(fd, &info) == 0) inode_ = info.st_ino;
  }
  int fd() const noexcept { return fd_; }
  // Still the file it was given (one system call): sockets and memory files have inodes of their
  // own, so this catches a close and a replacement alike.
  bool same_inode() const noexcept {
    struct stat info {};
    return ::fstat(fd_, &info) == 0 && info.st_ino == inode_;
  }
  // Also still of the kind it was given: every eventfd shares one inode, so for it the kind is
  // what can be checked (from /proc: for the rare paths only).
  bool intact() const noexcept {
    if (!same_inode()) return false;
    char link[64] = {};
    const std::string path = "/proc/self/fd/" + std::to_string(fd_);
    const ssize_t length = ::readlink(path.c_str(), link, sizeof link - 1);
    return length > 0 && std::strncmp(link, expected_link_, std::strlen(expected_link_)) == 0;
  }

 private:
  int fd_;
  const char* expected_link_;
  ino_t inode_ = 0;
};

// The worker's end of its channel socket: the files of large requests come in frame order, those
// of large results go out. A protocol error, or a socket that is no longer the one it was given,
// ends the process (see push_response for a result that finds the channel broken).
class WorkerChannel {
 public:
  explicit WorkerChannel(int fd) : socket_(fd, "socket:") {}

  // Hands a large result's file to the pool; false when the channel is broken (a task closed or
  // replaced it).
  bool send(const SharedMapping& file) {
    return socket_.same_inode() && send_with_descriptors(socket_.fd(), &kMessageFile, 1, {file.fd()});
  }

  UniqueFd next_request_file() {
    // Checked before waiting on it: a socket a task put in its place would never answer.
    if (!socket_.same_inode()) ::_exit(2);
    std::vector<UniqueFd> received;
    char tag = 0;
    if (receive_with_descriptors(socket_.fd(), &tag, 1, received, true) != 1 || tag != kMessageFile ||
        received.size() != 1) {
      ::_exit(2);
    }
    return std::move(received[0]);
  }

 private:
  OwnDescriptor socket_;
};

// Large results' files, kept until the pool has taken their frames off the ring; then each is a
// spare for a later result (a fresh file costs a zero-filled page per 4 KiB).
class HandedOverFiles {
 public:
  void hand_over(SharedMapping file, std::uint64_t frame_end) { pending_.push_back({std::move(file), frame_end}); }
  // A file for the next large result: a spare the pool is done with, or a new one.
  SharedMapping take(std::size_t bytes, std::uint64_t pool_position) {
    while (!pending_.empty() && pending_.front().frame_end <= pool_position) {
      spares_.give(std::move(pending_.front().file));
      pending_.pop_front();
    }
    SharedMapping file = spares_.take_or_create(bytes);
    file.keep_out_of_forks();
    return file;
  }

 private:
  struct Pending {
    SharedMapping file;
    std::uint64_t frame_end;  // the ring position past its frame
  };
  std::deque<Pending> pending_;
  SpareFiles spares_;
};

// The memory file a worker encodes its results into: a small result is copied from it into the
// ring; a large one is handed to the pool as it is, without a copy, and another file takes its
// place.
class ResponseFile final : public ByteWriter::Storage {
 public:
  static constexpr std::size_t kFirstBytes = std::size_t{64} << 10;

  explicit ResponseFile(SharedMapping file) noexcept { exchange(std::move(file)); }
  std::byte* data() noexcept override { return file_.data(); }
  std::size_t capacity() const noexcept override { return file_.size(); }
  void grow(std::size_t capacity) override {
    try {
      file_.grow(capacity);
    } catch (const Error&) {
      struct stat info {};
      if (::fstat(file_.fd(), &info) == 0 && info.st_ino == inode_) {
        throw std::bad_alloc();  // so that a result past memory_limit reports MemoryLimitExceeded
      }
      // An earlier task closed or replaced the file's descriptor; its mapping is intact: the
      // bytes move to a new file, and this result does not pay for that task's deed.
      SharedMapping fresh;
      try {
        fresh = SharedMapping(capacity);
      } catch (const Error&) {
        throw std::bad_alloc();
      }
      std::memcpy(fresh.data(), file_.data(), file_.size());
      exchange(std::move(fresh));
    }
  }
  SharedMapping exchange(SharedMapping next) noexcept {
    struct stat info {};
    inode_ = next && ::fstat(next.fd(), &info) == 0 ? info.st_ino : 0;
    if (next) next.keep_out_of_forks();  // a task's fork() must not take the worker's results with it
    return std::exchange(file_, std::move(next));
  }

 private:
  SharedMapping file_;
  ino_t inode_ = 0;
};

// Runs request number `sequence`, `message` (a frame of the request ring), into `out`, mapping a
// large one's file.
void serve_frame(WorkerShared& shared, WorkerChannel& channel, std::uint64_t sequence,
                 std::span<const std::byte> message, ByteWriter& out) {
  ByteReader frame(message);
  if (message.size() < 2 * sizeof(std::uint64_t)) ::_exit(2);
  const auto entry_offset = frame.read_raw<std::int64_t>();
  const auto flags = request_flags(const_cast<std::byte*>(frame.take(sizeof(std::uint64_t))));
  if (entry_offset != kLargeRequest) {
    serve(shared, sequence, entry_offset, flags, frame, out);
    return;
  }
  if (frame.left() < sizeof(std::uint64_t)) ::_exit(2);
  const auto size = frame.read_raw<std::uint64_t>();
  UniqueFd file = channel.next_request_file();  // taken even if skipped: files come in frame order
  SharedMapping request;
  try {
    request = SharedMapping::attach(std::move(file), SharedMapping::Populate::now, 0,
                                    SharedMapping::Access::read_only);
    request.keep_out_of_forks();
  } catch (const Error& e) {
    write_exception(out, sequence, "tandem::Error", std::string("a worker could not map a large request: ") + e.what());
    return;
  }
  if (size > request.size() || size < 2 * sizeof(std::uint64_t)) ::_exit(2);
  ByteReader in({request.data(), static_cast<std::size_t>(size)});
  const auto entry = in.read_raw<std::int64_t>();
  in.take(sizeof(std::uint64_t));  // the flags that count are the ring's
  serve(shared, sequence, entry, flags, in, out);
}

// Pushes the response in `out` (written into `file`): a large one by handing the file over.
// False when the worker is told to stop while it waits for room; a ring that makes no sense
// ends the worker. A large result that finds the channel broken (an earlier task closed it)
// still arrives: its frame names the file's descriptor here, the pool opens it through /proc,
// and this worker, broken, exits once the pool has taken it.
bool push_response(WorkerChannel& channel, HandedOverFiles& files, ResponseFile& file, ByteRing& responses,
                   ByteWriter& out, const std::function<bool()>& give_up) {
  std::span<const std::byte> message = out.bytes();
  LargeResponseFrame large;
  SharedMapping handed_over;
  if (out.size() > large_message_bytes(responses.capacity())) {
    SharedMapping next;
    try {
      next = files.take(ResponseFile::kFirstBytes, responses.consumer_position());
    } catch (const Error& e) {
      const auto header = ByteReader::load_raw<ResponseHeader>(out.data());
      write_exception(out, header.sequence, "tandem::Error",
                      std::string("a worker could not store a large result: ") + e.what());
      return push_response(channel, files, file, responses, out, give_up);
    }
    large.header = {ByteReader::load_raw<ResponseHeader>(out.data()).sequence,
                    static_cast<std::uint64_t>(ResponseStatus::large)};
    large.size = out.size();
    handed_over = file.exchange(std::move(next));
    if (!channel.send(handed_over)) large.fd = handed_over.fd();
    out.use(&file);
    message = std::as_bytes(std::span(&large, 1));
  }
  for (;;) {
    const ByteRing::Room room = responses.push(message.data(), message.size());
    if (room == ByteRing::Room::ok) break;
    if (room == ByteRing::Room::corrupt) ::_exit(2);
    if (!responses.wait_for_space(message.size(), kWorkerSpin, Clock::time_point::max(), give_up) && give_up()) {
      return false;
    }
  }
  if (!handed_over) return true;
  const std::uint64_t frame_end = responses.producer_position();
  if (large.fd >= 0) {
    // Held open until the pool has opened it, then this broken worker goes.
    while (responses.consumer_position() < frame_end && !give_up()) std::this_thread::sleep_for(kWorkerSpin);
    ::_exit(2);
  }
  files.hand_over(std::move(handed_over), frame_end);
  return true;
}

}  // namespace

void run_initializer(std::span<const std::byte> bytes) {
  ByteReader in(bytes);
  const Entry entry = read_entry(in);
  ByteWriter unused;
  entry(in, unused);
}

void mark_worker_process() noexcept { this_process_is_worker = true; }
bool in_worker_process() noexcept { return this_process_is_worker; }

WorkerContext worker_context(std::byte* worker_memory, std::size_t worker_bytes, std::byte* pool_memory, int wake_fd,
                             int channel_fd) {
  auto* shared = std::launder(reinterpret_cast<WorkerShared*>(worker_memory));
  const std::uint64_t ring_bytes = shared->config.ring_bytes, initializer_bytes = shared->config.initializer_size;
  const bool ring_ok = ring_bytes >= 4096 && (ring_bytes & (ring_bytes - 1)) == 0 &&
                       ring_bytes <= (worker_bytes - kWorkerHeaderBytes) / 2;
  if (worker_bytes < kWorkerHeaderBytes || !ring_ok ||
      initializer_bytes > worker_bytes - kWorkerHeaderBytes - 2 * ring_bytes) {
    throw Error("ProcessPool worker: its mapping of " + std::to_string(worker_bytes) + " bytes cannot hold rings of " +
                std::to_string(ring_bytes) + " bytes and an initializer of " + std::to_string(initializer_bytes));
  }
  std::byte* rings = worker_memory + kWorkerHeaderBytes;
  return {shared, worker_bytes, {rings + 2 * ring_bytes, static_cast<std::size_t>(initializer_bytes)},
          ByteRing(&shared->requests, rings, ring_bytes),
          ByteRing(&shared->responses, rings + ring_bytes, ring_bytes),
          std::launder(reinterpret_cast<PoolShared*>(pool_memory)), wake_fd, channel_fd};
}

void worker_main(const WorkerContext& context) {
  mark_worker_process();
  const pid_t self = ::getpid();
  const pid_t parent = ::getppid();
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(0);  // the parent died just before the line above
  ::signal(SIGINT, SIG_IGN);              // Ctrl-C is the parent's to handle, once
  keep_private_descriptors_high();
  const int wake_fd = out_of_the_way(context.wake_fd);
  const int channel_fd = out_of_the_way(context.channel_fd);
  close_descriptors_except({wake_fd, channel_fd});
  // The child of a fork() inside a task gets none of the memory this worker shares with its pool
  // (here, and the files mapped later): it cannot write a response, or the task's timer; if it
  // returns into this loop, its first touch of them ends it.
  ::madvise(context.shared, context.mapping_bytes, MADV_DONTFORK);
  ::madvise(context.pool, sizeof(PoolShared), MADV_DONTFORK);
  WorkerShared& shared = *context.shared;
  shared.began.store(1, std::memory_order_release);
  const WorkerConfig& config = shared.config;
  become_child("ProcessPoolWorker-" + std::to_string(config.worker_number),
               {static_cast<long>(config.pool_pid),
                std::string(config.pool_process_name, strnlen(config.pool_process_name, sizeof config.pool_process_name))});
  if (config.memory_limit != 0) limit_address_space(config.memory_limit);
  ResponseFile response_file{SharedMapping()};
  try {
    response_file.exchange(SharedMapping(ResponseFile::kFirstBytes));
    if (!context.initializer.empty()) run_initializer(context.initializer);
  } catch (...) {
    const auto [type, message] = describe_current_exception();
    copy_text(shared.failure_type, type);
    copy_text(shared.failure_message, message);
    shared.ready.store(2, std::memory_order_seq_cst);
    futex_wake_all(shared.ready);
    std::fflush(nullptr);
    ::_exit(3);
  }
  shared.ready.store(1, std::memory_order_seq_cst);
  futex_wake_all(shared.ready);

  ByteRing requests = context.requests, responses = context.responses;
  const std::function<bool()> give_up = [&] {
    return shared.stop.load(std::memory_order_relaxed) != 0 || ::getppid() != parent;
  };
  WorkerChannel channel(channel_fd);
  HandedOverFiles handed_over;
  const OwnDescriptor wake(wake_fd, "anon_inode:[eventfd]");
  ByteWriter out;
  out.use(&response_file);
  std::uint64_t tasks = 0;
  // The sequence numbers of requests, counted here: the shared counters are for the pool to
  // read, and a task could scribble over them.
  for (std::uint64_t sequence = 0;; ++sequence) {
    std::span<const std::byte> message;
    ByteRing::Peek peek = ByteRing::Peek::empty;
    while (peek == ByteRing::Peek::empty) {
      if (!requests.wait_for_message(kWorkerSpin, Clock::time_point::max(), give_up)) {
        std::fflush(nullptr);
        ::_exit(0);
      }
      peek = requests.peek(message);
    }
    if (peek == ByteRing::Peek::corrupt) ::_exit(2);
    {
      // A waiter on this request's future waits for this process, while the diagnostics are on.
      std::optional<TrackedTask> running;
      if (tracking_on()) [[unlikely]]
        running.emplace(pool_request_key(static_cast<std::int32_t>(self), sequence));
      serve_frame(shared, channel, sequence, message, out);
    }
    // (The child of a fork() inside the task, were it to return here, ends at the store below:
    // the memory it would answer through is not in it, MADV_DONTFORK. No getpid() per task: a
    // system call costs the round trip ~0.5 us.)
    shared.finished.store(sequence + 1, std::memory_order_release);
    // Taken off only now: a request still in the ring when a worker dies was not finished.
    requests.pop();
    if (!push_response(channel, handed_over, response_file, responses, out, give_up)) ::_exit(0);
    if (response_file.capacity() > SpareFiles::kMaxFileBytes) {
      // A huge result that failed to encode, or stayed in the ring's size: not kept for good.
      try {
        response_file.exchange(SharedMapping(ResponseFile::kFirstBytes));
        out.use(&response_file);
      } catch (const Error&) {
        // Keep the large one: the worker still works.
      }
    }
    if (context.pool->active_collectors.load(std::memory_order_seq_cst) == 0 &&
        context.pool->supervisor_asleep.exchange(0, std::memory_order_seq_cst) == 1) {
      const std::uint64_t one = 1;
      if (!wake.intact() || ::write(wake.fd(), &one, sizeof one) != static_cast<ssize_t>(sizeof one)) ::_exit(2);
    }
    if (config.max_tasks_per_child != 0 && ++tasks >= config.max_tasks_per_child) break;
  }
  std::fflush(nullptr);
  ::_exit(0);
}

void worker_main_from_fds(int worker_fd, int pool_fd, int wake_fd, int channel_fd) {
  // Locals, not statics: this process may be a fork of a worker that ran this function, whose
  // statics would hold mappings and descriptor numbers of that other pool. worker_main never
  // returns, so the mappings last as long as the process; it closes their descriptors.
  SharedMapping worker_memory, pool_memory;
  try {
    worker_memory = SharedMapping::attach(UniqueFd(::dup(worker_fd)));
    pool_memory = SharedMapping::attach(UniqueFd(::dup(pool_fd)));
  } catch (const Error& e) {
    std::fprintf(stderr, "tandem worker: %s\n", e.what());
    ::_exit(4);
  }
  try {
    const WorkerConfig& config = reinterpret_cast<const WorkerShared*>(worker_memory.data())->config;
    ByteReader in({config.diagnostics, std::min<std::size_t>(config.diagnostics_size, sizeof config.diagnostics)});
    adopt_diagnostics_context(in);
  } catch (const Error& e) {
    std::fprintf(stderr, "tandem worker: the pitfall diagnostics stay off here: %s\n", e.what());
  }
  WorkerContext context;
  try {
    context = worker_context(worker_memory.data(), worker_memory.size(), pool_memory.data(), wake_fd, channel_fd);
  } catch (const Error& e) {
    std::fprintf(stderr, "tandem worker: %s\n", e.what());
    ::_exit(4);
  }
  worker_main(context);
}

}  // namespace tandem::detail
