// The worker side of a ProcessPool: the memory a worker shares with its pool, and the loop a
// worker process runs. A worker reads everything it needs from that shared memory (its
// configuration included), never from the parent's heap, so the same loop serves workers that
// were forked from the pool's process, forked by a fork server, or spawned afresh.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "ipc/byte_ring.hpp"
#include "pool/large_message.hpp"
#include <span>

#include "tandem/detail/remote_task.hpp"

namespace tandem::detail {

// Shared by the pool's process and every worker of that pool.
struct PoolShared {
  alignas(64) std::atomic<std::uint32_t> active_collectors{0};  // threads reading responses now
  alignas(64) std::atomic<std::uint32_t> supervisor_asleep{0};  // the supervisor waits for a wake-up
};

// What a worker is told when it starts.
struct WorkerConfig {
  std::uint64_t memory_limit = 0;
  std::uint64_t max_tasks_per_child = 0;
  std::uint32_t timed = 0;  // the pool has a task_timeout: record when each task starts
  // Who the worker is (current_process) and who asked for it (parent_process).
  std::uint64_t worker_number = 0;
  std::int64_t pool_pid = 0;
  char pool_process_name[128] = {};
  // Each ring's size; the initializer's bytes follow the two rings.
  std::uint64_t ring_bytes = 0;
  std::uint64_t initializer_size = 0;
  // A worker that does not inherit the pool's memory joins the pitfall diagnostics through this
  // (diagnostics_session.hpp).
  std::uint32_t diagnostics_size = 0;
  std::byte diagnostics[256];
};

// Shared by the pool's process and one worker, at the start of that worker's mapping; the
// request ring and the response ring follow.
struct WorkerShared {
  RingControl requests;
  RingControl responses;
  alignas(64) std::atomic<std::uint64_t> started{0};  // requests the worker has begun
  std::atomic<std::uint64_t> finished{0};             // requests it has served (for the stall report)
  std::atomic<std::int64_t> running_since_ns{0};      // CLOCK_MONOTONIC; 0 while idle
  std::atomic<std::uint32_t> ready{0};                // futex: 1 initialized, 2 the initializer threw
  std::atomic<std::uint32_t> began{0};                // 1 once the process runs as a worker
  std::atomic<std::uint32_t> stop{0};                 // set by the pool: exit when idle
  char failure_type[256];
  char failure_message[1024];
  WorkerConfig config;
};

inline constexpr std::size_t kWorkerHeaderBytes = 8192;
static_assert(sizeof(WorkerShared) <= kWorkerHeaderBytes);

// Bytes of a worker's mapping with rings of `ring_bytes` each and an initializer of
// `initializer_bytes` after them.
constexpr std::size_t worker_mapping_bytes(std::size_t ring_bytes, std::size_t initializer_bytes) {
  return kWorkerHeaderBytes + 2 * ring_bytes + initializer_bytes;
}

// A worker's view of its mappings.
struct WorkerContext {
  WorkerShared* shared;
  std::size_t mapping_bytes;
  std::span<const std::byte> initializer;
  ByteRing requests;
  ByteRing responses;
  PoolShared* pool;
  int wake_fd;     // an eventfd: written to wake the pool's supervisor
  int channel_fd;  // a socket to the pool: carries the memory files of large messages
};

// The layout of a worker's mapping of `worker_bytes`, whose config says its ring and initializer
// sizes. Throws Error when they do not fit the mapping.
WorkerContext worker_context(std::byte* worker_memory, std::size_t worker_bytes, std::byte* pool_memory, int wake_fd,
                             int channel_fd);

// Runs the worker loop in this process (which must have just been created for it) and exits.
[[noreturn]] void worker_main(const WorkerContext& context);
// The same, for a process that was handed the mappings as file descriptors.
[[noreturn]] void worker_main_from_fds(int worker_fd, int pool_fd, int wake_fd, int channel_fd);

// Marks this process as a worker (tasks then cannot use a pool object copied from the parent).
void mark_worker_process() noexcept;

// The request's flags word, which the pool sets in place to have a queued request skipped.
inline std::atomic_ref<std::uint64_t> request_flags(std::byte* at) {
  return std::atomic_ref<std::uint64_t>(*std::launder(reinterpret_cast<std::uint64_t*>(at)));
}

}  // namespace tandem::detail
