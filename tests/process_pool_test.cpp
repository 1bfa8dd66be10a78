// What only a ProcessPool does: survive tasks that crash, hang or leak, and leave nothing behind.
// The behaviour both pools share is tested once for both in pool_test.cpp.
#include "tandem/process_pool.hpp"

#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "process_tree.hpp"
#include "tandem/event.hpp"
#include "shared_block.hpp"
#include "tandem/process.hpp"

using namespace std::chrono_literals;

namespace {

#ifdef TANDEM_UNDER_TSAN
constexpr int kFaultTasks = 200;
#else
constexpr int kFaultTasks = 1000;
#endif

std::size_t count_entries(const std::string& directory) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(directory)) ++n;
  return n;
}

// /dev/shm entries, but for the test helpers' own (other test programs that ctest runs at the
// same time create and remove theirs).
std::size_t shared_memory_entries() {
  std::size_t n = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/dev/shm")) {
    if (entry.path().filename().string().rfind("tandem-test-", 0) != 0) ++n;
  }
  return n;
}

using test_support::descendant_pids;
using test_support::parent_of;

// Descendants not in `before` (a process of an earlier test may end meanwhile: only new ones
// count). Processes a pool ends go away shortly after it does (a fork server reaps them), so
// `settle` waits up to 2 s for the set to empty.
std::set<long> new_descendants(const std::set<long>& before, bool settle = false) {
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    std::set<long> fresh;
    for (long pid : descendant_pids()) {
      if (!before.count(pid)) fresh.insert(pid);
    }
    if (!settle || fresh.empty() || std::chrono::steady_clock::now() - start > 2s) return fresh;
    std::this_thread::sleep_for(5ms);
  }
}

struct ParseError : std::runtime_error {
  explicit ParseError(const std::string& message) : std::runtime_error(message) {}
};

struct Unregistered : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// For a pool created in a child this test forked. TSan runs a thread of its own in every process,
// and the default start method refuses to start its server in a process with two threads; the
// parent-death machinery under test is the same for every start method.
tandem::ProcessPoolOptions options_in_forked_child() {
  tandem::ProcessPoolOptions options;
  options.workers = 2;
#ifdef __SANITIZE_THREAD__
  options.start_method = tandem::StartMethod::fork;
#endif
  return options;
}

enum class Crash : int { none, segfault, abort, exit, sigkill, exception };

int run_or_crash(int x, Crash how) {
  switch (how) {
    case Crash::segfault:
      std::raise(SIGSEGV);
      break;
    case Crash::abort:
      std::abort();
    case Crash::exit:
#ifdef __SANITIZE_ADDRESS__
      // LeakSanitizer would check the worker's copy of the test's heap at exit and change the
      // status; the pool sees the same exit either way.
      ::_exit(7);
#else
      std::exit(7);
#endif
    case Crash::sigkill:
      std::raise(SIGKILL);
      break;
    case Crash::exception:
      throw std::runtime_error("bad input " + std::to_string(x));
    case Crash::none:
      break;
  }
  return x * 2;
}

int set_after_start = 0;

// Restores the program's default start method when a test ends.
class DefaultStartMethod {
 public:
  explicit DefaultStartMethod(tandem::StartMethod method) : before_(tandem::set_default_start_method(method)) {}
  ~DefaultStartMethod() { tandem::set_default_start_method(before_); }
  DefaultStartMethod(const DefaultStartMethod&) = delete;
  DefaultStartMethod& operator=(const DefaultStartMethod&) = delete;

 private:
  tandem::StartMethod before_;
};

// set_default_start_method (Python's set_start_method) reaches every options struct made after it:
// a pool's workers are then spawned (this process is their parent, and they do not see a global
// set after the program started) and a Process says so.
TEST(StartMethods, TheProgramDefaultReachesPoolsAndProcessesMadeAfterIt) {
  EXPECT_EQ(tandem::default_start_method(), tandem::kDefaultStartMethod);
  const tandem::ProcessPoolOptions before;
  {
    DefaultStartMethod spawn(tandem::StartMethod::spawn);
    EXPECT_EQ(tandem::default_start_method(), tandem::StartMethod::spawn);
    EXPECT_EQ(tandem::ProcessPoolOptions{}.start_method, tandem::StartMethod::spawn);
    EXPECT_EQ(tandem::ProcessOptions{}.start_method, tandem::StartMethod::spawn);
    EXPECT_EQ(before.start_method, tandem::kDefaultStartMethod) << "options made before keep theirs";
    set_after_start = 7;
    tandem::ProcessPool pool(1);
    const auto [parent_is_us, seen] =
        pool.submit([](pid_t us) { return std::pair{::getppid() == us, set_after_start}; }, ::getpid()).get();
    set_after_start = 0;
    EXPECT_TRUE(parent_is_us) << "not a fork server's child";
    EXPECT_EQ(seen, 0) << "a fresh program, not a fork of this one";
    tandem::Process process([] {});
    EXPECT_EQ(process.start_method(), tandem::StartMethod::spawn);
    process.start();
    process.join();
    EXPECT_EQ(process.exitcode(), 0);
  }
  EXPECT_EQ(tandem::default_start_method(), tandem::kDefaultStartMethod) << "set_default_start_method returned it";
}

