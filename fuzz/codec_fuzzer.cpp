// Values decoded from bytes another process wrote (include/tandem/detail/codec.hpp): raw types,
// contiguous ranges, cereal types read through CheckedInputArchive, and the handles of tandem's
// shared objects. Malformed input is a tandem::Error; never a crash, a hang, or an allocation the
// input cannot fill.
//
// Input: [which type: 1][its encoding ...].
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <tuple>
#include <unordered_map>
#include <variant>
#include <vector>

#include "tandem/barrier.hpp"
#include "tandem/condition.hpp"
#include "tandem/detail/codec.hpp"
#include "tandem/error.hpp"
#include "tandem/lock.hpp"
#include "tandem/pipe.hpp"
#include "tandem/queue.hpp"
#include "tandem/shared_memory.hpp"

namespace {

struct Record {
  std::string name;
  std::vector<std::optional<int>> values;
  std::map<std::string, std::set<std::string>> tags;
  template <class Archive>
  void serialize(Archive& archive) {
    archive(name, values, tags);
  }
};

template <class T>
void decode_all(tandem::detail::ByteReader& in) {
  while (in.left() > 0) (void)tandem::detail::decode<T>(in);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tandem::detail;
  if (size < 1) return 0;
  ByteReader in(std::span(reinterpret_cast<const std::byte*>(data + 1), size - 1));
  try {
    switch (data[0] % 15) {
      case 0: decode_all<std::string>(in); break;
      case 1: decode_all<std::vector<double>>(in); break;
      case 2: decode_all<std::vector<std::string>>(in); break;
      case 3: decode_all<std::map<std::string, std::vector<int>>>(in); break;
      case 4: decode_all<std::variant<int, std::string, std::vector<char>>>(in); break;
      case 5: decode_all<std::tuple<int, std::string, std::optional<double>>>(in); break;
      case 6: decode_all<std::unordered_map<int, std::string>>(in); break;
      case 7: decode_all<std::vector<std::vector<std::vector<int>>>>(in); break;
      case 8: decode_all<Record>(in); break;
      case 9: (void)decode<tandem::SharedMemory>(in); break;
      case 10: (void)decode<tandem::Lock>(in); break;
      case 11: (void)decode<tandem::Condition>(in); break;
      case 12: (void)decode<tandem::Barrier>(in); break;
      case 13: (void)decode<tandem::Connection<int>>(in); break;
      default: (void)decode<tandem::Queue<int>>(in);
    }
  } catch (const tandem::Error&) {
    // Malformed: the task (or the get) fails with a typed error.
  }
  return 0;
}
