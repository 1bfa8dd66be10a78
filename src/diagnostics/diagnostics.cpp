// The hooks of the pitfall diagnostics (detail/tracking.hpp), the lock-order graph, and the
// session that owns the shared tables. The watchdog is in watchdog.cpp.
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <span>
#include <vector>

#include "diagnostics/diagnostics_internal.hpp"
#include "diagnostics/diagnostics_session.hpp"
#include "diagnostics/stack_trace.hpp"
#include "tandem/detail/futex.hpp"
#include "tandem/detail/process_identity.hpp"
#include "tandem/error.hpp"
#include "tandem/shared_memory.hpp"
#include "diagnostics/watchdog.hpp"

namespace tandem {
namespace detail {

std::atomic<bool> tracking_on_flag{false};

namespace {

// The process's view of the diagnostics: the table it writes to (created here, or received from
// the process that started this one) and, in the process that enabled them, the watchdog.
struct Session {
  std::mutex mutex;
  std::optional<SharedMemory> memory;
  // Tables received from other processes stay mapped once replaced: a hook that read the switch
  // just before it turned off may still write to them. (A table this process created is reused.)
  std::vector<SharedMemory> retired;
  std::optional<SharedMemory> own_table;
  std::atomic<DiagnosticsTable*> table{nullptr};
  // Changes whenever the table does; a thread's record of an older one is discarded.
  std::atomic<std::uint64_t> generation{1};
  pid_t creator = 0;
  pid_t creator_of_own_table = 0;
  std::unique_ptr<Watchdog> watchdog;
  pid_t watchdog_owner = 0;
};

// Never destroyed: threads and static objects that outlive main() may still lock, unlock or wait,
// and their hooks must find the table mapped. The watchdog is stopped at exit (stop_at_exit).
Session& session() {
  alignas(Session) static unsigned char storage[sizeof(Session)];
  static Session* const instance = new (storage) Session();
  return *instance;
}

bool is_own_table(const Session& s, const SharedMemory& memory) {
  return s.own_table && s.own_table->data() == memory.data();
}

DiagnosticsTable& current_table() { return *session().table.load(std::memory_order_acquire); }

// What the calling thread holds and has recorded, for the session `generation`.
struct AgentRecord {
  std::uint64_t generation = 0;
  DiagnosticsTable* table = nullptr;
  AgentSlot* slot = nullptr;
  std::uint32_t held_count = 0;
  std::array<LockLabel, kTrackedHeldLocks> held{};
  std::array<std::uint64_t, 16> named{};  // keys whose names this thread has recorded
  std::uint32_t named_next = 0;
  struct Noted {
    std::uint64_t key = 0;
    std::uint32_t kind = 0;
    ReleaseStamp* stamp = nullptr;
  };
  std::array<Noted, 16> noted{};  // objects this thread has released waiters of, recently
  std::uint32_t noted_next = 0;