TEST(ProcessPoolIsolation, EachKindOfCrashFailsOnlyItsTaskAndNamesTheCause) {
  tandem::ProcessPool pool(2);
  auto expect_lost = [&](Crash how, int signal, int status) {
    auto f = pool.submit(&run_or_crash, 1, how);
    try {
      f.get();
      ADD_FAILURE() << "expected WorkerLost";
    } catch (const tandem::WorkerLost& e) {
      EXPECT_EQ(e.signal(), signal) << e.what();
      EXPECT_EQ(e.exit_status(), status) << e.what();
      EXPECT_GT(e.pid(), 0);
      if (signal != 0) {
        EXPECT_NE(std::string(e.what()).find("signal"), std::string::npos) << e.what();
      }
    }
    EXPECT_EQ(pool.submit(&run_or_crash, 21, Crash::none).get(), 42) << "the pool goes on";
  };
  expect_lost(Crash::segfault, SIGSEGV, -1);
  expect_lost(Crash::abort, SIGABRT, -1);
  expect_lost(Crash::sigkill, SIGKILL, -1);
  expect_lost(Crash::exit, 0, 7);
  EXPECT_EQ(pool.size(), 2u);
}

class FaultInjection : public ::testing::TestWithParam<tandem::StartMethod> {};

TEST_P(FaultInjection, LosesNothingAndLeaksNothing) {
  const auto processes_before = descendant_pids();
  const std::size_t fds_before = count_entries("/proc/self/fd");
  const std::size_t shm_before = shared_memory_entries();
  {
    tandem::ProcessPoolOptions options;
    options.workers = 2;
    options.start_method = GetParam();
    tandem::ProcessPool pool(options);
    const auto pool_processes = new_descendants(processes_before).size();
    std::vector<tandem::Future<int>> futures;
    std::vector<Crash> plan;
    const Crash kinds[] = {Crash::segfault, Crash::abort, Crash::exit, Crash::sigkill, Crash::exception};
    for (int i = 0; i < kFaultTasks; ++i) {
      plan.push_back(i % 10 == 3 ? kinds[(i / 10) % 5] : Crash::none);
      futures.push_back(pool.submit(&run_or_crash, i, plan.back()));
    }
    int results = 0, lost = 0, thrown = 0;
    for (int i = 0; i < kFaultTasks; ++i) {
      try {
        EXPECT_EQ(futures[static_cast<std::size_t>(i)].get(), 2 * i);
        EXPECT_EQ(plan[static_cast<std::size_t>(i)], Crash::none) << "task " << i << " should have failed";
        ++results;
      } catch (const tandem::WorkerLost&) {
        EXPECT_NE(plan[static_cast<std::size_t>(i)], Crash::none);
        EXPECT_NE(plan[static_cast<std::size_t>(i)], Crash::exception);
        ++lost;
      } catch (const std::runtime_error& e) {
        EXPECT_EQ(plan[static_cast<std::size_t>(i)], Crash::exception) << e.what();
        ++thrown;
      }
    }
    EXPECT_EQ(results, kFaultTasks * 9 / 10);
    EXPECT_EQ(lost + thrown, kFaultTasks / 10);
    EXPECT_EQ(thrown, kFaultTasks / 10 / 5);
    EXPECT_EQ(pool.size(), 2u);
    // The last crash's replacement may still be starting: give it a moment.
    const auto start = std::chrono::steady_clock::now();
    while (new_descendants(processes_before).size() != pool_processes && std::chrono::steady_clock::now() - start < 2s) {
      std::this_thread::sleep_for(5ms);
    }
    EXPECT_EQ(new_descendants(processes_before).size(), pool_processes)
        << "the pool keeps its size, and no dead worker lingers";
  }
  std::string lingering;
  for (long pid : new_descendants(processes_before, true)) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(stat, line);
    lingering += "\n  " + line;
  }
  EXPECT_EQ(lingering, "") << "no process (zombie or live) may be left";
  EXPECT_EQ(count_entries("/proc/self/fd"), fds_before) << "no descriptor is leaked";
  EXPECT_EQ(shared_memory_entries(), shm_before) << "no shared-memory entry is leaked";
}

