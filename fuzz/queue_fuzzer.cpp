// A Queue whose shared words, slot records and item bytes another process scribbled over
// (include/tandem/detail/byte_queue.hpp): every call still returns (try_* at once, get_for by its
// deadline), reads only inside the queue, and reports garbage as an error.
//
// Input: [tail: 8][head: 8][items: 8][closed: 1][slot records and item bytes ...].
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "tandem/detail/shared_state.hpp"
#include "tandem/error.hpp"
#include "tandem/queue.hpp"

namespace {

struct Scribbled {
  tandem::Queue<std::string> queue{tandem::QueueOptions{.maxsize = 50, .capacity_bytes = 2048}};
  tandem::SharedMemory memory{1};
  tandem::detail::QueueState* state = nullptr;
  std::byte* records = nullptr;  // then the owner marks, then the slots' bytes
  std::size_t bytes = 0;

  Scribbled() {
    tandem::detail::ByteWriter out;
    tandem::detail::Traveller<tandem::Queue<std::string>>::encode(out, queue);
    tandem::detail::ByteReader in(out.bytes());
    auto shared = tandem::detail::SharedState<tandem::detail::QueueState>::decode(in);
    memory = shared.memory();
    state = &*shared;
    const std::size_t offset = (sizeof(tandem::detail::Tagged<tandem::detail::QueueState>) + 63) / 64 * 64;
    records = memory.data() + offset;
    bytes = memory.size() - offset;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Scribbled target;
  if (size < 25) return 0;
  std::uint64_t words[3];
  std::memcpy(words, data, sizeof words);
  target.state->tail.store(words[0]);
  target.state->head.store(words[1]);
  target.state->items.store(words[2]);
  target.state->closed.store(data[24] & 1);
  std::memset(target.records, 0, target.bytes);
  std::memcpy(target.records, data + 25, std::min(size - 25, target.bytes));
  auto& queue = target.queue;
  const auto call = [](auto&& f) {
    try {
      f();
    } catch (const tandem::Error&) {
      // Garbage reported as garbage (or a closed queue): fine.
    }
  };
  call([&] { (void)queue.try_get(); });
  call([&] { (void)queue.try_put(std::string(data[24] % 200, 'x')); });
  call([&] { (void)queue.get_for(std::chrono::microseconds(200)); });
  call([&] { queue.put_for(std::string("item"), std::chrono::microseconds(200)); });
  call([&] { (void)queue.try_get(); });
  call([&] { (void)queue.try_get_many(data[24]); });
  call([&] { (void)queue.try_put_many(std::vector<std::string>(data[24] % 8, std::string(data[24] % 90, 'y'))); });
  call([&] { (void)queue.get_many_for(300, std::chrono::microseconds(200)); });
  call([&] { (void)queue.qsize(); });
  return 0;
}
