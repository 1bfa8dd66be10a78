// Code addresses as they travel between processes: offsets from one function of the program,
// valid in a copy of the program mapped at another address (a spawned child, under address-space
// randomization). Every offset that arrives from another process becomes callable through
// function_at, and only there.
#pragma once

#include <cstdint>
#include <type_traits>

namespace tandem::detail {

// Code addresses travel as offsets from this function, so they stay valid in a process whose
// program is mapped elsewhere. Inline, so that it lives in the same module as the task code that
// instantiates the entries.
inline void code_anchor() noexcept {}

inline std::int64_t code_offset(const void* code) noexcept {
  return reinterpret_cast<std::intptr_t>(code) - reinterpret_cast<std::intptr_t>(&code_anchor);
}
inline const void* code_at(std::int64_t offset) noexcept {
  return reinterpret_cast<const void*>(reinterpret_cast<std::intptr_t>(&code_anchor) + offset);
}
// The function an offset from another process names: every code address that arrives from
// another process becomes callable here, and only here.
template <class FunctionPointer>
FunctionPointer function_at(std::int64_t offset) noexcept {
  static_assert(std::is_pointer_v<FunctionPointer> && std::is_function_v<std::remove_pointer_t<FunctionPointer>>);
  return reinterpret_cast<FunctionPointer>(const_cast<void*>(code_at(offset)));
}

}  // namespace tandem::detail