INSTANTIATE_TEST_SUITE_P(EachStartMethod, FaultInjection,
                         ::testing::Values(tandem::StartMethod::forkserver, tandem::StartMethod::fork,
                                           tandem::StartMethod::spawn),
                         [](const auto& info) { return std::string(tandem::to_string(info.param)); });

TEST(ProcessPoolIsolation, ATaskPastItsTimeoutIsStoppedAndTheOthersGoOn) {
  tandem::ProcessPoolOptions options;
  options.workers = 2;
  options.task_timeout = 200ms;
  tandem::ProcessPool pool(options);
  const auto start = std::chrono::steady_clock::now();
  auto hung = pool.submit([] {
    std::this_thread::sleep_for(60s);
    return 0;
  });
  std::vector<tandem::Future<int>> quick;
  for (int i = 0; i < 20; ++i) quick.push_back(pool.submit([](int x) { return x; }, i));
  EXPECT_THROW(hung.get(), tandem::TaskTimeout);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 200ms);
  EXPECT_LT(took, 2s) << "the timeout fired late";
  for (int i = 0; i < 20; ++i) EXPECT_EQ(quick[static_cast<std::size_t>(i)].get(), i);
  EXPECT_EQ(pool.submit([] { return 5; }).get(), 5);
}

int wait_on(tandem::Event event, int x) {
  event.wait();
  return x;
}

