// The hand-over variable a spawned copy of a tandem program reads at init (src/os/handover.hpp):
// any value an environment could hold is checked and, unless authentic, refused.
//
// Input: [secure execution: 1][the variable's value ...].
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "os/handover.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string value(reinterpret_cast<const char*>(data + 1), size - 1);
  tandem::detail::Handover handover;
  // The fuzzer's process has no hand-over to give: nothing may ever be accepted.
  if (!tandem::detail::check_handover(value.c_str(), (data[0] & 1) != 0, handover)) std::abort();
  return 0;
}
