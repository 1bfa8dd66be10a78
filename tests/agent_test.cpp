// One suite, two agents: every typed test runs its body on tandem::Thread and tandem::Process.
// Effects travel through a pipe, since a process cannot write into this test's memory.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "shared_block.hpp"
#include "process_tree.hpp"
#include "tandem/error.hpp"
#include "tandem/fair_lock.hpp"
#include "tandem/partial.hpp"
#include "tandem/process.hpp"
#include "tandem/process_pool.hpp"
#include "tandem/queue.hpp"
#include "tandem/thread.hpp"

using namespace std::chrono_literals;

namespace {

// A pipe the agent writes to and the test reads from after join.
class Channel {
 public:
  Channel() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
    read_ = fds[0];
    write_ = fds[1];
    ::fcntl(read_, F_SETFL, O_NONBLOCK);
  }
  ~Channel() {
    ::close(read_);
    ::close(write_);
  }
  int write_fd() const { return write_; }
  void send(const std::string& text) const {
    if (::write(write_, text.data(), text.size()) != static_cast<ssize_t>(text.size())) std::abort();
  }
  std::string received() const {
    std::string text;
    char buffer[256];
    for (ssize_t n; (n = ::read(read_, buffer, sizeof buffer)) > 0;) text.append(buffer, static_cast<std::size_t>(n));
    return text;
  }

 private:
  int read_ = -1, write_ = -1;
};

template <class Agent>
struct AgentTraits;

// `forked`: the options under which an agent sees this process's memory (a child started by
// fork does; one from a fork server or spawn does not).
template <>
struct AgentTraits<tandem::Thread> {
  static constexpr const char* kind = "Thread";
  static tandem::AgentOptions forked() { return {}; }
};

template <>
struct AgentTraits<tandem::Process> {
  static constexpr const char* kind = "Process";
  static tandem::ProcessOptions forked() { return {.start_method = tandem::StartMethod::fork}; }
};

// What an agent reports to the test: one Queue, for threads and processes alike.
using Reports = tandem::Queue<std::string>;
std::string next_report(Reports& report) { return report.get_for(30s); }

// A thread keeps the exception object itself; a process sends back its type name and message,
// and std::invalid_argument, registered by tandem, is rebuilt as itself.
void expect_invalid_argument(std::exception_ptr error, const std::string& message) {
  ASSERT_NE(error, nullptr);
  try {
    std::rethrow_exception(error);
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(e.what(), message);
  } catch (...) {
    ADD_FAILURE() << "not a std::invalid_argument";
  }
}

template <class Agent>
class AgentTest : public ::testing::Test {};
using Agents = ::testing::Types<tandem::Thread, tandem::Process>;
TYPED_TEST_SUITE(AgentTest, Agents);

TYPED_TEST(AgentTest, RunsTheCallableWithItsArguments) {
  Reports report;
  TypeParam agent([](Reports out, int a, const std::string& b) { out.put(std::to_string(a) + b); }, report, 42,
                  std::string("!"));
  EXPECT_FALSE(agent.is_alive());
  agent.start();
  agent.join();
  EXPECT_FALSE(agent.is_alive());
  EXPECT_EQ(next_report(report), "42!");
  EXPECT_EQ(agent.exception(), nullptr);
}

// A thread runs any callable; what a Process runs must travel (see the compile-fail tests).
TEST(Thread, TakesMoveOnlyCallablesAndArguments) {
  Channel channel;
  auto owned = std::make_unique<int>(3);
  tandem::Thread agent([&channel, p = std::move(owned)](std::unique_ptr<int> q) { channel.send(std::to_string(*p + *q)); },
                       std::make_unique<int>(4));
  agent.start();
  agent.join();
  EXPECT_EQ(channel.received(), "7");
}