// Python's Pool.terminate(): running tasks are stopped (their workers killed), queued ones
// cancelled, and every worker is gone when it returns, where shutdown waits for running tasks.
TEST(ProcessPoolLifecycle, TerminateStopsRunningTasksAndLeavesNoWorker) {
  const auto before = descendant_pids();
  tandem::ProcessPool pool(2);
  tandem::Event never;
  std::vector<tandem::Future<int>> running, queued;
  for (int i = 0; i < 2; ++i) running.push_back(pool.submit(tandem::partial(&wait_on, never), i));
  for (int i = 0; i < 10; ++i) queued.push_back(pool.submit([](int x) { return x; }, i));
  const auto until = std::chrono::steady_clock::now() + 30s;
  while (!(running[0].running() && running[1].running()) && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_TRUE(running[0].running() && running[1].running());
  const auto start = std::chrono::steady_clock::now();
  pool.terminate();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  for (auto& f : running) EXPECT_THROW(f.get(), tandem::CancelledError);
  for (auto& f : queued) {
    EXPECT_TRUE(f.done());
    if (!f.cancelled()) {
      EXPECT_NO_THROW(f.get()) << "a queued task either ran before the terminate or was cancelled";
    }
  }
  EXPECT_TRUE(pool.closed());
  EXPECT_THROW(pool.submit([] { return 0; }), tandem::PoolClosed);
  EXPECT_TRUE(new_descendants(before, true).empty()) << "no worker is left";
}

TEST(ProcessPoolIsolation, CancellingARunningTaskKillsAndReplacesItsWorker) {
  tandem::ProcessPool pool(1);
  auto endless = pool.submit([] {
    for (;;) std::this_thread::sleep_for(1ms);
  });
  auto next = pool.submit([] { return 3; });
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (!endless.running() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(1ms);
  EXPECT_TRUE(endless.running()) << "a task its worker runs is running";
  EXPECT_FALSE(next.running()) << "a task queued behind it is not";
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(endless.cancel()) << "a ProcessPool stops a running task: it ends cancelled";
  EXPECT_FALSE(endless.running());
  EXPECT_TRUE(endless.cancelled());
  EXPECT_THROW(endless.get(), tandem::CancelledError);
  EXPECT_EQ(next.get_for(5s), 3) << "the task queued behind it runs on the replacement";
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
}

TEST(ProcessPoolIsolation, AllocationPastTheMemoryLimitFailsClearly) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "sanitizers replace the allocator and reserve terabytes of shadow address space";
#endif
  tandem::ProcessPoolOptions options;
  options.workers = 1;
  options.memory_limit = std::size_t{64} << 20;
  tandem::ProcessPool pool(options);
  auto hog = pool.submit([] {
    std::vector<char> big(std::size_t{512} << 20, 1);
    return static_cast<int>(big[12345]);
  });
  try {
    hog.get();
    FAIL() << "expected MemoryLimitExceeded";
  } catch (const tandem::MemoryLimitExceeded& e) {
    EXPECT_NE(std::string(e.what()).find("memory_limit"), std::string::npos) << e.what();
  }
  EXPECT_EQ(pool.submit([] { return std::vector<char>(std::size_t{8} << 20, 2)[7]; }).get(), 2)
      << "allocations within the limit still work";
}

TEST(ProcessPoolLifecycle, MaxTasksPerChildReplacesWorkers) {
  tandem::ProcessPoolOptions options;
  options.workers = 1;
  options.max_tasks_per_child = 3;
  tandem::ProcessPool pool(options);
  std::vector<tandem::Future<int>> pids;
  for (int i = 0; i < 9; ++i) pids.push_back(pool.submit([] { return static_cast<int>(::getpid()); }));
  std::vector<int> seen;
  for (auto& f : pids) seen.push_back(f.get());
  EXPECT_EQ(std::set<int>(seen.begin(), seen.end()).size(), 3u);
  EXPECT_EQ(seen[0], seen[2]);
  EXPECT_NE(seen[2], seen[3]);
}

TEST(ProcessPoolLifecycle, WorkersThatKeepFailingToStartCloseThePoolWithAnError) {
  SharedBlock<std::atomic<int>> starts;
  tandem::ProcessPoolOptions options;
  options.workers = 1;
  options.initializer = tandem::partial(
      [](SharedHandle<std::atomic<int>> starts) {
        if ((*starts)++ > 0) throw std::runtime_error("the licence server is gone");
      },
      starts.get());
  tandem::ProcessPool pool(options);
  auto crash = pool.submit(&run_or_crash, 0, Crash::segfault);
  EXPECT_THROW(crash.get(), tandem::WorkerLost);
  const auto start = std::chrono::steady_clock::now();
  while (!pool.closed() && std::chrono::steady_clock::now() - start < 10s) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(pool.closed()) << "the pool kept respawning failing workers";
  try {
    pool.submit([] { return 1; });
    FAIL() << "expected PoolClosed";
  } catch (const tandem::PoolClosed& e) {
    EXPECT_NE(std::string(e.what()).find("died before they were ready"), std::string::npos) << e.what();
  }
  EXPECT_EQ(starts->load(), 4) << "the first start, then three failed replacements";
}

// A pool server killed (its workers die with it) is replaced: the running task is lost, the pool
// goes on with a new server and new workers, and is never closed for it.
TEST(ProcessPoolLifecycle, AKilledPoolServerIsReplacedAndThePoolGoesOn) {
  tandem::ProcessPool pool(2);  // forkserver
  const long worker = pool.submit([] { return static_cast<long>(::getpid()); }).get();
  const long server = parent_of(worker);
  ASSERT_GT(server, 1);
  SharedBlock<std::atomic<int>> started;
  auto running = pool.submit(
      [](SharedHandle<std::atomic<int>> started) {
        started->store(1);
        ::pause();
        return 0;
      },
      started.get());
  while (started->load() == 0) std::this_thread::sleep_for(1ms);
  ::kill(static_cast<pid_t>(server), SIGKILL);
  EXPECT_THROW(running.get_for(10s), tandem::WorkerLost);
  for (int round = 0; round < 3; ++round) {
    std::vector<tandem::Future<int>> later;
    for (int i = 0; i < 20; ++i) later.push_back(pool.submit([](int x) { return x + 1; }, i));
    for (int i = 0; i < 20; ++i) EXPECT_EQ(later[static_cast<std::size_t>(i)].get_for(10s), i + 1);
  }
  EXPECT_FALSE(pool.closed());
  const long new_worker = pool.submit([] { return static_cast<long>(::getpid()); }).get();
  EXPECT_NE(parent_of(new_worker), server) << "a new pool server forks the workers";
}

// The root fork server killed: every pool server dies with it, and so their workers. The next
// forkserver pool or Process starts a new root (afresh, since this program runs threads), and the
// pools that lost theirs go on.
TEST(ProcessPoolLifecycle, AKilledRootForkServerIsReplacedOnDemand) {
#ifdef __SANITIZE_THREAD__
  GTEST_SKIP() << "the replacement root server is a spawned copy of the test program";
#endif
  tandem::ProcessPool before(1);
  const long worker = before.submit([] { return static_cast<long>(::getpid()); }).get();
  const long root = parent_of(parent_of(worker));
  ASSERT_GT(root, 1);
  ASSERT_NE(root, static_cast<long>(::getpid()));
  ::kill(static_cast<pid_t>(root), SIGKILL);
  // Its workers die with it (they are left as zombies for whoever reaps orphans here).
  const auto alive = [](long pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    return std::getline(stat, line) && line[line.rfind(')') + 2] != 'Z';
  };
  for (int i = 0; i < 200 && alive(worker); ++i) std::this_thread::sleep_for(10ms);
  tandem::ProcessPool after(2);
  EXPECT_EQ(after.submit([](int x) { return x * 3; }, 14).get_for(10s), 42);
  tandem::Process process(tandem::ProcessOptions{.start_method = tandem::StartMethod::forkserver}, [] {});
  process.start();
  EXPECT_TRUE(process.join_for(10s));
  EXPECT_EQ(process.exitcode(), 0);
  EXPECT_EQ(before.submit([](int x) { return x * 2; }, 21).get_for(10s), 42) << "the older pool heals too";
}

// A task in a worker of any start method starts pools and processes of every start method.
class NestedAgents : public ::testing::TestWithParam<tandem::StartMethod> {};

int start_everything_inside(int x) {
  int sum = 0;
  for (const auto method : {tandem::StartMethod::fork, tandem::StartMethod::forkserver, tandem::StartMethod::spawn}) {
    tandem::ProcessPoolOptions options;
    options.workers = 1;
    options.start_method = method;
    tandem::ProcessPool inner(options);
    sum += inner.submit([](int y) { return y * 2; }, x).get();
    tandem::Process child(tandem::ProcessOptions{.start_method = method}, [](int code) { std::_Exit(code); }, 5);
    child.start();
    child.join();
    sum += child.exitcode().value_or(-100);
  }
  return sum;
}

TEST_P(NestedAgents, AWorkerStartsPoolsAndProcessesOfEveryStartMethod) {
#ifdef __SANITIZE_THREAD__
  GTEST_SKIP() << "TSan cannot start threads in a process forked from a thread other than main";
#endif
  tandem::ProcessPoolOptions options;
  options.workers = 1;
  options.start_method = GetParam();
  tandem::ProcessPool pool(options);
  try {
    EXPECT_EQ(pool.submit(&start_everything_inside, 10).get_for(60s), 3 * (20 + 5));
  } catch (const tandem::Error& e) {
    ADD_FAILURE() << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(EachStartMethod, NestedAgents,
                         ::testing::Values(tandem::StartMethod::fork, tandem::StartMethod::forkserver,
                                           tandem::StartMethod::spawn),
                         [](const auto& info) { return std::string(tandem::to_string(info.param)); });

TEST(ProcessPoolLifecycle, WorkersInheritNoDescriptorsButStdio) {
  char path[] = "/tmp/tandem-fd-test-XXXXXX";
  const int secret = ::mkstemp(path);  // open in the parent: a worker must not hold it
  ASSERT_GE(secret, 0);
  tandem::ProcessPool pool(1);
  auto open_files = pool.submit([] {
    std::vector<std::string> targets;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
      std::error_code error;
      targets.push_back(std::filesystem::read_symlink(entry.path(), error).string());
    }
    return targets;
  });
  const auto targets = open_files.get();
  ::close(secret);
  ::unlink(path);
  EXPECT_EQ(std::count(targets.begin(), targets.end(), std::string(path)), 0) << "the worker inherited a file";
  // stdin, stdout, stderr, the wake-up eventfd, the channel socket to the pool, the memory file
  // results are written into, and the directory being listed.
  EXPECT_LE(targets.size(), 7u);
}

TEST(ProcessPoolLifecycle, WorkersDieWithTheParentEvenOnSigkill) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const pid_t parent = ::fork();
  ASSERT_GE(parent, 0);
  if (parent == 0) {
    ::close(pipe_fds[0]);
    tandem::ProcessPool pool(options_in_forked_child());
    for (int i = 0; i < 2; ++i) {
      const int pid = pool.submit([] { return static_cast<int>(::getpid()); }).get();
      if (::write(pipe_fds[1], &pid, sizeof pid) != sizeof pid) ::_exit(1);
    }
    for (;;) ::pause();
  }
  ::close(pipe_fds[1]);
  std::vector<int> workers;
  int pid = 0;
  while (workers.size() < 2 && ::read(pipe_fds[0], &pid, sizeof pid) == sizeof pid) workers.push_back(pid);
  ::close(pipe_fds[0]);
  ASSERT_EQ(workers.size(), 2u);
  ::kill(parent, SIGKILL);
  ::waitpid(parent, nullptr, 0);
  const auto start = std::chrono::steady_clock::now();
  auto alive = [&] {
    return std::any_of(workers.begin(), workers.end(), [](int w) {
      std::ifstream stat("/proc/" + std::to_string(w) + "/stat");
      std::string pid_text, name, state;
      return stat >> pid_text >> name >> state && state != "Z";
    });
  };
  while (alive() && std::chrono::steady_clock::now() - start < 3s) std::this_thread::sleep_for(5ms);
  EXPECT_FALSE(alive()) << "workers outlived their parent";
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
}

TEST(ProcessPoolLifecycle, CtrlCStopsTheParentAndItsWorkersQuietly) {
  int out[2];
  ASSERT_EQ(::pipe(out), 0);
  const pid_t parent = ::fork();
  ASSERT_GE(parent, 0);
  if (parent == 0) {
    ::setpgid(0, 0);
    ::dup2(out[1], 2);
    ::close(out[0]);
    ::signal(SIGINT, SIG_DFL);
    tandem::ProcessPool pool(options_in_forked_child());
    auto f = pool.submit([] { return static_cast<int>(::getpid()); });
    f.get();
    if (::write(out[1], "", 1) != 1) ::_exit(1);
    for (;;) ::pause();
  }
  ::close(out[1]);
  char ready = 1;
  ASSERT_EQ(::read(out[0], &ready, 1), 1);
  ::kill(-parent, SIGINT);  // the whole process group, as a terminal's Ctrl-C does
  int status = 0;
  ::waitpid(parent, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT);
  std::string printed;
  char buffer[256];
  for (ssize_t n; (n = ::read(out[0], buffer, sizeof buffer)) > 0;) printed.append(buffer, static_cast<std::size_t>(n));
  ::close(out[0]);
  EXPECT_EQ(printed, "") << "workers printed on Ctrl-C";
  // Orphaned workers are reparented; where nobody reaps them they linger as zombies, which is
  // fine: what matters is that none is still running.
  auto group_running = [&] {
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
      std::ifstream stat(entry.path() / "stat");
      std::string pid, name, state;
      long ppid = 0, pgrp = 0;
      if (stat >> pid >> name >> state >> ppid >> pgrp && pgrp == parent && state != "Z") return true;
    }
    return false;
  };
  const auto start = std::chrono::steady_clock::now();
  while (group_running() && std::chrono::steady_clock::now() - start < 3s) std::this_thread::sleep_for(5ms);
  EXPECT_FALSE(group_running()) << "a process of the group survived Ctrl-C";
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
}

