// ProcessPool's engine: worker processes, their shared-memory rings, and the supervisor thread
// that notices deaths, enforces timeouts, replaces workers and resends what they had not begun.
//
// Who does what:
//  - submit() (any thread) writes the request into the least-loaded worker's ring, or into the
//    backlog when every ring is full;
//  - responses are read by whoever holds collect_mutex_: a caller spinning in Future::get (the
//    fast path: no thread hop), else the supervisor, woken through an eventfd that a worker
//    writes only when nobody is collecting and the supervisor sleeps;
//  - the supervisor polls the workers' pidfds (or, for workers a fork server forked, the
//    server's reports), so a death is seen at once.
// Outcomes are stored under collect_mutex_ and completed after it is released, so callbacks
// that wait on other futures of the pool cannot deadlock it.
#include "tandem/process_pool.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <future>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "ipc/byte_ring.hpp"
#include "os/descriptor_passing.hpp"
#include "agents/process_family.hpp"
#include "agents/fork_server.hpp"
#include "tandem/detail/byte_queue.hpp"
#include "ipc/shared_mapping.hpp"
#include "diagnostics/diagnostics_session.hpp"
#include "pool/pool_watch.hpp"
#include "pool/response.hpp"
#include "os/handover.hpp"
#include "tandem/detail/unique_fd.hpp"
#include "pool/worker.hpp"

namespace tandem::detail {

namespace {

// Requests queued in one worker's ring: enough that it never waits for the next, few enough that
// a cancelled or resent task has not already been handed out far ahead.
constexpr std::size_t kMaxQueuedPerWorker = 16;
constexpr int kStartFailuresAllowed = 3;
constexpr std::chrono::milliseconds kLook{50};
constexpr std::chrono::seconds kWorkerBegins{30};

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

std::int64_t monotonic_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

int signal_of(int status) { return WIFSIGNALED(status) ? WTERMSIG(status) : 0; }
int exit_status_of(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }

// A 64-bit digest of a request as it was sent, but for its flags word (which the pool sets to
// have it skipped): a request read back from a dead worker's ring is resent only if it is still
// what was sent, not what a task's wild writes left there. Of a long request (a map chunk, whose
// hashing would cost ~15 % of a map of ints) only the first kDigestedBytes count: the entry, the
// callable and the start of the arguments, which decide what code runs.
constexpr std::size_t kDigestedBytes = 4096;
std::uint64_t request_digest(std::span<const std::byte> request) noexcept {
  const std::size_t size = request.size();
  request = request.first(std::min(size, kDigestedBytes));
  // Four independent lanes, so that a long map chunk is hashed at memory speed rather than at the
  // latency of one multiply per word.
  constexpr std::uint64_t kMultiplier = 0x9e3779b97f4a7c15u;
  constexpr std::size_t kFlags = sizeof(std::int64_t);
  std::uint64_t lanes[4] = {size, 1, 2, 3};
  const std::byte* bytes = request.data();
  std::size_t at = 0;
  for (; at + 32 <= request.size(); at += 32) {
    std::uint64_t words[4];
    std::memcpy(words, bytes + at, sizeof words);
    if (at == 0) words[kFlags / 8] = 0;
    for (std::size_t lane = 0; lane < 4; ++lane) lanes[lane] = (lanes[lane] ^ words[lane]) * kMultiplier;
  }
  for (std::size_t lane = 0; at < request.size(); at += 8, ++lane) {
    std::uint64_t word = 0;
    std::memcpy(&word, bytes + at, std::min<std::size_t>(8, request.size() - at));
    if (at == kFlags) word = 0;
    lanes[lane] = (lanes[lane] ^ word) * kMultiplier;
  }
  std::uint64_t hash = 0;
  for (const std::uint64_t lane : lanes) hash = (hash ^ lane ^ (lane >> 29)) * kMultiplier;
  return hash;
}

}  // namespace

class ProcessPoolCore {
 public:
  explicit ProcessPoolCore(ProcessPoolOptions options);
  ProcessPoolCore(const ProcessPoolCore&) = delete;
  ProcessPoolCore& operator=(const ProcessPoolCore&) = delete;
  ~ProcessPoolCore() { shutdown(true, false); }

  void submit(const RequestSource& request, RemoteResult* task);
  void help_collect(bool (*ready)(const void*), const void* context, Clock::time_point deadline);
  void begin_collecting() noexcept;
  void end_collecting();
  void cancel(RemoteResult& task) noexcept;
  void shutdown(bool wait, bool cancel_pending);
  bool shutdown_until(Clock::time_point deadline, bool cancel_pending);
  void terminate();