TYPED_TEST(AgentTest, JoinForTimesOutWhileRunningThenSucceeds) {
  TypeParam agent([] { std::this_thread::sleep_for(200ms); });
  agent.start();
  EXPECT_TRUE(agent.is_alive());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(agent.join_for(20ms));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms);
  EXPECT_TRUE(agent.is_alive());
  EXPECT_TRUE(agent.join_for(5s));
  EXPECT_FALSE(agent.is_alive());
  EXPECT_TRUE(agent.join_for(0ms)) << "joining a finished agent again is fine";
}

TYPED_TEST(AgentTest, NamesAreNumberedByKindOrChosen) {
  TypeParam unnamed([] {});
  const std::string prefix = std::string(AgentTraits<TypeParam>::kind) + "-";
  EXPECT_EQ(unnamed.name().rfind(prefix, 0), 0u) << unnamed.name();
  TypeParam named(tandem::AgentOptions{.name = "loader", .daemon = false}, [] {});
  EXPECT_EQ(named.name(), "loader");
  named.set_name("parser");
  EXPECT_EQ(named.name(), "parser");
  named.start();
  named.join();
  EXPECT_THROW(named.set_name("late"), tandem::Error);
}

TYPED_TEST(AgentTest, IdsArePositiveAndDistinct) {
  TypeParam a([] { std::this_thread::sleep_for(20ms); });
  TypeParam b([] { std::this_thread::sleep_for(20ms); });
  a.start();
  b.start();
  EXPECT_GT(a.id(), 0);
  EXPECT_NE(a.id(), b.id());
  EXPECT_NE(a.id(), static_cast<long>(::getpid()));
  a.join();
  b.join();
}

TYPED_TEST(AgentTest, IdIsTheOsIdTheAgentSeesForItself) {
  Reports report;
  TypeParam agent([](Reports out) {
    // A thread's id is its tid; a process's is its pid, which is also its main thread's tid.
    out.put(std::to_string(::gettid()));
  }, report);
  agent.start();
  const long id = agent.id();
  agent.join();
  EXPECT_EQ(next_report(report), std::to_string(id));
}

TYPED_TEST(AgentTest, AnEscapedExceptionIsKeptAfterJoin) {
  TypeParam agent([] { throw std::invalid_argument("bad input"); });
  agent.start();
  agent.join();
  expect_invalid_argument(agent.exception(), "bad input");
}

TYPED_TEST(AgentTest, MisuseIsAClearErrorNotACrash) {
  TypeParam agent([] {});
  EXPECT_THROW(agent.join(), tandem::Error) << "join before start";
  EXPECT_THROW(agent.join_for(1ms), tandem::Error);
  EXPECT_THROW(agent.id(), tandem::Error);
  EXPECT_THROW(agent.exception(), tandem::Error);
  agent.start();
  EXPECT_THROW(agent.start(), tandem::Error) << "start twice";
  EXPECT_THROW(agent.set_daemon(true), tandem::Error) << "daemon after start";
  agent.join();

  TypeParam moved_to(std::move(agent));
  EXPECT_THROW(agent.name(), tandem::Error) << "moved-from object";
  EXPECT_THROW(agent.start(), tandem::Error);
  EXPECT_NO_THROW(moved_to.join());
}

// The agent reaches its own object through a global, as a thread does through shared memory and a
// forked child through its copy of the parent's.
template <class Agent>
std::optional<Agent> agent_itself;

TYPED_TEST(AgentTest, JoiningItselfIsRefused) {
  Reports report;
  agent_itself<TypeParam>.emplace(AgentTraits<TypeParam>::forked(), [](Reports out) {
    try {
      agent_itself<TypeParam>->join();
      out.put("joined itself");
    } catch (const tandem::Error&) {
      out.put("refused");
    }
  }, report);
  agent_itself<TypeParam>->start();
  agent_itself<TypeParam>->join();
  EXPECT_EQ(next_report(report), "refused");
  agent_itself<TypeParam>.reset();
}