TEST(ProcessPoolTransport, RegisteredExceptionsArriveAsThemselvesOthersAsRemoteError) {
  tandem::register_remote_exception<ParseError>();
  tandem::ProcessPool pool(1);
  EXPECT_THROW(pool.submit([]() -> int { throw ParseError("line 3"); }).get(), ParseError);
  try {
    pool.submit([]() -> int { throw Unregistered("who am I"); }).get();
    FAIL() << "expected RemoteError";
  } catch (const tandem::RemoteError& e) {
    EXPECT_NE(e.type_name().find("Unregistered"), std::string::npos) << e.type_name();
    EXPECT_EQ(e.message(), "who am I");
  }
}

std::uint64_t checksum(const std::vector<std::uint8_t>& bytes) {
  std::uint64_t sum = 1469598103934665603ull;
  for (const auto b : bytes) sum = (sum ^ b) * 1099511628211ull;
  return sum;
}

std::vector<std::uint8_t> pattern(std::size_t size, std::uint8_t seed) {
  std::vector<std::uint8_t> bytes(size);
  for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<std::uint8_t>(i * 31 + seed);
  return bytes;
}

class LargeMessages : public ::testing::TestWithParam<tandem::StartMethod> {
 protected:
  // 64 KiB rings: anything above 8 KiB goes through a memory file of its own.
  tandem::ProcessPoolOptions options(std::size_t workers) const {
    tandem::ProcessPoolOptions options;
    options.workers = workers;
    options.ring_bytes = 1 << 16;
    options.start_method = GetParam();
    return options;
  }
};

