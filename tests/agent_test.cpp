// One suite, two agents: every typed test runs its body on tandem::Thread and tandem::Process.
// Effects travel through a pipe, since a process cannot write into this test's memory.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include "tandem/error.hpp"
#include "tandem/process.hpp"
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

template <>
struct AgentTraits<tandem::Thread> {
  static constexpr const char* kind = "Thread";
  // A thread keeps the exception object itself.
  static void expect_exception(std::exception_ptr error, const std::string&, const std::string& message) {
    ASSERT_NE(error, nullptr);
    try {
      std::rethrow_exception(error);
    } catch (const std::invalid_argument& e) {
      EXPECT_EQ(e.what(), message);
    }
  }
};

template <>
struct AgentTraits<tandem::Process> {
  static constexpr const char* kind = "Process";
  // A process sends back the exception's type name and message.
  static void expect_exception(std::exception_ptr error, const std::string& type, const std::string& message) {
    ASSERT_NE(error, nullptr);
    try {
      std::rethrow_exception(error);
    } catch (const tandem::RemoteError& e) {
      EXPECT_EQ(e.type_name(), type);
      EXPECT_EQ(e.message(), message);
    }
  }
};

template <class Agent>
class AgentTest : public ::testing::Test {};
using Agents = ::testing::Types<tandem::Thread, tandem::Process>;
TYPED_TEST_SUITE(AgentTest, Agents);

TYPED_TEST(AgentTest, RunsTheCallableWithItsArguments) {
  Channel channel;
  TypeParam agent([&channel](int a, const std::string& b) { channel.send(std::to_string(a) + b); }, 42, std::string("!"));
  EXPECT_FALSE(agent.is_alive());
  agent.start();
  agent.join();
  EXPECT_FALSE(agent.is_alive());
  EXPECT_EQ(channel.received(), "42!");
  EXPECT_EQ(agent.exception(), nullptr);
}

TYPED_TEST(AgentTest, TakesMoveOnlyCallablesAndArguments) {
  Channel channel;
  auto owned = std::make_unique<int>(3);
  TypeParam agent([&channel, p = std::move(owned)](std::unique_ptr<int> q) { channel.send(std::to_string(*p + *q)); },
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
  Channel channel;
  TypeParam agent([&channel] {
    // A thread's id is its tid; a process's is its pid, which is also its main thread's tid.
    channel.send(std::to_string(::gettid()));
  });
  agent.start();
  const long id = agent.id();
  agent.join();
  EXPECT_EQ(channel.received(), std::to_string(id));
}

TYPED_TEST(AgentTest, AnEscapedExceptionIsKeptAfterJoin) {
  TypeParam agent([] { throw std::invalid_argument("bad input"); });
  agent.start();
  agent.join();
  AgentTraits<TypeParam>::expect_exception(agent.exception(), "std::invalid_argument", "bad input");
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

TYPED_TEST(AgentTest, JoiningItselfIsRefused) {
  Channel channel;
  std::optional<TypeParam> agent;
  agent.emplace([&] {
    try {
      agent->join();
      channel.send("joined itself");
    } catch (const tandem::Error&) {
      channel.send("refused");
    }
  });
  agent->start();
  agent->join();
  EXPECT_EQ(channel.received(), "refused");
}

TYPED_TEST(AgentTest, DestructionWithoutJoinWaitsForANonDaemon) {
  Channel channel;
  {
    TypeParam agent([&channel] {
      std::this_thread::sleep_for(30ms);
      channel.send("finished");
    });
    agent.start();
  }
  EXPECT_EQ(channel.received(), "finished");
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
  tandem::Process process([&channel] {
    FILE* out = ::fdopen(::dup(channel.write_fd()), "w");
    std::fputs("buffered", out);  // no fflush, no newline: still in stdio's buffer at return
  });
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

TEST(Process, TheChildWorksOnACopyOfMemory) {
  int value = 1;
  tandem::Process process([&value] { value = 2; });
  process.start();
  process.join();
  EXPECT_EQ(value, 1) << "a process cannot change the parent's memory: share through a pipe or queue";
}

}  // namespace
