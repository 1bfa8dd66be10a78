#include "tandem/error.hpp"

#include <cxxabi.h>
#include <string.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <utility>

namespace tandem {

RemoteError::RemoteError(std::string type_name, std::string message)
    : Error(type_name + ": " + message), type_name_(std::move(type_name)), message_(std::move(message)) {}

namespace {

std::string describe_loss(long pid, int signal, int exit_status) {
  std::string text = "worker process " + std::to_string(pid) + " died while running the task: ";
  if (signal != 0) return text + "killed by signal " + std::to_string(signal) + " (SIG" + (sigabbrev_np(signal) ? sigabbrev_np(signal) : "?") + ")";
  return text + "exited with status " + std::to_string(exit_status);
}

class Registry {
 public:
  Registry() {
    add<std::runtime_error>();
    add<std::logic_error>();
    add<std::invalid_argument>();
    add<std::domain_error>();
    add<std::length_error>();
    add<std::out_of_range>();
    add<std::range_error>();
    add<std::overflow_error>();
    add<std::underflow_error>();
    add<Error>();
    add<TimeoutError>();
    add<TaskTimeout>();
    add<PoolClosed>();
    add<BrokenPromise>();
    add<CancelledError>();
    add<MemoryLimitExceeded>();
    add<OwnerDied>();
    add<LockUnrecoverable>();
    add<QueueClosed>();
    add<BrokenBarrier>();
    factories_.emplace("std::bad_alloc", [](const std::string&) { return std::make_exception_ptr(std::bad_alloc()); });
  }

  void add(std::string type_name, detail::RemoteExceptionFactory factory) {
    std::lock_guard lock(mutex_);
    factories_.insert_or_assign(std::move(type_name), std::move(factory));
  }

  std::exception_ptr make(const std::string& type_name, const std::string& message) {
    {
      std::lock_guard lock(mutex_);
      if (auto it = factories_.find(type_name); it != factories_.end()) return it->second(message);
    }
    return std::make_exception_ptr(RemoteError(type_name, message));
  }

 private:
  template <class E>
  void add() {
    factories_.emplace(detail::demangle(typeid(E).name()),
                       [](const std::string& message) { return std::make_exception_ptr(E(message)); });
  }

  std::mutex mutex_;
  std::map<std::string, detail::RemoteExceptionFactory, std::less<>> factories_;
};

Registry& registry() {
  static Registry instance;
  return instance;
}

}  // namespace

WorkerLost::WorkerLost(long pid, int signal, int exit_status, const std::string& cause)
    : Error(describe_loss(pid, signal, exit_status) + (cause.empty() ? "" : ": " + cause)),
      pid_(pid),
      signal_(signal),
      exit_status_(exit_status) {}

std::exception_ptr remote_exception(const std::string& type_name, const std::string& message) {
  return registry().make(type_name, message);
}

namespace detail {

std::string demangle(const char* mangled_name) {
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> demangled(abi::__cxa_demangle(mangled_name, nullptr, nullptr, &status),
                                                        &std::free);
  return status == 0 && demangled ? demangled.get() : mangled_name;
}

std::pair<std::string, std::string> describe_current_exception() {
  const std::type_info* type = abi::__cxa_current_exception_type();
  std::string type_name = type ? demangle(type->name()) : "unknown", message;
  try {
    throw;
  } catch (const std::exception& e) {
    message = e.what();
  } catch (...) {
  }
  return {std::move(type_name), std::move(message)};
}

std::string shortened(const std::string& text, std::size_t limit) {
  if (text.size() <= limit) return text;
  return text.substr(0, limit) + " [cut: " + std::to_string(text.size()) + " bytes in all]";
}

[[noreturn]] void throw_malformed(const char* what) { throw Error(std::string("tandem: malformed message: ") + what); }

void register_remote_exception(std::string type_name, RemoteExceptionFactory factory) {
  registry().add(std::move(type_name), std::move(factory));
}

}  // namespace detail
}  // namespace tandem
