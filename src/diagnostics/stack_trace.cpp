#include "diagnostics/stack_trace.hpp"

#include <backtrace.h>
#include <cxxabi.h>
#include <pthread.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>
#include <mutex>
#include <string_view>
#include <utility>

namespace tandem::detail {
namespace {

void ignore_error(void*, const char*, int) {}

// libbacktrace keeps what it read of the binary's debug information in its state, for good. It
// is used under symbolizer_mutex (it runs only when an order is first seen): its own threaded
// mode synchronizes with atomics that ThreadSanitizer, which did not compile it, cannot see.
std::mutex symbolizer_mutex;

backtrace_state* symbolizer() {
  static backtrace_state* const state = backtrace_create_state(nullptr, 0, ignore_error, nullptr);
  return state;
}

std::string demangled(const char* name) {
  int status = 0;
  const std::unique_ptr<char, decltype(&std::free)> plain(abi::__cxa_demangle(name, nullptr, nullptr, &status),
                                                          &std::free);
  return status == 0 && plain ? std::string(plain.get()) : std::string(name);
}

struct Collector {
  const char* indent;
  int left;
  int shown = 0;
  bool past_tandem = false;  // the first frame outside tandem's own code has been seen
  std::string text;
};

// Spelled as users write them: the frames of lock calls name tandem's lock types in full.
void shorten_type_names(std::string& name) {
  static constexpr std::pair<std::string_view, std::string_view> kSpellings[] = {
      {"tandem::BasicLock<(tandem::detail::RobustMutex::Kind)0>", "tandem::Lock"},
      {"tandem::BasicLock<(tandem::detail::RobustMutex::Kind)1>", "tandem::RLock"},
  };
  for (const auto& [full, usual] : kSpellings) {
    for (std::size_t at; (at = name.find(full)) != std::string::npos;) name.replace(at, full.size(), usual);
  }
}

// Frames that are not the program's own code: tandem's and the standard library's (the lock
// call itself, std::invoke and its kin), thread start-up, addresses nothing names.
bool is_plumbing(std::string_view name, const char* file) {
  if (file != nullptr) {
    const std::string_view path(file);
    if (path.find("include/tandem/") != std::string_view::npos || path.find("/include/c++/") != std::string_view::npos) {
      return true;
    }
  }
  return name.starts_with("0x") || name.starts_with("std::") || name.starts_with("__") ||
         name.starts_with("tandem::detail::") || name == "start_thread" || name.starts_with("clone") ||
         name == "_start";
}

void on_symbol(void* data, std::uintptr_t, const char* symbol, std::uintptr_t, std::uintptr_t) {
  auto& function = *static_cast<std::string*>(data);
  if (symbol != nullptr) function = demangled(symbol);
}

int on_frame(void* data, std::uintptr_t pc, const char* file, int line, const char* function) {
  auto& collector = *static_cast<Collector*>(data);
  std::string name;
  if (function != nullptr) {
    name = demangled(function);
  } else {
    backtrace_syminfo(symbolizer(), pc, on_symbol, ignore_error, &name);
  }
  if (name.empty() || is_plumbing(name, file)) return 0;
  // The innermost frames are tandem's (the diagnostics, the lock); the report starts with the
  // caller's. Later tandem frames (a Thread's or a Process's start) say how the code was reached.
  if (!collector.past_tandem) {
    const bool in_tandem_sources =
        file != nullptr && std::string_view(file).starts_with(TANDEM_SOURCE_DIR "/src/");
    if (in_tandem_sources || name.starts_with("tandem::")) return 0;
    collector.past_tandem = true;
  }
  shorten_type_names(name);
  // Function names of templates run long: the site is what a reader needs.
  if (name.size() > 200) name = name.substr(0, 197) + "...";
  collector.text += collector.indent;
  collector.text += '#';
  collector.text += std::to_string(collector.shown++);
  collector.text += ' ';
  collector.text += name;
  if (file != nullptr) {
    collector.text += " at ";
    collector.text += file;
    collector.text += ':';
    collector.text += std::to_string(line);
  }
  collector.text += '\n';
  if (std::string_view(name) == "main") return 1;
  return --collector.left > 0 ? 0 : 1;
}

// A child forked while another thread symbolized would find the mutex locked for good.
void reset_in_forked_child() { new (&symbolizer_mutex) std::mutex(); }
// Registered at start-up, not at first use: a first use that raced a fork in another thread would
// leave the child a half-done static initialization, and the child would hang in it.
[[maybe_unused]] const bool resets_in_children = ::pthread_atfork(nullptr, nullptr, reset_in_forked_child) == 0;

}  // namespace

std::string stack_trace(int skip, int max_frames, const char* indent) {
  const std::lock_guard serialized(symbolizer_mutex);
  backtrace_state* state = symbolizer();
  if (state == nullptr) return std::string(indent) + "(no stack: the binary could not be read)\n";
  Collector collector{indent, max_frames, 0, false, {}};
  backtrace_full(state, skip + 1, on_frame, ignore_error, &collector);
  if (collector.text.empty()) collector.text = std::string(indent) + "(no stack)\n";
  return collector.text;
}

}  // namespace tandem::detail