  void check_owner() const {
    if (::getpid() != owner_) {
      throw Error("ProcessPool: this pool belongs to process " + std::to_string(owner_) +
                  "; a task in its worker process sees only a copy of it, which cannot run anything. Return "
                  "the work to the caller, or create a pool inside the task");
    }
  }
  std::size_t size() const noexcept { return options_.workers; }
  bool closed() const noexcept { return closed_.load(std::memory_order_acquire); }
  std::size_t ring_message_bytes() const noexcept { return large_message_bytes(options_.ring_bytes); }
  bool worker_runs(const RemoteResult& task) {
    std::lock_guard lock(mutex_);
    for (const auto& worker : workers_) {
      if (worker->shared == nullptr || worker->kill.load() != Kill::none) continue;
      for (const InFlight& entry : worker->in_flight) {
        if (entry.task == &task) return worker->shared->started.load(std::memory_order_acquire) > entry.index;
      }
    }
    return false;
  }
  std::uint64_t runner_key(const RemoteResult& task) {
    std::lock_guard lock(mutex_);
    for (const auto& worker : workers_) {
      for (const InFlight& entry : worker->in_flight) {
        if (entry.task == &task) return pool_request_key(worker->pid, entry.index);
      }
    }
    return future_key(&task);
  }
  // For the diagnostics' stall report: a worker is busy from the moment it begins a request
  // until it has served it.
  PoolActivity activity() {
    std::uint64_t completed = 0;
    const PoolStats now = stats(&completed);
    return {"ProcessPool", now.workers, now.busy, now.queued, completed};
  }
  // `completed`, if given, gets the tasks finished by the workers alive now.
  PoolStats stats(std::uint64_t* completed = nullptr) {
    PoolStats now{options_.workers, 0, 0, backlog_size_.load(std::memory_order_relaxed)};
    std::lock_guard lock(mutex_);
    for (const auto& worker : workers_) {
      if (worker->pid > 0) ++now.live;
      if (worker->shared == nullptr) continue;
      const std::uint64_t finished = worker->shared->finished.load(std::memory_order_acquire);
      const bool busy = worker->shared->started.load(std::memory_order_acquire) > finished;
      now.busy += busy ? 1 : 0;
      if (completed) *completed += finished;
      now.queued += worker->in_flight.size() - (busy && !worker->in_flight.empty() ? 1 : 0);
    }
    return now;
  }

 private:
  struct InFlight {
    RemoteResult* task;
    std::byte* flags;      // the request's flags word, in the ring
    std::uint64_t index;   // of the request among those sent to this worker process
    std::uint64_t digest;  // of its frame in the ring (request_digest)
    SharedMapping large;   // a large request's memory file, kept to resend it if the worker dies
  };
  enum class Kill { none, timeout, cancel, protocol };
  struct Worker {
    std::string protocol_error;  // mutex_; what it did, when killed for breaking the protocol
    SharedMapping memory;
    WorkerShared* shared = nullptr;
    ByteRing requests;
    ByteRing responses;
    pid_t pid = -1;
    UniqueFd pidfd;
    UniqueFd channel;  // socket to the worker: large messages' memory files, in frame order
    std::deque<InFlight> in_flight;  // mutex_; in the order sent
    std::uint64_t sent = 0;          // mutex_; requests sent to this process
    std::uint64_t server_generation = 0;  // forkserver: the pool server that forked it
    Clock::time_point spawned_at;         // it must begin as a worker within kWorkerBegins
    std::atomic<Kill> kill{Kill::none};  // why the pool killed this process, if it did
  };
  struct Pending {
    RemoteResult* task;
    std::vector<std::byte> request;  // a large request's frame, or nothing before its first send
    SharedMapping large;
  };
  using Done = std::vector<RemoteResult*>;

  // What close_and_cancel cancels besides closing: nothing, the tasks not begun, or all.
  enum class Cancel { none, pending, all };
  void close_and_cancel(Cancel which);

  void wake_supervisor() noexcept {
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t written = ::write(wake_fd_.get(), &one, sizeof one);
  }

  // mutex_ held.
  // A non-empty `large` is the request, in its own memory file; it is moved from on success.
  bool try_send(const RequestSource& request, RemoteResult* task, SharedMapping& large);
  // A worker whose bytes make no sense is killed; what it answered is not read any more, and its
  // tasks fail or are resent as when a worker crashes.
  // (A worker the pool is killing already, for a timeout or a cancel, keeps that reason: its
  // task gets TaskTimeout or CancelledError, as it would have.)
  void kill_for_protocol(Worker& worker, std::string what) noexcept {
    if (worker.kill.load() == Kill::none) {
      worker.protocol_error = std::move(what);
      worker.kill = Kill::protocol;
    }
    ::kill(worker.pid, SIGKILL);
  }
  std::exception_ptr lost_error(const Worker& worker, int status) const {
    if (worker.kill.load() == Kill::timeout) {
      return std::make_exception_ptr(TaskTimeout("ProcessPool: the task ran longer than its task_timeout of " +
                                                 std::to_string(options_.task_timeout.count()) +
                                                 " ms; its worker process " + std::to_string(worker.pid) +
                                                 " was killed and replaced"));
    }
    if (worker.kill.load() == Kill::protocol) {
      return std::make_exception_ptr(WorkerLost(worker.pid, SIGKILL, -1,
                                                "the pool killed it: it broke the protocol (" + worker.protocol_error +
                                                "), as a task that scribbles over its worker's memory makes it do"));
    }
    return std::make_exception_ptr(WorkerLost(worker.pid, signal_of(status), exit_status_of(status)));
  }
  void refill();
  // collect_mutex_ held.
  bool collect_all(Done& done);
  bool collect(Worker& worker, Done& done);
  static void store_failure(RemoteResult* task, std::exception_ptr error, Done& done) {
    if (task->store_error(std::move(error))) {
      done.push_back(task);
    } else {
      task->state().release();
    }
  }
  static void finish(Done& done) noexcept {
    for (RemoteResult* task : done) {
      task->finish();
      task->state().release();
    }
    done.clear();
  }

  // Supervisor thread.
  void supervise(std::promise<void>& started);
  void spawn(Worker& worker);
  void await_ready(Worker& worker);
  void handle_exit(Worker& worker, int status);
  // How `worker` ended, once it has (reaping it); `block` waits for a child known to be dead.
  std::optional<int> exit_status(Worker& worker, bool block);
  void enforce_timeouts();
  int poll_timeout_ms();
  bool drained();
  void stop_workers() noexcept;
  void break_pool(const std::string& reason);

  ProcessPoolOptions options_;
  const pid_t owner_ = ::getpid();
  SharedMapping pool_memory_;
  std::optional<PoolServer> pool_server_;    // StartMethod::forkserver only
  std::uint64_t server_generation_ = 0;      // bumped when a pool server that is gone is replaced
  std::vector<PoolServer::Exit> exits_;      // reported by the pool server, not yet handled
  PoolShared* pool_shared_ = nullptr;
  UniqueFd wake_fd_;
  std::vector<std::unique_ptr<Worker>> workers_;

