// The pitfall diagnostics' tables, in one shared memory that every process of the program maps:
// the agents and what they hold and wait for, the names of the objects, the lock-order graph,
// who releases what, and the findings. Fixed sizes: full tables make the diagnostics see less,
// never wrongly (an agent or releaser it cannot record counts as able to go on).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "tandem/detail/robust_mutex.hpp"

namespace tandem::detail {

inline constexpr std::size_t kTrackedAgents = 256;
inline constexpr std::size_t kTrackedHeldLocks = 16;
inline constexpr std::size_t kTrackedNames = 1024;
inline constexpr std::size_t kTrackedEdges = 512;
inline constexpr std::size_t kTrackedReleasers = 4096;
inline constexpr std::size_t kTrackedReleaseStamps = 1024;
inline constexpr std::size_t kKeptReports = 64;
inline constexpr std::size_t kNameBytes = 48;
inline constexpr std::size_t kSiteBytes = 1024;
inline constexpr std::size_t kReportBytes = 4096;

// Entries are published by `state`: written while kClaimed, readable once kReady.
enum EntryState : std::uint32_t { kFree = 0, kClaimed = 1, kReady = 2 };

// One thread that used a tracked object, from its first use to its end. `occupant` is
// agent_id(pid, tid); it and `name_words` are written while kClaimed and fixed once kReady.
// `version` changes with each new occupant, so a reader can tell that a slot changed hands
// while it read.
struct AgentSlot {
  std::atomic<std::uint32_t> state{kFree};
  std::atomic<std::uint32_t> version{0};
  std::atomic<std::uint64_t> occupant{0};
  std::atomic<std::uint64_t> start_time{0};  // of the process, to tell a reused pid
  std::atomic<std::uint64_t> name_words[2] = {};  // the thread's name, up to 15 bytes
  std::atomic<std::uint32_t> held_count{0};
  std::atomic<std::uint64_t> held[kTrackedHeldLocks] = {};
  // The current wait; `wait_serial` grows with each, so the watchdog tells one wait from the next.
  std::atomic<std::uint32_t> wait_serial{0};
  std::atomic<std::uint32_t> wait_kind{0};  // WaitKind; none when not waiting
  std::atomic<std::uint32_t> wait_timed{0};
  std::atomic<std::uint64_t> wait_key{0};
  std::atomic<std::int64_t> wait_since_ns{0};  // steady clock
  std::atomic<std::uint64_t> running_task{0};   // future_key of the pool task it runs, 0 if none
};

struct NameEntry {
  std::atomic<std::uint32_t> state{kFree};
  std::atomic<std::uint64_t> key{0};
  char name[kNameBytes] = {};
};

// `from` was held when `to` was taken; `site` says by whom and where, the first time.
struct OrderEdge {
  std::atomic<std::uint32_t> state{kFree};
  std::uint64_t from = 0;
  std::uint64_t to = 0;
  char site[kSiteBytes] = {};
};

// Agent `agent` has done what releases waiters of `kind` on `key`.
struct ReleaserEntry {
  std::atomic<std::uint32_t> state{kFree};
  std::uint32_t kind = 0;
  std::uint64_t key = 0;
  std::uint64_t agent = 0;
};

// When waiters of `kind` on `key` were last released (a put, a get, a notify): a waiter whose
// wait began before that may just not have run yet.
struct ReleaseStamp {
  std::atomic<std::uint32_t> state{kFree};
  std::uint32_t kind = 0;
  std::uint64_t key = 0;
  std::atomic<std::int64_t> last_ns{0};
};

struct StoredReport {
  std::uint32_t finding = 0;
  std::int32_t pid = 0;
  char text[kReportBytes] = {};
};

struct DiagnosticsTable {
  static constexpr std::uint32_t kTag = 0x4449414bu;  // "DIAG"
  DiagnosticsTable() : graph_mutex(RobustMutex::Kind::plain), report_mutex(RobustMutex::Kind::plain) {}

  // Options every process follows (diagnostics::Options, as numbers).
  std::atomic<std::uint32_t> mode{0};
  std::atomic<std::uint32_t> print{1};
  std::atomic<std::int64_t> starvation_threshold_ns{0};
  std::atomic<std::uint32_t> releasers_overflowed{0};
  std::atomic<std::uint32_t> edges_full{0};  // new orders are no longer recorded

  RobustMutex graph_mutex;  // serializes edge insertion, so two inversions cannot both slip by
  RobustMutex report_mutex;
  std::uint64_t reports_total = 0;  // under report_mutex

  AgentSlot agents[kTrackedAgents];
  NameEntry names[kTrackedNames];
  OrderEdge edges[kTrackedEdges];
  ReleaserEntry releasers[kTrackedReleasers];
  ReleaseStamp release_stamps[kTrackedReleaseStamps];
  StoredReport reports[kKeptReports];
};

inline std::uint64_t mix_bits(std::uint64_t x) noexcept {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

inline std::size_t release_stamp_home(std::uint32_t kind, std::uint64_t key) noexcept {
  return mix_bits(key ^ (static_cast<std::uint64_t>(kind) << 56)) % kTrackedReleaseStamps;
}

inline std::uint64_t agent_id(std::int32_t pid, std::int32_t tid) noexcept {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(pid)) << 32) | static_cast<std::uint32_t>(tid);
}
inline std::int32_t agent_pid(std::uint64_t id) noexcept { return static_cast<std::int32_t>(id >> 32); }
inline std::int32_t agent_tid(std::uint64_t id) noexcept { return static_cast<std::int32_t>(id & 0xffffffffu); }

}  // namespace tandem::detail