TEST_P(LargeMessages, MixedSizesArriveIntactAndInOrder) {
  const std::size_t fds_before = count_entries("/proc/self/fd");
  {
    tandem::ProcessPool pool(options(2));
    // Sizes on both sides of the threshold, requests and results alike, so that small frames
    // and large ones interleave in every ring.
    std::vector<tandem::Future<std::vector<std::uint8_t>>> futures;
    std::vector<std::vector<std::uint8_t>> sent;
    for (int i = 0; i < 120; ++i) {
      const std::size_t size = (i % 3 == 0) ? 100 : (i % 3 == 1) ? 20'000 + 997 * i : 3 << 20;
      sent.push_back(pattern(size, static_cast<std::uint8_t>(i)));
      futures.push_back(pool.submit(
          [](std::vector<std::uint8_t> bytes, int grow) {
            for (auto& b : bytes) b = static_cast<std::uint8_t>(b + 1);
            bytes.resize(bytes.size() + static_cast<std::size_t>(grow), 0xEE);
            return bytes;
          },
          sent.back(), (i % 4 == 0) ? 50'000 : 0));
    }
    for (int i = 0; i < 120; ++i) {
      auto expected = sent[static_cast<std::size_t>(i)];
      for (auto& b : expected) b = static_cast<std::uint8_t>(b + 1);
      expected.resize(expected.size() + ((i % 4 == 0) ? 50'000 : 0), 0xEE);
      const auto& got = futures[static_cast<std::size_t>(i)].get();
      ASSERT_EQ(got.size(), expected.size()) << "task " << i;
      EXPECT_EQ(checksum(got), checksum(expected)) << "task " << i;
    }
  }
  EXPECT_EQ(count_entries("/proc/self/fd"), fds_before) << "every memory file was closed";
}

TEST_P(LargeMessages, QueuedLargeRequestsSurviveACrashAndACancel) {
  tandem::ProcessPool pool(options(1));
  // The crash takes the worker with four large requests queued behind it; one of them is
  // cancelled. The others run on the replacement, with their own bytes.
  SharedBlock<Gate> gate;
  auto crash = pool.submit(
      [](SharedHandle<Gate> gate, std::vector<std::uint8_t> bytes) {
        gate->wait();
        if (!bytes.empty()) std::abort();
        return std::uint64_t{0};
      },
      gate.get(), pattern(1 << 20, 0));
  std::vector<tandem::Future<std::uint64_t>> queued;
  for (int i = 1; i <= 4; ++i) {
    queued.push_back(pool.submit([](const std::vector<std::uint8_t>& bytes) { return checksum(bytes); },
                                 pattern(static_cast<std::size_t>(i) << 18, static_cast<std::uint8_t>(i))));
  }
  EXPECT_TRUE(queued[1].cancel());
  gate->open();
  EXPECT_THROW(crash.get(), tandem::WorkerLost);
  for (int i : {0, 2, 3}) {
    EXPECT_EQ(queued[static_cast<std::size_t>(i)].get(),
              checksum(pattern(static_cast<std::size_t>(i + 1) << 18, static_cast<std::uint8_t>(i + 1))));
  }
  EXPECT_THROW(queued[1].get(), tandem::CancelledError);

  // A cancelled large request that its worker skips: the files of those behind it still match.
  SharedBlock<Gate> second_gate;
  auto blocker = pool.submit([](SharedHandle<Gate> gate) { gate->wait(); }, second_gate.get());
  std::vector<tandem::Future<std::uint64_t>> behind;
  for (int i = 1; i <= 3; ++i) {
    behind.push_back(pool.submit([](const std::vector<std::uint8_t>& bytes) { return checksum(bytes); },
                                 pattern(static_cast<std::size_t>(i) << 19, static_cast<std::uint8_t>(9 * i))));
  }
  EXPECT_TRUE(behind[0].cancel());
  second_gate->open();
  blocker.get();
  EXPECT_THROW(behind[0].get(), tandem::CancelledError);
  EXPECT_EQ(behind[1].get(), checksum(pattern(std::size_t{2} << 19, 18)));
  EXPECT_EQ(behind[2].get(), checksum(pattern(std::size_t{3} << 19, 27)));
}

// Python's initargs: values given after the initializer reach it in every worker, of any size
// (the initializer used to be capped at 512 bytes), also in the worker that replaces a lost one.
struct InitializerSeen {
  std::atomic<int> runs{0};
  std::atomic<std::uint64_t> bytes{0};
  std::atomic<int> factor{0};
};
int initialized_factor = 0;

TEST_P(LargeMessages, AnInitializerTakesItsValuesOfAnySize) {
  SharedBlock<InitializerSeen> seen;
  auto pool_options = options(2);
  pool_options.initializer = {[](SharedHandle<InitializerSeen> s, std::string text, int factor) {
                                s->runs++;
                                s->bytes += text.size();
                                s->factor = factor;
                                initialized_factor = factor;
                              },
                              seen.get(), std::string(std::size_t{1} << 20, 'c'), 4};
  // Read through a reference taken now: SharedHandle's lookup takes a lock, which a worker forked
  // (fork start method) while this thread held it would inherit held, and its initializer hang.
  InitializerSeen& counts = *seen.operator->();
  tandem::ProcessPool pool(pool_options);
  EXPECT_EQ(counts.runs.load(), 2);
  EXPECT_EQ(counts.bytes.load(), 2u << 20) << "each worker got the whole MiB";
  EXPECT_EQ(counts.factor.load(), 4);
  EXPECT_EQ(pool.submit([] { return initialized_factor; }).get(), 4) << "tasks see what it set up";
  EXPECT_THROW(pool.submit([] { std::abort(); }).get(), tandem::WorkerLost);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (counts.bytes.load() < (3u << 20) && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(counts.runs.load(), 3) << "the worker that replaced the lost one ran it too";
  EXPECT_EQ(counts.bytes.load(), 3u << 20);
}

INSTANTIATE_TEST_SUITE_P(EachStartMethod, LargeMessages,
                         ::testing::Values(tandem::StartMethod::fork, tandem::StartMethod::forkserver,
                                           tandem::StartMethod::spawn),
                         [](const auto& info) { return std::string(tandem::to_string(info.param)); });

TEST(ProcessPoolTransport, MapChunksFitTheRing) {
  tandem::ProcessPoolOptions options;
  options.workers = 1;
  options.ring_bytes = 1 << 16;
  tandem::ProcessPool pool(options);
  const std::vector<int> many(100'000, 1);
  EXPECT_EQ(pool.map([](int x) { return x + 1; }, many).size(), many.size()) << "map sizes its chunks to the ring";
}

tandem::ProcessPool* outer_pool = nullptr;

TEST(ProcessPoolTransport, AWorkerCannotUseItsCopyOfTheParentsPool) {
  // Only forked workers have such a copy: forkserver and spawn workers never see the pool.
  tandem::ProcessPoolOptions forked;
  forked.workers = 1;
  forked.start_method = tandem::StartMethod::fork;
  tandem::ProcessPool outer(forked);
  outer_pool = &outer;  // set before `pool` forks, so its workers have a copy of the pointer
  tandem::ProcessPool pool(forked);
  auto misuse = pool.submit([] { return outer_pool->submit([] { return 1; }).get(); });
  try {
    misuse.get();
    FAIL() << "expected an error";
  } catch (const tandem::Error& e) {
    EXPECT_NE(std::string(e.what()).find("belongs to process"), std::string::npos) << e.what();
  }
  outer_pool = nullptr;
}

TEST(ProcessPoolTransport, ATaskMayRunItsOwnPoolInsideItsWorker) {
#ifdef __SANITIZE_THREAD__
  GTEST_SKIP() << "TSan cannot start threads in a process forked from a thread other than main";
#endif
  tandem::ProcessPool pool(1);
  auto nested = pool.submit([] {
    tandem::ProcessPool inner(1);
    return inner.submit([](int x) { return x * 2; }, 21).get();
  });
  EXPECT_EQ(nested.get(), 42);
}

// Times a process or thread went to sleep (voluntary context switches), from /proc/<path>/status.
long voluntary_switches(const std::string& path) {
  std::ifstream status("/proc/" + path + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("voluntary_ctxt_switches:", 0) == 0) return std::stol(line.substr(line.find(':') + 1));
  }
  return -1;
}

TEST(ProcessPoolTransport, AnIdleRoundTripNeitherSideSleeps) {
  tandem::ProcessPool pool(1);
  const auto worker = std::to_string(pool.submit([] { return static_cast<long>(::getpid()); }).get());
  for (int i = 0; i < 100; ++i) pool.submit([](int x) { return x; }, i).get();
  constexpr int kRounds = 2000;
  const long worker_before = voluntary_switches(worker), caller_before = voluntary_switches("thread-self");
  std::vector<double> samples;
  for (int i = 0; i < kRounds; ++i) {
    const auto start = std::chrono::steady_clock::now();
    pool.submit([](int x) { return x; }, i).get();
    samples.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
  }
  const long sleeps = voluntary_switches(worker) - worker_before + voluntary_switches("thread-self") - caller_before;
  std::nth_element(samples.begin(), samples.begin() + kRounds / 2, samples.end());
  // The property, rather than a time that a busy machine would stretch: the caller and the
  // worker spin on shared memory for each other, so a round trip costs no sleep and wake-up.
  // (A yield to a busy machine's other processes is not a sleep.)
  // One side sleeping per message would show kRounds sleeps; a loaded machine shows ~10 %.
  EXPECT_LT(sleeps, kRounds / 2) << "sleeps over " << kRounds << " round trips; median " << samples[kRounds / 2]
                                  << " us";
}

}  // namespace