  std::mutex mutex_;
  std::deque<Pending> backlog_;
  SpareFiles spare_files_;  // large requests' files, for reuse
  std::atomic<std::size_t> backlog_size_{0};  // backlog_.size(), readable without mutex_
  std::atomic<bool> closed_{false};
  bool stopping_ = false;
  std::string broken_;

  std::mutex collect_mutex_;
  int start_failures_ = 0;

  std::atomic<bool> idle_sleep_{false};  // the supervisor sleeps with no task to time
  std::mutex join_mutex_;
  std::thread supervisor_;
  std::atomic<std::uint32_t> finished_{0};
  std::uint64_t workers_started_ = 0;  // the supervisor's; numbers the workers it starts
  // Last, so that it is destroyed first, while what its probe reads still exists.
  WatchedPool watched_{[this] { return activity(); }};
};

ProcessPoolCore::ProcessPoolCore(ProcessPoolOptions options) : options_(std::move(options)) {
  if (options_.workers == 0) throw Error("ProcessPool: the pool needs at least one worker (workers = 0)");
  if (options_.ring_bytes < 4096 || (options_.ring_bytes & (options_.ring_bytes - 1)) != 0) {
    throw Error("ProcessPool: ring_bytes must be a power of two, at least 4096");
  }
  if (options_.start_method == StartMethod::forkserver) pool_server_.emplace();
  pool_memory_ = SharedMapping(sizeof(PoolShared));
  pool_shared_ = new (pool_memory_.data()) PoolShared();
  wake_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_fd_) throw Error(errno_text("ProcessPool: eventfd"));
  for (std::size_t i = 0; i < options_.workers; ++i) workers_.push_back(std::make_unique<Worker>());
  // Workers are forked by the supervisor thread, which lives as long as the pool: a worker's
  // PDEATHSIG fires when the thread that forked it ends.
  std::promise<void> started;
  auto ready = started.get_future();
  supervisor_ = std::thread([this, &started] { supervise(started); });
  try {
    ready.get();
  } catch (...) {
    supervisor_.join();
    throw;
  }
}

void ProcessPoolCore::submit(const RequestSource& request, RemoteResult* task) {
  SharedMapping large;
  if (request.size > large_message_bytes(options_.ring_bytes)) {
    // Written once, straight into the memory the worker will map: never copied through a ring.
    {
      std::lock_guard lock(mutex_);
      large = spare_files_.take(request.size);
    }
    if (!large) {
      large = SharedMapping(request.size, SharedMapping::Populate::now);
      large.keep_out_of_forks();
    }
    request.write(large.data(), request.context);
  }
  std::lock_guard lock(mutex_);
  if (closed_.load(std::memory_order_relaxed)) {
    throw PoolClosed(broken_.empty() ? "ProcessPool::submit: the pool is shut down" : broken_);
  }
  const LargeRequestFrame frame{.size = request.size};
  const RequestSource frame_source{sizeof frame,
                                   [](std::byte* out, const void* from) { std::memcpy(out, from, sizeof frame); },
                                   &frame};
  if (backlog_.empty() && try_send(large ? frame_source : request, task, large)) {
    // The supervisor times running tasks only while it knows some are in flight.
    if (idle_sleep_.load(std::memory_order_relaxed) && idle_sleep_.exchange(false)) wake_supervisor();
    return;
  }
  std::vector<std::byte> bytes;
  if (large) {
    const LargeRequestFrame frame{.size = request.size};
    bytes.resize(sizeof frame);
    std::memcpy(bytes.data(), &frame, sizeof frame);
  } else {
    bytes.resize(request.size);
    request.write(bytes.data(), request.context);
  }
  backlog_.push_back({task, std::move(bytes), std::move(large)});
  backlog_size_.store(backlog_.size(), std::memory_order_release);
  wake_supervisor();  // a worker may have room by the time it looks
}

bool ProcessPoolCore::try_send(const RequestSource& request, RemoteResult* task, SharedMapping& large) {
  for (;;) {
    Worker* best = nullptr;
    for (auto& worker : workers_) {
      if (worker->pid <= 0 || worker->kill.load() != Kill::none || worker->in_flight.size() >= kMaxQueuedPerWorker) {
        continue;
      }
      if (options_.max_tasks_per_child != 0 && worker->sent >= options_.max_tasks_per_child) continue;
      if (!best || worker->in_flight.size() < best->in_flight.size()) best = worker.get();
    }
    if (!best) return false;
    // A large request's `request` is its frame.
    std::byte* payload = nullptr;
    const ByteRing::Room room = best->requests.reserve(request.size, payload);
    if (room == ByteRing::Room::corrupt) {
      kill_for_protocol(*best, "the position it reads its requests from is not in its ring");
      continue;
    }
    if (room == ByteRing::Room::full) return false;
    request.write(payload, request.context);
    // The file goes before the frame is published, so that the worker finds it when it reads the
    // frame. A worker that is gone leaves the request in the backlog for its replacement. It goes
    // read-only: the file is reused for later requests, maybe another worker's, and a task must
    // not be able to write into those.
    if (large) {
      const UniqueFd read_only(
          ::open(("/proc/self/fd/" + std::to_string(large.fd())).c_str(), O_RDONLY | O_CLOEXEC));
      if (!read_only || !send_with_descriptors(best->channel.get(), &kMessageFile, 1, {read_only.get()})) {
        return false;
      }
    }
    best->requests.commit();
    best->in_flight.push_back({task, payload + sizeof(std::int64_t), best->sent,
                               request_digest({payload, request.size}), std::move(large)});
    ++best->sent;
    return true;
  }
}

