// What a worker decodes of a request: the arguments of a submitted task and the items of a map
// chunk (remote_task.hpp's entries), from any bytes.
//
// Input: [which entry: 1][the entry's bytes ...].
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "record.hpp"
#include "tandem/detail/remote_task.hpp"
#include "tandem/error.hpp"

namespace {

using fuzz_support::Record;

constexpr auto kTask = [](const std::string& s, const std::vector<int>& v, const Record& r, std::optional<double> d) {
  return s.size() + v.size() + r.values.size() + (d ? 1u : 0u);
};
constexpr auto kSquare = [](int x) { return static_cast<long long>(x) * x; };
constexpr auto kLength = [](const std::string& s) { return s.size(); };
constexpr auto kPair = [](const std::tuple<int, std::string>& t) { return std::get<1>(t).size() + std::get<0>(t); };

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tandem::detail;
  if (size < 1) return 0;
  ByteReader in(std::span(reinterpret_cast<const std::byte*>(data + 1), size - 1));
  ByteWriter out;
  try {
    switch (data[0] % 4) {
      case 0:
        submit_entry<std::decay_t<decltype(kTask)>, std::string, std::vector<int>, Record, std::optional<double>>(in, out);
        break;
      case 1:
        map_entry<std::decay_t<decltype(kSquare)>, int>(in, out);
        break;
      case 2:
        map_entry<std::decay_t<decltype(kLength)>, std::string>(in, out);
        break;
      default:
        map_entry<std::decay_t<decltype(kPair)>, std::tuple<int, std::string>>(in, out);
    }
  } catch (const tandem::Error&) {
    // Malformed: the task fails with a typed error.
  }
  return 0;
}
