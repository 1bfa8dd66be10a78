#include "worker.hpp"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <new>
#include <string>

#include "shared_mapping.hpp"
#include "tandem/error.hpp"

namespace tandem::detail {
namespace {

// Set in a worker process as it starts (and only there).
bool this_process_is_worker = false;

constexpr auto kWorkerSpin = std::chrono::microseconds(300);

std::int64_t monotonic_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

template <std::size_t N>
void copy_text(char (&out)[N], const std::string& text) {
  std::snprintf(out, N, "%s", text.c_str());
}

void close_inherited_descriptors(int keep) {
  // Only stdio and the wake-up eventfd: a worker must not hold the parent's sockets, pipes or
  // files open (a peer would never see them close).
  if (keep > 3) ::syscall(SYS_close_range, 3u, static_cast<unsigned>(keep - 1), 0u);
  ::syscall(SYS_close_range, static_cast<unsigned>(keep + 1), ~0u, 0u);
}

void limit_address_space(std::size_t extra) {
  std::size_t pages = 0;
  std::ifstream("/proc/self/statm") >> pages;
  const rlim_t limit = static_cast<rlim_t>(pages * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)) + extra);
  const rlimit value{limit, limit};
  ::setrlimit(RLIMIT_AS, &value);
}

void write_exception(ByteWriter& out, const std::string& type, const std::string& message) {
  out.clear();
  out.write_raw(static_cast<std::uint64_t>(ResponseStatus::exception));
  encode_text(out, type.substr(0, 512));
  encode_text(out, message.substr(0, 4096));
}

// Runs one request into `out`.
void serve(WorkerShared& shared, std::span<const std::byte> message, ByteWriter& out) {
  const WorkerConfig& config = shared.config;
  out.clear();
  ByteReader in(message);
  try {
    const auto entry = reinterpret_cast<Entry>(const_cast<void*>(code_at(in.read_raw<std::int64_t>())));
    auto* flags = const_cast<std::byte*>(in.take(sizeof(std::uint64_t)));
    if (request_flags(flags).load(std::memory_order_seq_cst) != 0) {
      out.write_raw(static_cast<std::uint64_t>(ResponseStatus::skipped));
      return;
    }
    out.write_raw(static_cast<std::uint64_t>(ResponseStatus::value));
    if (config.timed) shared.running_since_ns.store(monotonic_ns(), std::memory_order_relaxed);
    entry(in, out);
  } catch (const std::bad_alloc&) {
    if (config.memory_limit != 0) {
      write_exception(out, "tandem::MemoryLimitExceeded",
                      "the task allocated past the worker's memory_limit of " + std::to_string(config.memory_limit) +
                          " bytes");
    } else {
      write_exception(out, "std::bad_alloc", "std::bad_alloc");
    }
  } catch (...) {
    const auto [type, text] = describe_current_exception();
    write_exception(out, type, text);
  }
  if (config.timed) shared.running_since_ns.store(0, std::memory_order_relaxed);
}

}  // namespace

void mark_worker_process() noexcept { this_process_is_worker = true; }
bool in_worker_process() noexcept { return this_process_is_worker; }

WorkerContext worker_context(std::byte* worker_memory, std::size_t worker_bytes, std::byte* pool_memory, int wake_fd) {
  auto* shared = std::launder(reinterpret_cast<WorkerShared*>(worker_memory));
  const std::size_t ring_bytes = (worker_bytes - kWorkerHeaderBytes) / 2;
  std::byte* rings = worker_memory + kWorkerHeaderBytes;
  return {shared, ByteRing(&shared->requests, rings, ring_bytes),
          ByteRing(&shared->responses, rings + ring_bytes, ring_bytes),
          std::launder(reinterpret_cast<PoolShared*>(pool_memory)), wake_fd};
}

void worker_main(const WorkerContext& context) {
  mark_worker_process();
  const pid_t parent = ::getppid();
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(0);  // the parent died just before the line above
  ::signal(SIGINT, SIG_IGN);              // Ctrl-C is the parent's to handle, once
  close_inherited_descriptors(context.wake_fd);
  WorkerShared& shared = *context.shared;
  const WorkerConfig& config = shared.config;
  if (config.memory_limit != 0) limit_address_space(config.memory_limit);
  if (config.initializer_size != 0) {
    try {
      RemoteCall::run({config.initializer, config.initializer_size});
    } catch (...) {
      const auto [type, message] = describe_current_exception();
      copy_text(shared.failure_type, type);
      copy_text(shared.failure_message, message);
      shared.ready.store(2, std::memory_order_seq_cst);
      futex_wake_all(shared.ready);
      std::fflush(nullptr);
      ::_exit(3);
    }
  }
  shared.ready.store(1, std::memory_order_seq_cst);
  futex_wake_all(shared.ready);

  ByteRing requests = context.requests, responses = context.responses;
  auto give_up = [&] { return shared.stop.load(std::memory_order_relaxed) != 0 || ::getppid() != parent; };
  ByteWriter out;
  std::uint64_t tasks = 0;
  for (;;) {
    if (!requests.wait_for_message(kWorkerSpin, Clock::time_point::max(), give_up)) break;
    std::span<const std::byte> message;
    const ByteRing::Peek peek = requests.peek(message);
    if (peek == ByteRing::Peek::empty) continue;
    if (peek == ByteRing::Peek::corrupt) ::_exit(2);
    shared.started.fetch_add(1, std::memory_order_seq_cst);
    serve(shared, message, out);
    if (out.size() > responses.max_message()) {
      const std::size_t size = out.size();
      write_exception(out, "tandem::Error",
                      "the task's result takes " + std::to_string(size) + " bytes, more than a response may (" +
                          std::to_string(responses.max_message()) +
                          "): return less per task or raise ProcessPoolOptions::ring_bytes");
    }
    // Taken off only now: a request still in the ring when a worker dies was not finished.
    requests.pop();
    while (!responses.try_push(out.data(), out.size())) {
      if (!responses.wait_for_space(out.size(), kWorkerSpin, Clock::time_point::max(), give_up) && give_up()) {
        ::_exit(0);
      }
    }
    if (context.pool->active_collectors.load(std::memory_order_seq_cst) == 0 &&
        context.pool->supervisor_asleep.exchange(0, std::memory_order_seq_cst) == 1) {
      const std::uint64_t one = 1;
      [[maybe_unused]] const ssize_t written = ::write(context.wake_fd, &one, sizeof one);
    }
    if (config.max_tasks_per_child != 0 && ++tasks >= config.max_tasks_per_child) break;
  }
  std::fflush(nullptr);
  ::_exit(0);
}

void worker_main_from_fds(int worker_fd, int pool_fd, int wake_fd) {
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
  worker_main(worker_context(worker_memory.data(), worker_memory.size(), pool_memory.data(), wake_fd));
}

}  // namespace tandem::detail