RequestSource pending_source(const std::vector<std::byte>& bytes) {
  return {bytes.size(),
          [](std::byte* out, const void* context) {
            const auto& from = *static_cast<const std::vector<std::byte>*>(context);
            std::memcpy(out, from.data(), from.size());
          },
          &bytes};
}

void ProcessPoolCore::refill() {
  while (!backlog_.empty()) {
    Pending& next = backlog_.front();
    if (next.task->state().phase() == kCancelled) {
      next.task->state().release();
    } else if (!try_send(pending_source(next.request), next.task, next.large)) {
      break;
    }
    backlog_.pop_front();
  }
  backlog_size_.store(backlog_.size(), std::memory_order_release);
}

bool ProcessPoolCore::collect_all(Done& done) {
  bool any = false;
  for (auto& worker : workers_) {
    if (worker->pid > 0) any |= collect(*worker, done);
  }
  if (any && backlog_size_.load(std::memory_order_acquire) != 0) {
    std::lock_guard lock(mutex_);
    refill();
  }
  return any;
}

bool ProcessPoolCore::collect(Worker& worker, Done& done) {
  bool any = false;
  std::unique_lock lock(mutex_, std::defer_lock);
  // Nothing more is read from a worker once it broke the protocol.
  while (worker.kill.load() != Kill::protocol) {
    std::span<const std::byte> message;
    const ByteRing::Peek peek = worker.responses.peek(message);
    if (peek == ByteRing::Peek::empty) break;
    if (!lock.owns_lock()) lock.lock();
    // Bytes from a worker are not trusted: each response must answer the request due next.
    const char* violation = nullptr;
    ResponseHeader header;
    if (peek == ByteRing::Peek::corrupt) {
      violation = "its response ring makes no sense";
    } else if (worker.in_flight.empty()) {
      violation = "a response to a request it was never sent";
    } else {
      violation = check_response_header(message, worker.in_flight.front().index, header);
    }
    if (violation) {
      kill_for_protocol(worker, violation);
      break;
    }
    RemoteResult* const task = worker.in_flight.front().task;
    // Its response is here, so the worker is done with a large request's file.
    if (auto& large = worker.in_flight.front().large) spare_files_.give(std::move(large));
    worker.in_flight.pop_front();
    // Decoded without mutex_: a map chunk's decode may wait for the caller to publish the output
    // vector, which the caller does after submitting, under mutex_.
    lock.unlock();
    SharedMapping large;  // outlives the reads below
    try {
      ByteReader in(message);
      in.take(sizeof header);
      auto status = static_cast<ResponseStatus>(header.status);
      if (status == ResponseStatus::large) {
        // Its file came over the channel, in frame order (taken even for a cancelled task); or,
        // when the worker's channel was broken, it stays open in the worker until this frame is
        // off the ring, and is opened from there. Read-only either way: the worker reuses it.
        const LargeResponseFile where = large_response_file(in);
        UniqueFd file;
        if (where.fd < 0) {
          std::vector<UniqueFd> received;
          char tag = 0;
          if (receive_with_descriptors(worker.channel.get(), &tag, 1, received, false) != 1 ||
              received.size() != 1 || tag != kMessageFile) {
            throw_malformed("a large response came without its memory file");
          }
          file = std::move(received[0]);
        } else {
          file.reset(::open(("/proc/" + std::to_string(worker.pid) + "/fd/" + std::to_string(where.fd)).c_str(),
                            O_RDONLY | O_CLOEXEC));
          if (!file) throw_malformed("a large response whose file the worker does not hold");
        }
        const auto size = static_cast<std::size_t>(where.bytes);
        large = SharedMapping::attach(std::move(file), SharedMapping::Populate::now, size,
                                      SharedMapping::Access::read_only);
        large.keep_out_of_forks();
        in = ByteReader({large.data(), size});
        status = open_large_response(in, header);
      }
      if (status == ResponseStatus::value) {
        // A value that does not decode fails its task, not the worker (a user's cereal load may
        // refuse what it reads); everything around it is the protocol.
        if (task->store_result(in)) {
          done.push_back(task);
        } else {
          task->state().release();
        }
      } else if (status == ResponseStatus::exception) {
        const auto [type, text] = decode_exception(in);
        store_failure(task, remote_exception(type, text), done);
      } else if (status == ResponseStatus::skipped) {
        store_failure(task, cancelled_error(), done);
      } else {
        throw_malformed("unknown response status");
      }
    } catch (const Error& e) {
      lock.lock();
      kill_for_protocol(worker, e.what());
      store_failure(task, lost_error(worker, 0), done);
      break;
    } catch (...) {
      // Not the worker's doing (memory ran out here, say): the task fails with it.
      store_failure(task, std::current_exception(), done);
    }
    large.reset();  // before the frame goes: then the worker may reuse the file
    worker.responses.pop();
    any = true;
  }
  return any;
}

void ProcessPoolCore::help_collect(bool (*ready)(const void*), const void* context, Clock::time_point deadline) {
  Done done;
  pool_shared_->active_collectors.fetch_add(1, std::memory_order_seq_cst);
  const auto spin_start = Clock::now();
  const auto spin_end = std::min(deadline, spin_start + kSpinBudget);
  while (!ready(context)) {
    if (collect_mutex_.try_lock()) {
      collect_all(done);
      collect_mutex_.unlock();
      finish(done);
    }
    if (ready(context) || Clock::now() >= spin_end) break;
    // The workers are processes of their own and may need this core: a spinning waiter that
    // kept it would delay the very answer it waits for by a scheduler time slice.
    if (Clock::now() - spin_start < std::chrono::microseconds(5)) {
      for (int i = 0; i < 32; ++i) cpu_relax();
    } else {
      std::this_thread::yield();
    }
  }
  pool_shared_->active_collectors.fetch_sub(1, std::memory_order_seq_cst);
  // A worker that answered while this thread was counted as collecting did not wake the
  // supervisor: look once more now that it will.
  if (!ready(context)) {
    {
      std::lock_guard lock(collect_mutex_);
      collect_all(done);
    }
    finish(done);
  }
}

