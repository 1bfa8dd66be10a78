#include "stack_trace.hpp"

#include <backtrace.h>
#include <cxxabi.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string_view>

namespace tandem::detail {
namespace {

void ignore_error(void*, const char*, int) {}

// libbacktrace keeps what it read of the binary's debug information in its state, for good.
backtrace_state* symbolizer() {
  static backtrace_state* const state = backtrace_create_state(nullptr, 1, ignore_error, nullptr);
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
  std::string text;
};

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
  if (name.empty()) {
    char address[32];
    std::snprintf(address, sizeof address, "0x%zx", static_cast<std::size_t>(pc));
    name = address;
  }
  // Function names of templates run long: the site is what a reader needs.
  if (name.size() > 160) name = name.substr(0, 157) + "...";
  collector.text += collector.indent;
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

}  // namespace

std::string stack_trace(int skip, int max_frames, const char* indent) {
  backtrace_state* state = symbolizer();
  if (state == nullptr) return std::string(indent) + "(no stack: the binary could not be read)\n";
  Collector collector{indent, max_frames, {}};
  backtrace_full(state, skip + 1, on_frame, ignore_error, &collector);
  if (collector.text.empty()) collector.text = std::string(indent) + "(no stack)\n";
  return collector.text;
}

}  // namespace tandem::detail