TYPED_TEST(AgentTest, DestructionWithoutJoinWaitsForANonDaemon) {
  Reports report;
  {
    TypeParam agent([](Reports out) {
      std::this_thread::sleep_for(30ms);
      out.put("finished");
    }, report);
    agent.start();
  }
  EXPECT_EQ(report.try_get(), std::optional<std::string>("finished")) << "there as soon as the destructor returns";
}

TYPED_TEST(AgentTest, DaemonsAreNotWaitedFor) {
  TypeParam agent(tandem::AgentOptions{.name = "", .daemon = true}, [] { std::this_thread::sleep_for(300ms); });
  EXPECT_TRUE(agent.daemon());
  const auto start = std::chrono::steady_clock::now();
  {
    TypeParam moved(std::move(agent));
    moved.start();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 250ms);
}

// ---- Process only: exit codes and reaping -----------------------------------------------------

int exit_code_of(tandem::Process process) {
  process.start();
  EXPECT_TRUE(process.join_for(10s));
  return process.exitcode().value_or(-1000);
}

TEST(Process, ExitCodesFollowPython) {
  EXPECT_EQ(exit_code_of(tandem::Process([] {})), 0);
  EXPECT_EQ(exit_code_of(tandem::Process([] { throw std::runtime_error("x"); })), 1);
  EXPECT_EQ(exit_code_of(tandem::Process([] { std::_Exit(3); })), 3);
  EXPECT_EQ(exit_code_of(tandem::Process([] { std::abort(); })), -SIGABRT);
  EXPECT_EQ(exit_code_of(tandem::Process([] {
              ::signal(SIGSEGV, SIG_DFL);  // sanitizers install their own handler
              ::raise(SIGSEGV);
            })),
            -SIGSEGV);
}

TEST(Process, ExitcodeIsEmptyWhileRunning) {
  tandem::Process process([] { std::this_thread::sleep_for(100ms); });
  EXPECT_EQ(process.exitcode(), std::nullopt);
  process.start();
  EXPECT_EQ(process.exitcode(), std::nullopt);
  process.join();
  EXPECT_EQ(process.exitcode(), 0);
}

TEST(Process, TerminateAndKillEndAHangingChild) {
  tandem::Process terminated([] { ::pause(); });
  terminated.start();
  terminated.terminate();
  terminated.join();
  EXPECT_EQ(terminated.exitcode(), -SIGTERM);

  tandem::Process killed([] {
    ::signal(SIGTERM, SIG_IGN);
    ::pause();
  });
  killed.start();
  killed.kill();
  killed.join();
  EXPECT_EQ(killed.exitcode(), -SIGKILL);
  EXPECT_NO_THROW(killed.kill()) << "signalling an exited process is harmless";
}

TEST(Process, ANonStdExceptionStillReportsItsType) {
  tandem::Process process([] { throw 42; });
  process.start();
  process.join();
  EXPECT_EQ(process.exitcode(), 1);
  try {
    std::rethrow_exception(process.exception());
  } catch (const tandem::RemoteError& e) {
    EXPECT_EQ(e.type_name(), "int");
  }
}

// As Python prints a child's uncaught exception on its stderr, a tandem child says what escaped
// (the parent still gets the exception itself from exception()). fork and spawn children write to
// the stderr they were started with, which the test captures.
TEST(Process, AnUncaughtExceptionIsPrintedOnTheChildsStderr) {
  for (const auto method : {tandem::StartMethod::fork, tandem::StartMethod::spawn}) {
    tandem::Process process(tandem::ProcessOptions{.start_method = method},
                            [] { throw std::invalid_argument("no such column: price"); });
    ::testing::internal::CaptureStderr();
    process.start();
    process.join();
    const std::string printed = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(printed.find("uncaught std::invalid_argument: no such column: price"), std::string::npos) << printed;
    EXPECT_NE(printed.find(std::to_string(process.pid())), std::string::npos) << printed;
    EXPECT_THROW(std::rethrow_exception(process.exception()), std::invalid_argument);
  }
}