void ProcessPoolCore::begin_collecting() noexcept {
  pool_shared_->active_collectors.fetch_add(1, std::memory_order_seq_cst);
}

void ProcessPoolCore::end_collecting() {
  pool_shared_->active_collectors.fetch_sub(1, std::memory_order_seq_cst);
  // A worker that answered while this thread counted as collecting did not wake the supervisor.
  Done done;
  {
    std::lock_guard lock(collect_mutex_);
    collect_all(done);
  }
  finish(done);
}

void ProcessPoolCore::supervise(std::promise<void>& started) {
  try {
    for (auto& worker : workers_) spawn(*worker);
    for (auto& worker : workers_) await_ready(*worker);
  } catch (...) {
    stop_workers();
    started.set_exception(std::current_exception());
    return;
  }
  started.set_value();

  Done done;
  std::vector<pollfd> fds;
  for (;;) {
    {
      std::lock_guard lock(collect_mutex_);
      collect_all(done);
    }
    finish(done);
    if (backlog_size_.load(std::memory_order_acquire) != 0) {
      std::lock_guard lock(mutex_);
      refill();
    }
    enforce_timeouts();
    if (drained()) break;

    pool_shared_->supervisor_asleep.store(1, std::memory_order_seq_cst);
    bool collected;
    {
      std::lock_guard lock(collect_mutex_);
      collected = collect_all(done);
    }
    finish(done);
    // Deaths show on the pidfds of the workers, or, when a fork server forked them, as reports
    // on its connection (only it can reap them).
    fds.clear();
    fds.push_back({wake_fd_.get(), POLLIN, 0});
    bool exits_waiting = false;
    if (pool_server_) {
      fds.push_back({pool_server_->fd(), POLLIN, 0});
      // Reports read earlier (while starting a worker, say) no longer show on the socket: they
      // must not wait for the next one. Reports of processes this pool no longer tracks go.
      for (const auto& exit : pool_server_->take_exits()) exits_.push_back(exit);
      std::erase_if(exits_, [&](const PoolServer::Exit& exit) {
        return std::none_of(workers_.begin(), workers_.end(), [&](const auto& w) { return w->pid == exit.pid; });
      });
      exits_waiting = !exits_.empty();
    } else {
      for (auto& worker : workers_) fds.push_back({worker->pidfd.get(), POLLIN, 0});
    }
    if (::poll(fds.data(), fds.size(), collected || exits_waiting ? 0 : poll_timeout_ms()) < 0 && errno != EINTR) {
      break_pool(errno_text("ProcessPool: poll"));
    }
    pool_shared_->supervisor_asleep.store(0, std::memory_order_seq_cst);
    std::uint64_t wakes = 0;
    [[maybe_unused]] const ssize_t drained_bytes = ::read(wake_fd_.get(), &wakes, sizeof wakes);
    for (std::size_t i = 0; i < workers_.size(); ++i) {
      Worker& worker = *workers_[i];
      if (worker.pid <= 0) continue;
      if (pool_server_ || fds[i + 1].revents != 0) {
        if (const auto status = exit_status(worker, !pool_server_)) handle_exit(worker, *status);
      }
    }
  }
  stop_workers();
}

std::optional<int> ProcessPoolCore::exit_status(Worker& worker, bool block) {
  if (pool_server_ && worker.server_generation != server_generation_) return SIGKILL;  // died with its server
  if (pool_server_) {
    for (const auto& exit : pool_server_->take_exits()) exits_.push_back(exit);
    const auto it = std::find_if(exits_.begin(), exits_.end(), [&](const auto& e) { return e.pid == worker.pid; });
    // A pool server that is gone took its workers with it (they die with their parent).
    if (it == exits_.end()) return pool_server_->gone() ? std::optional<int>(SIGKILL) : std::nullopt;
    const int status = it->status;
    exits_.erase(it);
    return status;
  }
  int status = 0;
  for (;;) {
    const pid_t reaped = ::waitpid(worker.pid, &status, block ? 0 : WNOHANG);
    if (reaped == worker.pid) return status;
    if (reaped == 0 || errno != EINTR) return std::nullopt;
  }
}