  ~AgentRecord() { leave(); }
  void leave() {
    if (slot != nullptr && generation == session().generation.load(std::memory_order_acquire)) {
      slot->state.store(kClaimed, std::memory_order_relaxed);
      slot->wait_kind.store(0, std::memory_order_relaxed);
      slot->held_count.store(0, std::memory_order_relaxed);
      slot->occupant.store(0, std::memory_order_relaxed);
      slot->state.store(kFree, std::memory_order_release);
    }
    slot = nullptr;
  }
};

thread_local AgentRecord this_agent;

// A forked child's thread is another agent than the parent's, holding none of its locks (the
// slot it would inherit is the parent thread's); the parent's watchdog thread is not there to
// stop, and a mutex some other parent thread held would stay locked for good.
void start_afresh_in_forked_child() {
  this_agent = AgentRecord{};
  Session& s = session();
  new (&s.mutex) std::mutex();
  static_cast<void>(s.watchdog.release());
  s.watchdog_owner = 0;
}

// Registered at start-up, not at first use: a first use that raced a fork in another thread would
// leave the child a half-done static initialization, and the child would hang in it.
const bool fork_handler_registered = ::pthread_atfork(nullptr, nullptr, start_afresh_in_forked_child) == 0;

void register_fork_handler() {
  if (!fork_handler_registered) throw Error("diagnostics: pthread_atfork failed");
}

// At exit the watchdog stops before the statics it reads are destroyed; hooks that run later
// find the switch off.
void stop_at_exit() {
  Session& s = session();
  tracking_on_flag.store(false, std::memory_order_release);
  if (s.watchdog_owner == ::getpid()) s.watchdog.reset();
}

void claim_slot(AgentRecord& record) {
  DiagnosticsTable& table = *record.table;
  const ProcessIdentity self = ProcessIdentity::self();
  const std::uint64_t id = agent_id(self.pid, static_cast<std::int32_t>(::gettid()));
  for (AgentSlot& slot : table.agents) {
    std::uint32_t expected = kFree;
    if (!slot.state.compare_exchange_strong(expected, kClaimed, std::memory_order_acquire)) continue;
    slot.version.fetch_add(1, std::memory_order_relaxed);
    slot.occupant.store(id, std::memory_order_relaxed);
    slot.start_time.store(self.start_time, std::memory_order_relaxed);
    char name[16] = {};
    ::pthread_getname_np(::pthread_self(), name, sizeof name);
    for (std::size_t word = 0; word < 2; ++word) {
      std::uint64_t bits = 0;
      std::memcpy(&bits, name + word * 8, 8);
      slot.name_words[word].store(bits, std::memory_order_relaxed);
    }
    slot.held_count.store(0, std::memory_order_relaxed);
    slot.wait_kind.store(0, std::memory_order_relaxed);
    slot.running_task.store(0, std::memory_order_relaxed);
    slot.state.store(kReady, std::memory_order_release);
    record.slot = &slot;
    return;
  }
  // Full: this thread's locks and waits go unseen by the watchdog (its lock order is still checked).
}

AgentRecord& agent() {
  AgentRecord& record = this_agent;
  const std::uint64_t generation = session().generation.load(std::memory_order_acquire);
  if (record.generation != generation) [[unlikely]] {
    record = AgentRecord{};
    record.generation = generation;
    record.table = &current_table();
    claim_slot(record);
  }
  return record;
}

void mirror_held(const AgentRecord& record) {
  if (record.slot == nullptr) return;
  for (std::uint32_t i = 0; i < record.held_count; ++i) {
    record.slot->held[i].store(record.held[i].key, std::memory_order_relaxed);
  }
  record.slot->held_count.store(record.held_count, std::memory_order_release);
}

std::string short_key(std::uint64_t key) {
  char text[16];
  std::snprintf(text, sizeof text, "%06" PRIx64, key & 0xffffff);
  return text;
}

// ---- names ---------------------------------------------------------------------------------

void record_name(DiagnosticsTable& table, std::uint64_t key, std::string_view name) {
  if (name.empty()) return;
  for (std::size_t probe = 0; probe < kTrackedNames; ++probe) {
    NameEntry& entry = table.names[(mix_bits(key) + probe) % kTrackedNames];
    std::uint32_t state = entry.state.load(std::memory_order_acquire);
    if (state == kFree && entry.state.compare_exchange_strong(state, kClaimed, std::memory_order_acquire)) {
      entry.key.store(key, std::memory_order_relaxed);
      const std::size_t length = std::min(name.size(), kNameBytes - 1);
      std::memcpy(entry.name, name.data(), length);
      entry.name[length] = '\0';
      entry.state.store(kReady, std::memory_order_release);
      return;
    }
    if (state == kReady && entry.key.load(std::memory_order_relaxed) == key) return;
  }
}

void remember_name(AgentRecord& record, std::uint64_t key, std::string_view name) {
  if (name.empty()) return;
  if (std::find(record.named.begin(), record.named.end(), key) != record.named.end()) return;
  record_name(*record.table, key, name);
  record.named[record.named_next++ % record.named.size()] = key;
}

std::string label_text(LockLabel lock) {
  return quoted(lock.name.empty() ? "lock #" + short_key(lock.key) : std::string(lock.name));
}

// ---- the lock-order graph ------------------------------------------------------------------

std::size_t edge_home(std::uint64_t from, std::uint64_t to) {
  return mix_bits(from * 0x9e3779b97f4a7c15ull ^ to) % kTrackedEdges;
}

// The edge from -> to, or nullptr. Lock-free: edges are written once, before they are kReady.
const OrderEdge* find_edge(const DiagnosticsTable& table, std::uint64_t from, std::uint64_t to) {
  for (std::size_t probe = 0, at = edge_home(from, to); probe < kTrackedEdges; ++probe) {
    const OrderEdge& edge = table.edges[(at + probe) % kTrackedEdges];
    const std::uint32_t state = edge.state.load(std::memory_order_acquire);
    if (state == kFree) return nullptr;
    if (state == kReady && edge.from == from && edge.to == to) return &edge;
  }
  return nullptr;
}

// Under graph_mutex, the only writer.
void insert_edge(DiagnosticsTable& table, std::uint64_t from, std::uint64_t to, const std::string& site) {
  for (std::size_t probe = 0, at = edge_home(from, to); probe < kTrackedEdges; ++probe) {
    OrderEdge& edge = table.edges[(at + probe) % kTrackedEdges];
    if (edge.state.load(std::memory_order_relaxed) != kFree) continue;
    edge.from = from;
    edge.to = to;
    // Whole lines only, so that what follows in a report starts on its own line.
    std::size_t length = site.size();
    if (length > kSiteBytes - 1) length = site.rfind('\n', kSiteBytes - 2) + 1;
    std::memcpy(edge.site, site.data(), length);
    edge.site[length] = '\0';
    edge.state.store(kReady, std::memory_order_release);
    return;
  }
  table.edges_full.store(1, std::memory_order_relaxed);
}

// The edges of a path source -> ... -> target (breadth first, so the shortest), empty if none.
std::vector<const OrderEdge*> find_path(const DiagnosticsTable& table, std::uint64_t source, std::uint64_t target) {
  struct Step {
    std::uint64_t lock;
    int parent;  // index into `steps`
    const OrderEdge* edge;
  };
  std::vector<Step> steps{{source, -1, nullptr}};
  for (std::size_t next = 0; next < steps.size(); ++next) {
    const std::uint64_t lock = steps[next].lock;
    for (const OrderEdge& edge : table.edges) {
      if (edge.state.load(std::memory_order_acquire) != kReady || edge.from != lock) continue;
      const bool seen = std::any_of(steps.begin(), steps.end(), [&](const Step& s) { return s.lock == edge.to; });
      if (seen) continue;
      steps.push_back({edge.to, static_cast<int>(next), &edge});
      if (edge.to != target) continue;
      std::vector<const OrderEdge*> path;
      for (int at = static_cast<int>(steps.size()) - 1; steps[at].edge != nullptr; at = steps[at].parent) {
        path.push_back(steps[at].edge);
      }
      std::reverse(path.begin(), path.end());
      return path;
    }
  }
  return {};
}

std::string this_agent_description() {
  char name[16] = {};
  ::pthread_getname_np(::pthread_self(), name, sizeof name);
  return describe_agent(agent_id(::getpid(), static_cast<std::int32_t>(::gettid())), name);
}

std::string lock_order_report(const DiagnosticsTable& table, LockLabel held, LockLabel taken,
                              const std::vector<const OrderEdge*>& path, const std::string& site) {
  std::string text = "potential deadlock: lock order inversion between " + label_text(held) + " and " +
                     label_text(taken) + "\n";
  text += this_agent_description() + " takes " + label_text(taken) + " while holding " + label_text(held) +
          ", but the reverse order was seen before. Agents that take these locks in both orders at the same "
          "time deadlock; take them in one order everywhere.\n";
  for (const OrderEdge* edge : path) {
    text += "  earlier, " + quoted(object_name(table, edge->from, WaitKind::lock)) + " then " +
            quoted(object_name(table, edge->to, WaitKind::lock)) + ", " + edge->site;
  }
  text += "  now, " + label_text(held) + " then " + label_text(taken) + ", " + site;
  return text;
}

[[noreturn]] void stop_program() {
  std::fflush(nullptr);
  std::abort();
}

void record_new_order(AgentRecord& record, LockLabel held, LockLabel taken) {
  DiagnosticsTable& table = *record.table;
  // Captured outside the graph's lock: symbolizing takes milliseconds the first time.
  const std::string site = "by " + this_agent_description() + ", at:\n" + stack_trace(0, 8, "      ");
  std::string report;
  {
    BookkeepingGuard guard(table.graph_mutex);
    if (find_edge(table, held.key, taken.key) != nullptr) return;
    record_name(table, held.key, held.name);
    record_name(table, taken.key, taken.name);
    if (const auto path = find_path(table, taken.key, held.key); !path.empty()) {
      report = lock_order_report(table, held, taken, path, site);
    }
    insert_edge(table, held.key, taken.key, site);
  }
  if (report.empty()) return;
  emit_finding(table, diagnostics::Finding::lock_order, report);
  if (table.mode.load(std::memory_order_relaxed) == static_cast<std::uint32_t>(diagnostics::Mode::abort)) {
    stop_program();
  }
}

// ---- releasers -----------------------------------------------------------------------------

void record_releaser(DiagnosticsTable& table, WaitKind kind, std::uint64_t key, std::uint64_t who) {
  const std::uint64_t home = mix_bits(key ^ (who * 0x9e3779b97f4a7c15ull) ^ static_cast<std::uint64_t>(kind));
  for (std::size_t probe = 0; probe < kTrackedReleasers; ++probe) {
    ReleaserEntry& entry = table.releasers[(home + probe) % kTrackedReleasers];
    std::uint32_t state = entry.state.load(std::memory_order_acquire);
    if (state == kReady && entry.key == key && entry.agent == who && entry.kind == static_cast<std::uint32_t>(kind)) {
      return;
    }
    if (state == kFree && entry.state.compare_exchange_strong(state, kClaimed, std::memory_order_acquire)) {
      entry.kind = static_cast<std::uint32_t>(kind);
      entry.key = key;
      entry.agent = who;
      entry.state.store(kReady, std::memory_order_release);
      return;
    }
  }
  table.releasers_overflowed.store(1, std::memory_order_relaxed);
}

// The stamp of (kind, key), made if there is none yet; nullptr when the table is full.
ReleaseStamp* release_stamp(DiagnosticsTable& table, std::uint32_t kind, std::uint64_t key) {
  for (std::size_t probe = 0, home = release_stamp_home(kind, key); probe < kTrackedReleaseStamps; ++probe) {
    ReleaseStamp& stamp = table.release_stamps[(home + probe) % kTrackedReleaseStamps];
    std::uint32_t state = stamp.state.load(std::memory_order_acquire);
    if (state == kFree && stamp.state.compare_exchange_strong(state, kClaimed, std::memory_order_acquire)) {
      stamp.kind = kind;
      stamp.key = key;
      stamp.state.store(kReady, std::memory_order_release);
      return &stamp;
    }
    while (state == kClaimed) state = stamp.state.load(std::memory_order_acquire);
    if (state == kReady && stamp.kind == kind && stamp.key == key) return &stamp;
  }
  return nullptr;
}

}  // namespace

// ---- hooks -----------------------------------------------------------------------------------

std::uint64_t new_object_key() noexcept {
  static std::atomic<std::uint64_t> counter{0};
  const ProcessIdentity self = ProcessIdentity::self();
  const std::uint64_t process = mix_bits((static_cast<std::uint64_t>(self.pid) << 40) ^ self.start_time);
  const std::uint64_t key = mix_bits(process ^ counter.fetch_add(1, std::memory_order_relaxed));
  return key == 0 ? 1 : key;
}

std::uint64_t future_key(const void* state) noexcept {
  const ProcessIdentity self = ProcessIdentity::self();
  return mix_bits((static_cast<std::uint64_t>(self.pid) << 40) ^ self.start_time ^
                  mix_bits(reinterpret_cast<std::uintptr_t>(state)));
}

// Re-taking an RLock one holds adds no order: it cannot block. Once the graph is full, new
// orders are not recorded (nor their stacks captured, at every acquisition).
std::uint64_t pool_request_key(std::int32_t worker_pid, std::uint64_t index) noexcept {
  return mix_bits((static_cast<std::uint64_t>(static_cast<std::uint32_t>(worker_pid)) << 40) ^ mix_bits(index) ^
                  0x706f6f6cull);  // "pool": apart from future_key's
}

void check_lock_order(LockLabel lock) {
  if (!tracking_on()) return;
  AgentRecord& record = agent();
  const auto held = std::span(record.held).first(record.held_count);
  if (std::any_of(held.begin(), held.end(), [&](const LockLabel& h) { return h.key == lock.key; })) return;
  for (const LockLabel& before : held) {
    if (find_edge(*record.table, before.key, lock.key) != nullptr) continue;
    if (record.table->edges_full.load(std::memory_order_relaxed) != 0) return;
    record_new_order(record, before, lock);
  }
}

void lock_acquired(LockLabel lock) {
  if (!tracking_on()) return;
  AgentRecord& record = agent();
  remember_name(record, lock.key, lock.name);
  // Past the table's depth the deepest locks go unrecorded, which can only hide findings.
  if (record.held_count == kTrackedHeldLocks) return;
  record.held[record.held_count++] = lock;
  mirror_held(record);
}

void lock_released(std::uint64_t key) {
  AgentRecord& record = this_agent;
  if (record.generation != session().generation.load(std::memory_order_acquire)) return;
  for (std::uint32_t i = record.held_count; i-- > 0;) {
    if (record.held[i].key != key) continue;
    std::copy(record.held.begin() + i + 1, record.held.begin() + record.held_count, record.held.begin() + i);
    --record.held_count;
    mirror_held(record);
    return;
  }
}

namespace {

WaitRecord read_wait(const AgentSlot& slot) {
  return {slot.wait_kind.load(std::memory_order_relaxed), slot.wait_timed.load(std::memory_order_relaxed),
          slot.wait_key.load(std::memory_order_relaxed), slot.wait_since_ns.load(std::memory_order_relaxed)};
}

// A new wait (new serial), published by its kind.
void write_wait(AgentSlot& slot, const WaitRecord& wait) {
  slot.wait_kind.store(0, std::memory_order_relaxed);
  slot.wait_key.store(wait.key, std::memory_order_relaxed);
  slot.wait_timed.store(wait.timed, std::memory_order_relaxed);
  slot.wait_since_ns.store(wait.since_ns, std::memory_order_relaxed);
  slot.wait_serial.fetch_add(1, std::memory_order_relaxed);
  slot.wait_kind.store(wait.kind, std::memory_order_release);
}

// The slot of the calling thread in the current session, if it has one.
AgentSlot* own_slot() {
  AgentRecord& record = this_agent;
  if (record.generation != session().generation.load(std::memory_order_acquire)) return nullptr;
  return record.slot;
}

}  // namespace

TrackedWait::TrackedWait(WaitKind kind, std::uint64_t key, std::string_view name, bool timed) {
  if (!tracking_on()) return;
  AgentRecord& record = agent();
  if (record.slot == nullptr) return;
  remember_name(record, key, name);
  outer_ = read_wait(*record.slot);
  write_wait(*record.slot, {static_cast<std::uint32_t>(kind), timed ? 1u : 0u, key,
                            Clock::now().time_since_epoch().count()});
  active_ = true;
}

TrackedWait::~TrackedWait() {
  if (!active_) return;
  AgentSlot* slot = own_slot();
  if (slot == nullptr) return;
  if (outer_.kind != 0) {
    write_wait(*slot, outer_);
  } else {
    slot->wait_kind.store(0, std::memory_order_release);
  }
}

TrackedTask::TrackedTask(std::uint64_t key) {
  if (!tracking_on()) return;
  AgentRecord& record = agent();
  if (record.slot == nullptr) return;
  previous_ = record.slot->running_task.exchange(key, std::memory_order_release);
  active_ = true;
}

TrackedTask::~TrackedTask() {
  if (!active_) return;
  AgentRecord& record = this_agent;
  if (record.slot != nullptr) record.slot->running_task.store(previous_, std::memory_order_release);
}

// Every release is stamped with its time (a waiter that began before it may just not have run
// yet); who released is recorded once per thread and object.
void note_releaser(WaitKind kind, std::uint64_t key) {
  if (!tracking_on()) return;
  AgentRecord& record = agent();
  const auto kind_number = static_cast<std::uint32_t>(kind);
  auto known = std::find_if(record.noted.begin(), record.noted.end(),
                            [&](const AgentRecord::Noted& n) { return n.key == key && n.kind == kind_number; });
  if (known == record.noted.end()) {
    record_releaser(*record.table, kind, key, agent_id(::getpid(), static_cast<std::int32_t>(::gettid())));
    known = record.noted.begin() + record.noted_next++ % record.noted.size();
    *known = {key, kind_number, release_stamp(*record.table, kind_number, key)};
  }
  if (known->stamp != nullptr) known->stamp->last_ns.store(Clock::now().time_since_epoch().count(), std::memory_order_release);
}

// ---- shared with the watchdog ----------------------------------------------------------------

void emit_finding(DiagnosticsTable& table, diagnostics::Finding finding, const std::string& text) {
  {
    BookkeepingGuard guard(table.report_mutex);
    StoredReport& stored = table.reports[table.reports_total % kKeptReports];
    stored.finding = static_cast<std::uint32_t>(finding);
    stored.pid = static_cast<std::int32_t>(::getpid());
    const std::size_t length = std::min(text.size(), kReportBytes - 1);
    std::memcpy(stored.text, text.data(), length);
    stored.text[length] = '\0';
    ++table.reports_total;
  }
  if (table.print.load(std::memory_order_relaxed) != 0) {
    const std::string line = "tandem diagnostics: " + text + (text.ends_with('\n') ? "" : "\n");
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
  }
}

std::string_view wait_kind_noun(WaitKind kind) {
  switch (kind) {
    case WaitKind::lock: return "lock";
    case WaitKind::queue_get:
    case WaitKind::queue_put: return "queue";
    case WaitKind::condition: return "condition";
    case WaitKind::future: return "future";
    case WaitKind::none: break;
  }
  return "object";
}

std::string quoted(std::string_view text) {
  std::string result;
  result.reserve(text.size() + 2);
  result += '\'';
  result += text;
  result += '\'';
  return result;
}

std::string object_name(const DiagnosticsTable& table, std::uint64_t key, WaitKind kind) {
  for (std::size_t probe = 0; probe < kTrackedNames; ++probe) {
    const NameEntry& entry = table.names[(mix_bits(key) + probe) % kTrackedNames];
    const std::uint32_t state = entry.state.load(std::memory_order_acquire);
    if (state == kFree) break;
    if (state == kReady && entry.key.load(std::memory_order_relaxed) == key) return entry.name;
  }
  return std::string(wait_kind_noun(kind)) + " #" + short_key(key);
}

std::string describe_agent(std::uint64_t agent, std::string_view thread_name) {
  std::string text = "thread " + std::to_string(agent_tid(agent));
  if (!thread_name.empty()) text += " \"" + std::string(thread_name) + "\"";
  return text + " of process " + std::to_string(agent_pid(agent));
}

// ---- the session -----------------------------------------------------------------------------

void encode_diagnostics_context(ByteWriter& out) {
  Session& s = session();
  std::lock_guard guard(s.mutex);
  const bool on = tracking_on() && s.memory.has_value();
  out.write_raw(static_cast<std::uint8_t>(on ? 1 : 0));
  if (on) Traveller<SharedMemory>::encode(out, *s.memory);
}

void adopt_diagnostics_context(ByteReader& in) {
  const bool on = in.read_raw<std::uint8_t>() != 0;
  register_fork_handler();
  Session& s = session();
  std::lock_guard guard(s.mutex);
  tracking_on_flag.store(false, std::memory_order_relaxed);
  if (s.memory && !is_own_table(s, *s.memory)) s.retired.push_back(*s.memory);
  s.memory.reset();
  if (!on) return;
  s.memory = Traveller<SharedMemory>::decode(in);
  s.creator = 0;
  s.table.store(reinterpret_cast<DiagnosticsTable*>(s.memory->data()), std::memory_order_release);
  s.generation.fetch_add(1, std::memory_order_acq_rel);
  tracking_on_flag.store(true, std::memory_order_release);
}

}  // namespace detail

namespace diagnostics {

std::string_view to_string(Finding finding) noexcept {
  switch (finding) {
    case Finding::lock_order: return "lock_order";
    case Finding::deadlock: return "deadlock";
    case Finding::starvation: return "starvation";
    case Finding::stall: return "stall";
  }
  return "unknown";
}

void enable(const Options& options) {
  using namespace detail;
  if (options.mode == Mode::off) {
    disable();
    return;
  }
  if (options.watchdog_period.count() <= 0 || options.starvation_threshold.count() <= 0 ||
      options.stall_threshold.count() <= 0) {
    throw Error("diagnostics::enable: watchdog_period, starvation_threshold and stall_threshold must be positive");
  }
  register_fork_handler();
  static const bool stops_at_exit = std::atexit(stop_at_exit) == 0;
  if (!stops_at_exit) throw Error("diagnostics::enable: atexit failed");

  Session& s = session();
  std::lock_guard guard(s.mutex);
  // A table this process did not create (inherited or received) belongs to the program that
  // started it: enabling here starts this process's own.
  if (!tracking_on() || s.creator != ::getpid()) {
    if (s.memory && !is_own_table(s, *s.memory)) s.retired.push_back(*s.memory);
    // A forked child's copy of its parent's own table is the parent's: it makes its own.
    if (!s.own_table || s.creator_of_own_table != ::getpid()) {
      s.own_table.emplace(sizeof(DiagnosticsTable));
      s.creator_of_own_table = ::getpid();
    }
    s.memory = s.own_table;
    s.creator = ::getpid();
    s.table.store(new (s.memory->data()) DiagnosticsTable(), std::memory_order_release);
    s.generation.fetch_add(1, std::memory_order_acq_rel);
  }
  DiagnosticsTable& table = current_table();
  table.mode.store(static_cast<std::uint32_t>(options.mode), std::memory_order_relaxed);
  table.print.store(options.print ? 1 : 0, std::memory_order_relaxed);
  table.starvation_threshold_ns.store(std::chrono::nanoseconds(options.starvation_threshold).count(),
                                      std::memory_order_relaxed);
  s.watchdog.reset();
  s.watchdog = std::make_unique<Watchdog>(table, options);
  s.watchdog_owner = ::getpid();
  tracking_on_flag.store(true, std::memory_order_release);
}

void disable() {
  using namespace detail;
  Session& s = session();
  std::lock_guard guard(s.mutex);
  tracking_on_flag.store(false, std::memory_order_release);
  s.watchdog.reset();
  s.watchdog_owner = 0;
  if (s.memory && !is_own_table(s, *s.memory)) s.retired.push_back(*s.memory);
  s.memory.reset();
  s.generation.fetch_add(1, std::memory_order_acq_rel);
}

Mode mode() noexcept {
  if (!detail::tracking_on()) return Mode::off;
  return static_cast<Mode>(detail::current_table().mode.load(std::memory_order_relaxed));
}

std::vector<Report> reports() {
  using namespace detail;
  std::vector<Report> found;
  if (!tracking_on()) return found;
  DiagnosticsTable& table = current_table();
  BookkeepingGuard guard(table.report_mutex);
  const std::uint64_t first = table.reports_total > kKeptReports ? table.reports_total - kKeptReports : 0;
  for (std::uint64_t i = first; i < table.reports_total; ++i) {
    const StoredReport& stored = table.reports[i % kKeptReports];
    found.push_back({static_cast<Finding>(stored.finding), stored.pid, stored.text});
  }
  return found;
}

void clear_reports() {
  using namespace detail;
  if (!tracking_on()) return;
  DiagnosticsTable& table = current_table();
  BookkeepingGuard guard(table.report_mutex);
  table.reports_total = 0;
}

}  // namespace diagnostics
}  // namespace tandem