TEST(Process, NoZombieIsLeftByTheDestructor) {
  long pid = 0;
  {
    tandem::Process process([] { std::this_thread::sleep_for(20ms); });
    process.start();
    pid = process.id();
  }
  errno = 0;
  EXPECT_EQ(::waitpid(static_cast<pid_t>(pid), nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD) << "the child was reaped";
}

TEST(Process, ADaemonIsTerminatedAndReapedByTheDestructor) {
  long pid = 0;
  {
    tandem::Process process(tandem::AgentOptions{.name = "", .daemon = true}, [] { ::pause(); });
    process.start();
    pid = process.id();
  }
  errno = 0;
  EXPECT_EQ(::waitpid(static_cast<pid_t>(pid), nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
}

TEST(Process, PidIsTheId) {
  tandem::Process process([] {});
  process.start();
  EXPECT_EQ(process.pid(), process.id());
  process.join();
}

TEST(Process, OutputBufferedInTheChildIsFlushedAtItsExit) {
  Channel channel;
  // Forked, the child holds the pipe's descriptor under the same number.
  tandem::Process process(tandem::ProcessOptions{.start_method = tandem::StartMethod::fork}, [](int fd) {
    FILE* out = ::fdopen(::dup(fd), "w");
    std::fputs("buffered", out);  // no fflush, no newline: still in stdio's buffer at return
  }, channel.write_fd());
  process.start();
  process.join();
  EXPECT_EQ(channel.received(), "buffered");
}

TEST(Process, OutputBufferedInTheParentIsNotPrintedTwice) {
  Channel channel;
  FILE* out = ::fdopen(::dup(channel.write_fd()), "w");
  std::fputs("once", out);  // unflushed when the child is forked
  tandem::Process process([] {});
  process.start();
  process.join();
  std::fclose(out);
  EXPECT_EQ(channel.received(), "once");
}

int global_value = 1;

TEST(Process, TheChildWorksOnACopyOfMemory) {
  global_value = 1;
  tandem::Process process(tandem::ProcessOptions{.start_method = tandem::StartMethod::fork}, [] { global_value = 2; });
  process.start();
  process.join();
  EXPECT_EQ(process.exitcode(), 0);
  EXPECT_EQ(global_value, 1) << "a process cannot change the parent's memory: share through a pipe or queue";
}

// ---- Process: every start method -------------------------------------------------------------
// forkserver and spawn children share nothing with this process: the callables below travel as
// bytes (function pointers, trivially copyable captures) and report through shared memory.

struct Report {
  std::atomic<int> sum{0};
  std::atomic<long> pid{0};
  char text[64] = {};
};

void record(SharedHandle<Report> report, int a, std::string b, std::vector<int> c) {
  int sum = a;
  for (const int x : c) sum += x;
  report->sum = sum;
  report->pid = ::getpid();
  std::snprintf(report->text, sizeof report->text, "%s", b.c_str());
}

class ProcessStartMethod : public ::testing::TestWithParam<tandem::StartMethod> {
 protected:
  tandem::ProcessOptions options(bool daemon = false) const {
    return {.agent = {.daemon = daemon}, .start_method = GetParam()};
  }
};

TEST_P(ProcessStartMethod, RunsAFunctionWithArgumentsThatTravel) {
  SharedBlock<Report> report;
  tandem::Process process(options(), record, report.get(), 40, std::string("travelled"), std::vector<int>{1, 1});
  EXPECT_EQ(process.start_method(), GetParam());
  process.start();
  process.join();
  EXPECT_EQ(process.exitcode(), 0);
  EXPECT_EQ(process.exception(), nullptr);
  EXPECT_EQ(report->sum.load(), 42);
  EXPECT_EQ(report->pid.load(), process.id()) << "id() is the child's own pid";
  EXPECT_STREQ(report->text, "travelled");
}

// ProcessOptions holds a Thread's options whole: what AgentOptions says holds for a Process too.
TEST_P(ProcessStartMethod, TheAgentOptionsInsideProcessOptionsNameItAndMakeItADaemon) {
  tandem::ProcessOptions options{.agent = {.name = "encoder", .daemon = true}};
  options.start_method = GetParam();
  tandem::Process process(options, [] {});
  EXPECT_EQ(process.name(), "encoder");
  EXPECT_TRUE(process.daemon());
  process.start();
  process.join();
  EXPECT_EQ(process.exitcode(), 0);
}

TEST_P(ProcessStartMethod, RunsAPartialWithItsBoundValues) {
  SharedBlock<Report> report;
  const int base = 5;
  tandem::Process process(
      options(), tandem::partial([](SharedHandle<Report> handle, int factor, int n) { handle->sum = factor * n; },
                                 report.get(), base),
      3);
  process.start();
  process.join();
  EXPECT_EQ(report->sum.load(), 15);
}

TEST_P(ProcessStartMethod, ExitCodesAndExceptionsFollowPython) {
  auto exit_code = [this](auto body) {
    tandem::Process process(options(), body);
    process.start();
    EXPECT_TRUE(process.join_for(10s));
    return process.exitcode().value_or(-1000);
  };
  EXPECT_EQ(exit_code([] {}), 0);
  EXPECT_EQ(exit_code([] { std::_Exit(3); }), 3);
  EXPECT_EQ(exit_code([] { std::abort(); }), -SIGABRT);

  tandem::Process throwing(options(), [] { throw std::invalid_argument("bad input"); });
  throwing.start();
  throwing.join();
  EXPECT_EQ(throwing.exitcode(), 1);
  expect_invalid_argument(throwing.exception(), "bad input");
}

TEST_P(ProcessStartMethod, JoinForTerminateAndKill) {
  tandem::Process process(options(), [] { ::pause(); });
  process.start();
  EXPECT_TRUE(process.is_alive());
  EXPECT_FALSE(process.join_for(30ms));
  EXPECT_EQ(process.exitcode(), std::nullopt);
  process.terminate();
  EXPECT_TRUE(process.join_for(10s));
  EXPECT_EQ(process.exitcode(), -SIGTERM);
  EXPECT_FALSE(process.is_alive());

  tandem::Process stubborn(options(), [] {
    ::signal(SIGTERM, SIG_IGN);
    ::pause();
  });
  stubborn.start();
  std::this_thread::sleep_for(50ms);  // time to ignore SIGTERM
  stubborn.kill();
  stubborn.join();
  EXPECT_EQ(stubborn.exitcode(), -SIGKILL);
}

TEST_P(ProcessStartMethod, ADaemonIsEndedByTheDestructorAndNothingIsLeft) {
  long pid = 0;
  const auto start = std::chrono::steady_clock::now();
  {
    tandem::Process process(options(true), [] { ::pause(); });
    process.start();
    pid = process.id();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  // Gone: not a zombie of this process, and not alive under another parent.
  for (int i = 0; i < 100 && ::kill(static_cast<pid_t>(pid), 0) == 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_NE(::kill(static_cast<pid_t>(pid), 0), 0);
}

TEST_P(ProcessStartMethod, TheChildInheritsNoDescriptorsButStdio) {
  SharedBlock<Report> report;
  Channel open_here;  // two descriptors the child must not hold
  tandem::Process process(
      options(),
      [](SharedHandle<Report> handle) {
        int open = 0;
        for (int fd = 3; fd < 1024; ++fd) open += ::fcntl(fd, F_GETFD) != -1;
        handle->sum = open;
      },
      report.get());
  process.start();
  process.join();
  if (GetParam() == tandem::StartMethod::fork) {
    EXPECT_GT(report->sum.load(), 0) << "a forked child holds what the parent had open, as fork does";
  } else {
    // The shared-memory test helper's own mapping is not a descriptor; the exception pipe is one.
    EXPECT_EQ(report->sum.load(), 1);
  }
}

using test_support::parent_of;

TEST(ProcessForkserver, ALostForkServerIsAnErrorNotAHang) {
  tandem::Process process(tandem::ProcessOptions{.start_method = tandem::StartMethod::forkserver}, [] { ::pause(); });
  process.start();
  const long server = parent_of(process.id());
  ASSERT_GT(server, 1);
  ASSERT_NE(server, static_cast<long>(::getpid())) << "the child's parent is its fork server";
  ::kill(static_cast<pid_t>(server), SIGKILL);
  const auto start = std::chrono::steady_clock::now();
  try {
    process.join();
    ADD_FAILURE() << "join returned";
  } catch (const tandem::Error& e) {
    EXPECT_NE(std::string(e.what()).find("exit status cannot be known"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  ::kill(static_cast<pid_t>(process.id()), SIGKILL);  // the orphan, now init's to reap
}

// Python's current_process(), parent_process() and active_children(), under each start method:
// the child knows its name and the process that asked for it (under forkserver not its OS parent,
// the fork server), and the parent lists the child while it runs.
struct Family {
  std::atomic<long> self_pid{0};
  std::atomic<long> parent_pid{0};
  std::atomic<int> has_parent{0};
  char self_name[64] = {};
  char parent_name[64] = {};
};

TEST_P(ProcessStartMethod, AChildKnowsItsNameAndItsParentAndTheParentListsIt) {
  EXPECT_EQ(tandem::current_process().name, "MainProcess");
  EXPECT_EQ(tandem::current_process().pid, static_cast<long>(::getpid()));
  EXPECT_FALSE(tandem::parent_process().has_value()) << "this program was not started by tandem";
  SharedBlock<Family> family;
  SharedBlock<Gate> release;
  tandem::ProcessOptions child_options{.agent = {.name = "encoder"}};
  child_options.start_method = GetParam();
  tandem::Process child(child_options, [](SharedHandle<Family> f, SharedHandle<Gate> r) {
    const tandem::ProcessInfo self = tandem::current_process();
    const std::optional<tandem::ProcessInfo> parent = tandem::parent_process();
    f->self_pid = self.pid;
    std::snprintf(f->self_name, sizeof f->self_name, "%s", self.name.c_str());
    if (parent) {
      f->parent_pid = parent->pid;
      std::snprintf(f->parent_name, sizeof f->parent_name, "%s", parent->name.c_str());
      f->has_parent = 1;
    }
    r->wait();
  }, family.get(), release.get());
  EXPECT_TRUE(tandem::active_children().empty());
  child.start();
  const auto children = tandem::active_children();
  ASSERT_EQ(children.size(), 1u);
  EXPECT_EQ(children[0].pid, child.pid());
  EXPECT_EQ(children[0].name, "encoder");
  release->open();
  child.join();
  EXPECT_EQ(child.exitcode(), 0);
  EXPECT_TRUE(tandem::active_children().empty()) << "a child that was joined is gone from the list";
  EXPECT_EQ(family->self_pid.load(), child.pid());
  EXPECT_STREQ(family->self_name, "encoder");
  ASSERT_EQ(family->has_parent.load(), 1);
  EXPECT_EQ(family->parent_pid.load(), static_cast<long>(::getpid()));
  EXPECT_STREQ(family->parent_name, "MainProcess");
}

TEST(ProcessFamily, APoolWorkerIsNamedAndKnowsItsPool) {
  for (const auto method : {tandem::StartMethod::fork, tandem::StartMethod::forkserver, tandem::StartMethod::spawn}) {
    tandem::ProcessPoolOptions options;
    options.workers = 1;
    options.start_method = method;
    tandem::ProcessPool pool(options);
    const auto [name, parent_pid, parent_name] = pool.submit([] {
      const auto parent = tandem::parent_process();
      return std::tuple{tandem::current_process().name, parent ? parent->pid : 0L,
                        parent ? parent->name : std::string()};
    }).get();
    EXPECT_EQ(name, "ProcessPoolWorker-1") << tandem::to_string(method);
    EXPECT_EQ(parent_pid, static_cast<long>(::getpid())) << tandem::to_string(method);
    EXPECT_EQ(parent_name, "MainProcess") << tandem::to_string(method);
    EXPECT_THROW(pool.submit([] { std::abort(); }).get(), tandem::WorkerLost);
    EXPECT_EQ(pool.submit([] { return tandem::current_process().name; }).get(), "ProcessPoolWorker-2")
        << "the replacement has the next number";
  }
}

INSTANTIATE_TEST_SUITE_P(EachStartMethod, ProcessStartMethod,
                         ::testing::Values(tandem::StartMethod::fork, tandem::StartMethod::forkserver,
                                           tandem::StartMethod::spawn),
                         [](const auto& info) { return std::string(tandem::to_string(info.param)); });

// ---- tandem's own fork safety ------------------------------------------------------------------

// Set by the test below to hold its next fork open: the fork's prepare handler then announces it.
std::atomic<bool> hold_next_fork{false};
std::atomic<bool> fork_in_progress{false};

// Run in a fresh copy of this program, so that the first use of a Queue and of a FairLock happens
// here: a thread makes it while the main thread forks a child that uses them too. When tandem
// registered its fork handlers at first use, that thread could sit inside a static initialization
// (waiting in pthread_atfork for glibc's fork-handler lock, which a fork holds from the end of its
// prepare handlers to the end of its parent handlers) as the child was made, and the child hung
// on it for good. The test holds the fork in that state: after its prepare handlers, glibc's fork
// takes the lock of the list of streams, which a flush of all streams holds while it waits for a
// stream that another thread has locked.
TEST(ForkSafety, FirstUseOfQueueAndFairLockDuringAFork) {
  if (std::getenv("TANDEM_FORK_RACE") == nullptr) GTEST_SKIP() << "run by AFirstUseRacingAForkDoesNotHangTheChild";
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer holds its own locks across a fork: the threads kept running here block in it";
#endif
  ASSERT_EQ(::pthread_atfork(
                [] {
                  if (!hold_next_fork.exchange(false)) return;
                  fork_in_progress = true;
                  std::this_thread::sleep_for(50ms);  // for the flusher to take the stream list
                },
                nullptr, nullptr),
            0);
  tandem::Queue<int> queue;
  tandem::FairLock fair;
  FILE* stream = std::tmpfile();
  ASSERT_NE(stream, nullptr);
  ::flockfile(stream);
  auto once_forking = [] {
    while (!fork_in_progress) std::this_thread::yield();
  };
  std::thread flusher([&] {
    once_forking();
    std::fflush(nullptr);  // holds the stream list while it waits for `stream`
  });
  std::thread first_user([&] {
    once_forking();
    std::this_thread::sleep_for(100ms);  // the fork now waits for the stream list
    queue.put(1);
    fair.lock();
    fair.unlock();
  });
  std::thread stream_holder([&] {
    once_forking();
    std::this_thread::sleep_for(300ms);
    ::funlockfile(stream);
  });
  tandem::Process child(
      tandem::ProcessOptions{.start_method = tandem::StartMethod::fork},
      [](tandem::Queue<int> q, tandem::FairLock f) {
        q.put(2);
        f.lock();
        f.unlock();
      },
      queue, fair);
  hold_next_fork = true;
  child.start();
  stream_holder.join();
  flusher.join();
  first_user.join();
  std::fclose(stream);
  const bool ended = child.join_for(10s);
  if (!ended) {
    child.kill();
    child.join();
  }
  ASSERT_TRUE(ended) << "the child hung on its first use of the queue or the lock";
  EXPECT_EQ(child.exitcode(), 0);
}

TEST(ForkSafety, AFirstUseRacingAForkDoesNotHangTheChild) {
  const std::string self = std::filesystem::read_symlink("/proc/self/exe");
  const std::string command = "TANDEM_FORK_RACE=1 " + self +
                              " --gtest_filter=ForkSafety.FirstUseOfQueueAndFairLockDuringAFork >/dev/null 2>&1";
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
}

}  // namespace