void ProcessPoolCore::spawn(Worker& worker) {
  const auto initializer = options_.initializer.bytes();
  SharedMapping memory(worker_mapping_bytes(options_.ring_bytes, initializer.size()));
  auto* shared = new (memory.data()) WorkerShared();
  WorkerConfig& config = shared->config;
  config.ring_bytes = options_.ring_bytes;
  config.worker_number = ++workers_started_;
  config.pool_pid = ::getpid();
  const std::string pool_process = current_process().name;
  std::memcpy(config.pool_process_name, pool_process.data(),
              std::min(pool_process.size(), sizeof config.pool_process_name - 1));
  config.memory_limit = options_.memory_limit;
  config.max_tasks_per_child = options_.max_tasks_per_child;
  config.timed = options_.task_timeout.count() > 0 ? 1 : 0;
  config.initializer_size = initializer.size();
  std::copy(initializer.begin(), initializer.end(), memory.data() + worker_mapping_bytes(options_.ring_bytes, 0));
  if (options_.start_method != StartMethod::fork) {
    ByteWriter context;
    encode_diagnostics_context(context);
    if (context.size() > sizeof config.diagnostics) throw Error("ProcessPool: the diagnostics' handle is too large");
    std::memcpy(config.diagnostics, context.data(), context.size());
    config.diagnostics_size = static_cast<std::uint32_t>(context.size());
  }
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    throw Error(errno_text("ProcessPool: socketpair"));
  }
  UniqueFd channel(pair[0]), worker_channel(pair[1]);
  const WorkerContext context =
      worker_context(memory.data(), memory.size(), pool_memory_.data(), wake_fd_.get(), worker_channel.get());

  pid_t pid = -1;
  UniqueFd pidfd;
  switch (options_.start_method) {
    case StartMethod::fork:
      std::fflush(nullptr);  // else the worker inherits unflushed output and prints it again
      pid = ::fork();
      if (pid < 0) throw Error(errno_text("ProcessPool: fork"));
      if (pid == 0) {
        release_pipe_holds_inherited_by_fork();  // a task gets its pipes as arguments
        worker_main(context);
      }
      memory.keep_out_of_forks();  // the workers forked after this one do not get its rings
      break;
    case StartMethod::forkserver:
      // A pool server that is gone (killed, its workers with it) is replaced: the pool goes on.
      // The old server stays until a new one is there: its workers are judged by it meanwhile.
      for (int attempt = 0;; ++attempt) {
        try {
          if (pool_server_->gone()) {
            PoolServer replacement;
            pool_server_.emplace(std::move(replacement));
            ++server_generation_;
            exits_.clear();
          }
          pid = pool_server_->start_worker(memory.fd(), pool_memory_.fd(), wake_fd_.get(), worker_channel.get());
          break;
        } catch (const Error&) {
          if (attempt == 1 || !pool_server_->gone()) throw;
        }
      }
      break;
    case StartMethod::spawn:
      pid = spawn_program(Role::worker, {memory.fd(), pool_memory_.fd(), wake_fd_.get(), worker_channel.get()},
                          "ProcessPool");
      break;
  }
  if (!pool_server_) {
    pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!pidfd) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      throw Error(errno_text("ProcessPool: pidfd_open (Linux 5.3 or later is needed)"));
    }
    ::fcntl(pidfd.get(), F_SETFD, FD_CLOEXEC);
  }
  std::lock_guard collecting(collect_mutex_);
  std::lock_guard lock(mutex_);
  worker.memory = std::move(memory);
  worker.shared = shared;
  worker.requests = context.requests;
  worker.responses = context.responses;
  worker.pid = pid;
  worker.pidfd = std::move(pidfd);
  worker.channel = std::move(channel);
  worker.in_flight.clear();
  worker.sent = 0;
  worker.server_generation = server_generation_;
  worker.spawned_at = Clock::now();
  worker.protocol_error.clear();
  worker.kill = Kill::none;
}

// Bounded until the worker runs as one: a process that never does (a spawned copy that could
// not take its role runs the program's main instead, and says why on stderr) is killed. Its
// initializer may then take as long as it needs.
void ProcessPoolCore::await_ready(Worker& worker) {
  const auto role_deadline = Clock::now() + kWorkerBegins;
  for (;;) {
    if (worker.shared->began.load(std::memory_order_acquire) == 0 && Clock::now() > role_deadline) {
      ::kill(worker.pid, SIGKILL);
      throw Error("ProcessPool: worker process " + std::to_string(worker.pid) + " did not begin as a worker within " +
                  std::to_string(kWorkerBegins.count()) + " s of its start (see its stderr); it was killed");
    }
    const std::uint32_t ready = worker.shared->ready.load(std::memory_order_acquire);
    if (ready == 1) return;
    if (ready == 2) std::rethrow_exception(remote_exception(worker.shared->failure_type, worker.shared->failure_message));
    if (const auto status = exit_status(worker, false)) {
      if (worker.shared->ready.load(std::memory_order_acquire) == 2) continue;  // reported, then exited
      const pid_t pid = worker.pid;
      worker.pid = -1;
      throw WorkerLost(pid, signal_of(*status), exit_status_of(*status));
    }
    futex_wait(worker.shared->ready, 0, Clock::now() + std::chrono::milliseconds(10));
  }
}

void ProcessPoolCore::handle_exit(Worker& worker, int status) {
  const pid_t pid = worker.pid;
  const bool was_ready = worker.shared->ready.load(std::memory_order_acquire) == 1;
  Done done;
  {
    std::lock_guard collecting(collect_mutex_);
    collect(worker, done);
    std::lock_guard lock(mutex_);
    // What is still in the request ring was not finished: the worker takes a request off only
    // when its result is ready. Those requests are the last ones in flight, in order; the ring is
    // read from where the worker said it was, which a task may have scribbled over, so a frame is
    // resent only if it is what was sent (its digest), and reading stops at anything amiss.
    std::vector<std::vector<std::byte>> unfinished;
    ByteRing left = worker.requests.as_consumer();
    std::span<const std::byte> message;
    while (unfinished.size() < worker.in_flight.size() && left.peek(message) == ByteRing::Peek::message) {
      unfinished.emplace_back(message.begin(), message.end());
      left.pop();
    }
    const std::size_t answered_or_running = worker.in_flight.size() - unfinished.size();
    // Lost: the task whose request was taken off but whose result never came (any more than one
    // only when the ring was scribbled over), or the one that had begun and was still in the ring.
    const bool lost_running = answered_or_running == 0 && !worker.in_flight.empty() &&
                              worker.shared->started.load(std::memory_order_acquire) > worker.in_flight.front().index;
    const std::size_t lost = answered_or_running + (lost_running ? 1 : 0);
    for (std::size_t i = 0; i < lost; ++i) store_failure(worker.in_flight[i].task, lost_error(worker, status), done);
    // The rest go back to the front of the backlog, in their order, to run elsewhere.
    for (std::size_t i = worker.in_flight.size(); i-- > lost;) {
      RemoteResult* task = worker.in_flight[i].task;
      std::vector<std::byte>& request = unfinished[i - answered_or_running];
      if (request_digest(request) != worker.in_flight[i].digest) {
        store_failure(task,
                      std::make_exception_ptr(WorkerLost(pid, signal_of(status), exit_status_of(status),
                                                         "its request, queued in the worker's ring, was overwritten "
                                                         "there before the worker died")),
                      done);
        continue;
      }
      if (task->state().phase() == kCancelled) {
        task->state().release();
        continue;
      }
      const std::uint64_t no_flags = 0;
      std::memcpy(request.data() + sizeof(std::int64_t), &no_flags, sizeof no_flags);
      backlog_.push_front({task, std::move(request), std::move(worker.in_flight[i].large)});
    }
    backlog_size_.store(backlog_.size(), std::memory_order_release);
    worker.in_flight.clear();
    worker.pid = -1;
    worker.pidfd.reset();
    worker.channel.reset();
    worker.shared = nullptr;
    worker.memory.reset();
  }
  finish(done);

  if (was_ready) {
    start_failures_ = 0;
  } else if (++start_failures_ >= kStartFailuresAllowed) {
    break_pool("ProcessPool: " + std::to_string(start_failures_) +
               " replacement workers in a row died before they were ready (the last exited with status " +
               std::to_string(status) + "); the pool is closed");
    return;
  }
  if (drained()) return;
  try {
    spawn(worker);
  } catch (const Error& e) {
    break_pool(std::string("ProcessPool: cannot replace a worker: ") + e.what());
    return;
  }
  std::lock_guard lock(mutex_);
  refill();
}

