// Test helper: one test body, every kind of agent. A parameterized suite runs its body with each
// AgentKind; start_agent starts the callable (a function or captureless lambda, so that it can
// travel) on a thread or on a process of the given start method.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <exception>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "tandem/process.hpp"
#include "tandem/thread.hpp"

// Waits (up to `limit`) until thread `tid` of process `pid` sleeps in the kernel in a futex wait:
// proof that a blocking call it made has blocked, where a sleep in the test would only hope so.
// Where the kernel hides wchan, sleeping at all is taken as enough.
inline bool wait_until_asleep_in_futex(long pid, long tid, std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  const std::string task = "/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid);
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    std::string stat, wchan;
    std::getline(std::ifstream(task + "/stat"), stat);
    std::getline(std::ifstream(task + "/wchan"), wchan);
    const auto name_end = stat.rfind(')');
    const bool sleeping = name_end != std::string::npos && stat.compare(name_end + 1, 3, " S ") == 0;
    if (sleeping && (wchan.find("futex") != std::string::npos || wchan == "0")) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

enum class AgentKind { thread, fork, forkserver, spawn };

inline std::string agent_kind_name(const ::testing::TestParamInfo<AgentKind>& info) {
  switch (info.param) {
    case AgentKind::thread: return "Thread";
    case AgentKind::fork: return "ProcessFork";
    case AgentKind::forkserver: return "ProcessForkserver";
    case AgentKind::spawn: return "ProcessSpawn";
  }
  return "Unknown";
}

inline constexpr AgentKind kAllAgentKinds[] = {AgentKind::thread, AgentKind::fork, AgentKind::forkserver,
                                               AgentKind::spawn};

// A started agent; join() waits and rethrows what escaped the callable.
class TestAgent {
 public:
  template <class F, class... Args>
  TestAgent(AgentKind kind, F f, Args... args) {
    if (kind == AgentKind::thread) {
      thread_.emplace(f, args...);
      thread_->start();
      return;
    }
    const auto method = kind == AgentKind::fork         ? tandem::StartMethod::fork
                        : kind == AgentKind::forkserver ? tandem::StartMethod::forkserver
                                                        : tandem::StartMethod::spawn;
    process_.emplace(tandem::ProcessOptions{.start_method = method}, f, args...);
    process_->start();
  }
  void join() {
    std::exception_ptr error;
    if (thread_) {
      thread_->join();
      error = thread_->exception();
    } else {
      process_->join();
      error = process_->exception();
    }
    if (error) std::rethrow_exception(error);
  }
  // SIGKILL (processes only).
  void kill() {
    if (process_) process_->kill();
  }
  // The agent's OS ids: its process, and the thread that runs the callable (a process runs it
  // on its main thread, whose id is the pid).
  long pid() const { return process_ ? process_->pid() : static_cast<long>(::getpid()); }
  long tid() const { return process_ ? process_->pid() : thread_->id(); }
  // Until the agent's thread sleeps in a futex wait (see wait_until_asleep_in_futex).
  bool wait_until_asleep() const { return wait_until_asleep_in_futex(pid(), tid()); }
  // The process's exit code after join (0 for a thread).
  int exitcode() const { return process_ ? process_->exitcode().value_or(-999) : 0; }

 private:
  std::optional<tandem::Thread> thread_;
  std::optional<tandem::Process> process_;
};