void ProcessPoolCore::cancel(RemoteResult& task) noexcept {
  std::lock_guard lock(mutex_);
  for (auto& worker : workers_) {
    if (worker->pid <= 0) continue;
    for (InFlight& entry : worker->in_flight) {
      if (entry.task != &task) continue;
      request_flags(entry.flags).store(1, std::memory_order_seq_cst);
      // The worker bumps `started`, then reads the flag; this side stores the flag, then reads
      // `started`: at least one of the two sees the other, so the task is skipped or stopped.
      if (worker->shared->started.load(std::memory_order_seq_cst) > entry.index && !task.quiet_cancel() &&
          worker->kill.load() == Kill::none) {
        worker->kill = Kill::cancel;
        ::kill(worker->pid, SIGKILL);
      }
      return;
    }
  }
  // Not in a ring: in the backlog, where refill() drops cancelled tasks, or already answered.
}

void ProcessPoolCore::enforce_timeouts() {
  for (auto& worker : workers_) {
    if (worker->pid > 0 && worker->kill.load() == Kill::none && worker->shared->began.load() == 0 &&
        Clock::now() - worker->spawned_at > kWorkerBegins) {
      std::lock_guard lock(mutex_);
      kill_for_protocol(*worker, "it did not begin as a worker within " + std::to_string(kWorkerBegins.count()) +
                                     " s of its start (see its stderr)");
    }
  }
  if (options_.task_timeout.count() <= 0) return;
  const std::int64_t limit = std::chrono::nanoseconds(options_.task_timeout).count();
  const std::int64_t now = monotonic_ns();
  for (auto& worker : workers_) {
    if (worker->pid <= 0 || worker->kill.load() != Kill::none) continue;
    const std::uint64_t before = worker->shared->started.load(std::memory_order_acquire);
    const std::int64_t since = worker->shared->running_since_ns.load(std::memory_order_acquire);
    const std::uint64_t after = worker->shared->started.load(std::memory_order_acquire);
    if (since != 0 && before == after && now - since > limit) {
      worker->kill = Kill::timeout;
      ::kill(worker->pid, SIGKILL);
    }
  }
}

// The supervisor never sleeps without a timeout: results are announced by a worker's wake-up,
// which a broken worker may never send (a task can scribble over the word that asks for it), so it
// looks at least every kLook, idle or not (20 looks a second cost an idle pool nothing
// measurable). With a task_timeout it looks often enough to enforce it while tasks run; a submit
// to a pool that sleeps without tasks in flight wakes it for that (only then: a wake per submit
// would cost every round trip).
int ProcessPoolCore::poll_timeout_ms() {
  if (options_.task_timeout.count() <= 0) return static_cast<int>(kLook.count());
  // Flag first, then look: a submit that this look misses sees the flag and wakes us.
  idle_sleep_.store(true, std::memory_order_seq_cst);
  std::lock_guard lock(mutex_);
  const bool busy = std::any_of(workers_.begin(), workers_.end(), [](const auto& w) { return !w->in_flight.empty(); });
  if (!busy) return static_cast<int>(kLook.count());
  idle_sleep_.store(false, std::memory_order_relaxed);
  return static_cast<int>(std::clamp<long long>(options_.task_timeout.count() / 8, 1, kLook.count()));
}

bool ProcessPoolCore::drained() {
  std::lock_guard lock(mutex_);
  if (!stopping_ || !backlog_.empty()) return false;
  return std::all_of(workers_.begin(), workers_.end(), [](const auto& w) { return w->in_flight.empty(); });
}

void ProcessPoolCore::stop_workers() noexcept {
  for (auto& worker : workers_) {
    if (worker->pid <= 0) continue;
    worker->shared->stop.store(1, std::memory_order_seq_cst);
    worker->shared->requests.data_seq.fetch_add(1, std::memory_order_seq_cst);
    futex_wake_all(worker->shared->requests.data_seq);
  }
  // Each worker exits when it sees the flag; one that does not within two seconds is killed.
  bool killed = false;
  auto deadline = Clock::now() + std::chrono::seconds(2);
  for (;;) {
    bool running = false;
    for (auto& worker : workers_) {
      if (worker->pid <= 0) continue;
      std::optional<int> status;
      try {
        status = exit_status(*worker, false);
      } catch (const Error&) {
        status = 0;  // the fork server is gone, and its workers with it
      }
      if (status) {
        std::lock_guard collecting(collect_mutex_);
        std::lock_guard lock(mutex_);
        worker->pid = -1;
        worker->pidfd.reset();
      } else {
        running = true;
        if (killed) continue;
        if (Clock::now() >= deadline) ::kill(worker->pid, SIGKILL);
      }
    }
    if (!running) break;
    if (!killed && Clock::now() >= deadline) {
      killed = true;
      deadline = Clock::now() + std::chrono::seconds(5);
    }
    if (pool_server_) {
      pool_server_->wait_for_exit(std::min(deadline, Clock::now() + std::chrono::milliseconds(50)));
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  pool_server_.reset();  // closing the connection ends the pool server
  finished_.store(1, std::memory_order_release);
  futex_wake_all(finished_);
}

void ProcessPoolCore::break_pool(const std::string& reason) {
  Done done;
  {
    std::lock_guard lock(mutex_);
    closed_.store(true, std::memory_order_release);
    stopping_ = true;
    broken_ = reason;
    for (Pending& pending : backlog_) store_failure(pending.task, std::make_exception_ptr(Error(reason)), done);
    backlog_.clear();
    backlog_size_.store(0, std::memory_order_release);
    for (auto& worker : workers_) {
      if (worker->pid > 0) continue;
      for (InFlight& entry : worker->in_flight) store_failure(entry.task, std::make_exception_ptr(Error(reason)), done);
      worker->in_flight.clear();
    }
  }
  finish(done);
}

void ProcessPoolCore::shutdown(bool wait, bool cancel_pending) {
  close_and_cancel(cancel_pending ? Cancel::pending : Cancel::none);
  if (wait) {
    std::lock_guard lock(join_mutex_);
    if (supervisor_.joinable()) supervisor_.join();
  }
}

// Cancelling a running task kills its worker (see cancel()); the pool is closed, so none is
// started in its place, and the supervisor ends once every worker has gone.
void ProcessPoolCore::terminate() {
  close_and_cancel(Cancel::all);
  std::lock_guard lock(join_mutex_);
  if (supervisor_.joinable()) supervisor_.join();
}

void ProcessPoolCore::close_and_cancel(Cancel which) {
  std::vector<RemoteResult*> quietly, loudly;
  {
    std::lock_guard lock(mutex_);
    closed_.store(true, std::memory_order_release);
    stopping_ = true;
    if (which != Cancel::none) {
      for (Pending& pending : backlog_) quietly.push_back(pending.task);
      for (auto& worker : workers_) {
        for (std::size_t i = 0; i < worker->in_flight.size(); ++i) {
          const bool begun = worker->shared && worker->shared->started.load() > worker->in_flight[i].index;
          // Shutdown leaves begun tasks to finish (as ThreadPool's does); terminate stops them.
          if (!begun) {
            quietly.push_back(worker->in_flight[i].task);
          } else if (which == Cancel::all) {
            loudly.push_back(worker->in_flight[i].task);
          }
        }
      }
    }
  }
  for (RemoteResult* task : quietly) {
    task->set_quiet_cancel();
    task->state().try_cancel();
  }
  for (RemoteResult* task : loudly) task->state().try_cancel();
  wake_supervisor();
}

bool ProcessPoolCore::shutdown_until(Clock::time_point deadline, bool cancel_pending) {
  shutdown(false, cancel_pending);
  while (finished_.load(std::memory_order_acquire) == 0) {
    if (!futex_wait(finished_, 0, deadline) && finished_.load(std::memory_order_acquire) == 0) return false;
  }
  std::lock_guard lock(join_mutex_);
  if (supervisor_.joinable()) supervisor_.join();
  return true;
}

std::shared_ptr<ProcessPoolCore> make_process_pool_core(ProcessPoolOptions options) {
  return std::make_shared<ProcessPoolCore>(std::move(options));
}

void submit_remote(ProcessPoolCore& core, const RequestSource& request, RemoteResult* task) {
  core.submit(request, task);
}
std::size_t worker_count(const ProcessPoolCore& core) noexcept { return core.size(); }
bool is_closed(const ProcessPoolCore& core) noexcept { return core.closed(); }
PoolStats stats(ProcessPoolCore& core) { return core.stats(); }
std::size_t ring_message_bytes(const ProcessPoolCore& core) noexcept { return core.ring_message_bytes(); }
void shutdown(ProcessPoolCore& core, bool wait, bool cancel_pending) { core.shutdown(wait, cancel_pending); }
void terminate(ProcessPoolCore& core) { core.terminate(); }
bool shutdown_until(ProcessPoolCore& core, Clock::time_point deadline, bool cancel_pending) {
  return core.shutdown_until(deadline, cancel_pending);
}
void help_collect(ProcessPoolCore& core, bool (*ready)(const void*), const void* context, Clock::time_point deadline) {
  core.help_collect(ready, context, deadline);
}
void begin_collecting(ProcessPoolCore& core) noexcept { core.begin_collecting(); }
void end_collecting(ProcessPoolCore& core) { core.end_collecting(); }
void cancel_remote(ProcessPoolCore& core, RemoteResult& task) noexcept { core.cancel(task); }
std::uint64_t runner_key(ProcessPoolCore& core, const RemoteResult& task) { return core.runner_key(task); }
bool worker_runs(ProcessPoolCore& core, const RemoteResult& task) { return core.worker_runs(task); }
void check_owner(const ProcessPoolCore& core) { core.check_owner(); }
ByteWriter& request_buffer() {
  thread_local ByteWriter buffer;
  return buffer;
}

}  // namespace tandem::detail
