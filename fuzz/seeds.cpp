// Writes the fuzzers' seed corpus (fuzz/corpus/<fuzzer>/seed-*) from tandem's own encoders, so
// that the seeds stay well-formed as the formats change: scripts/fuzz.sh runs it before fuzzing,
// and the seeds it writes are kept in the repository.
//
//   tandem_fuzz_seeds <corpus directory>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include "record.hpp"
#include "ipc/byte_ring.hpp"
#include "pool/large_message.hpp"
#include "tandem/detail/codec.hpp"

namespace {

using tandem::detail::ByteWriter;
namespace fs = std::filesystem;

fs::path corpus;

void write_seed(const std::string& fuzzer, const std::string& name, const std::vector<std::uint8_t>& bytes) {
  fs::create_directories(corpus / fuzzer);
  std::ofstream(corpus / fuzzer / ("seed-" + name), std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

std::vector<std::uint8_t> bytes_of(const ByteWriter& out) {
  const auto* at = reinterpret_cast<const std::uint8_t*>(out.data());
  return {at, at + out.size()};
}

template <class T>
std::vector<std::uint8_t> prefixed(std::uint8_t selector, const T& value) {
  ByteWriter out;
  out.write_raw(selector);
  tandem::detail::encode(out, value);
  return bytes_of(out);
}

using fuzz_support::Record;

void ring_seeds() {
  constexpr std::size_t kCapacity = 4096;
  for (int messages : {1, 5, 40}) {
    tandem::detail::RingControl control;
    std::vector<std::byte> ring(kCapacity);
    tandem::detail::ByteRing producer(&control, ring.data(), kCapacity);
    tandem::detail::ByteRing consumer(&control, ring.data(), kCapacity);
    for (int i = 0; i < messages; ++i) {
      // Taken off as it goes, so that the ring wraps around its end.
      const std::string text(static_cast<std::size_t>(17 * i % 300), static_cast<char>('a' + i % 26));
      producer.push(text.data(), text.size());
      if (i + 3 < messages) {
        std::span<const std::byte> message;
        consumer.peek(message);
        consumer.pop();
      }
    }
    std::vector<std::uint8_t> seed(16);
    const std::uint64_t head = control.head.load(), tail = control.tail.load();
    std::memcpy(seed.data(), &head, 8);
    std::memcpy(seed.data() + 8, &tail, 8);
    const auto* at = reinterpret_cast<const std::uint8_t*>(ring.data());
    seed.insert(seed.end(), at, at + kCapacity);
    write_seed("ring", std::to_string(messages), seed);
  }
}

void response_seeds() {
  using tandem::detail::ResponseHeader;
  using tandem::detail::ResponseStatus;
  const auto response = [](std::uint8_t as, ResponseStatus status, auto&& payload) {
    ByteWriter out;
    out.write_raw(std::uint64_t{7});  // the sequence due
    out.write_raw(as);
    out.write_raw(ResponseHeader{7, static_cast<std::uint64_t>(status)});
    payload(out);
    return bytes_of(out);
  };
  write_seed("response", "int", response(0, ResponseStatus::value, [](ByteWriter& o) { tandem::detail::encode(o, 42); }));
  write_seed("response", "strings", response(1, ResponseStatus::value, [](ByteWriter& o) {
               tandem::detail::encode(o, std::vector<std::string>{"one", "two"});
             }));
  write_seed("response", "map", response(2, ResponseStatus::value, [](ByteWriter& o) {
               tandem::detail::encode(o, std::map<std::string, std::vector<int>>{{"k", {1, 2}}});
             }));
  write_seed("response", "record", response(3, ResponseStatus::value, [](ByteWriter& o) {
               tandem::detail::encode(o, Record{"r", {1.5}});
             }));
  write_seed("response", "exception", response(0, ResponseStatus::exception, [](ByteWriter& o) {
               tandem::detail::encode_text(o, "std::runtime_error");
               tandem::detail::encode_text(o, "bad input");
             }));
  write_seed("response", "skipped", response(0, ResponseStatus::skipped, [](ByteWriter&) {}));
  // A large response whose "file" is the frame itself, cut where the frame says.
  write_seed("response", "large", response(0, ResponseStatus::large, [](ByteWriter& o) {
               o.write_raw(std::uint64_t{56});
               o.write_raw(std::int64_t{-1});
               o.write_raw(ResponseHeader{7, static_cast<std::uint64_t>(ResponseStatus::value)});
             }));
}

void request_seeds() {
  ByteWriter task;
  task.write_raw(std::uint8_t{0});
  task.write_raw(std::uint8_t{0});  // the stateless callable's byte
  tandem::detail::encode(task, std::string("argument"));
  tandem::detail::encode(task, std::vector<int>{1, 2, 3});
  tandem::detail::encode(task, Record{"r", {2.5, 3.5}});
  tandem::detail::encode(task, std::optional<double>(1.0));
  write_seed("request", "task", bytes_of(task));
  ByteWriter ints;
  ints.write_raw(std::uint8_t{1});
  ints.write_raw(std::uint8_t{0});
  tandem::detail::encode_span(ints, std::span<const int>(std::vector<int>{4, 5, 6}));
  write_seed("request", "ints", bytes_of(ints));
  ByteWriter strings;
  strings.write_raw(std::uint8_t{2});
  strings.write_raw(std::uint8_t{0});
  tandem::detail::encode(strings, std::vector<std::string>{"a", "bc"});
  write_seed("request", "strings", bytes_of(strings));
  ByteWriter tuples;
  tuples.write_raw(std::uint8_t{3});
  tuples.write_raw(std::uint8_t{0});
  tandem::detail::encode(tuples, std::vector<std::tuple<int, std::string>>{{1, "x"}});
  write_seed("request", "tuples", bytes_of(tuples));
}

void queue_seeds() {
  // [tail][head][items][closed] then slot records: three items put, one taken.
  std::vector<std::uint8_t> seed(25);
  const std::uint64_t tail = 3, head = 1, items = 2;
  std::memcpy(seed.data(), &tail, 8);
  std::memcpy(seed.data() + 8, &head, 8);
  std::memcpy(seed.data() + 16, &items, 8);
  for (std::uint32_t slot = 0; slot < 32; ++slot) {
    const std::uint32_t sequence = slot < 1 ? 32 : slot < 3 ? slot + 1 : slot, bytes = 5;
    const auto* s = reinterpret_cast<const std::uint8_t*>(&sequence);
    const auto* b = reinterpret_cast<const std::uint8_t*>(&bytes);
    seed.insert(seed.end(), s, s + 4);
    seed.insert(seed.end(), b, b + 4);
    for (int i = 0; i < 8; ++i) seed.push_back(static_cast<std::uint8_t>("\5\0\0\0\0\0\0\0hello"[i]));
  }
  write_seed("queue", "three-items", seed);
}

void codec_seeds() {
  write_seed("codec", "string", prefixed(0, std::string("text")));
  write_seed("codec", "doubles", prefixed(1, std::vector<double>{1.0, 2.0}));
  write_seed("codec", "strings", prefixed(2, std::vector<std::string>{"a", "b"}));
  write_seed("codec", "map", prefixed(3, std::map<std::string, std::vector<int>>{{"k", {1}}}));
  write_seed("codec", "variant", prefixed(4, std::variant<int, std::string, std::vector<char>>(std::string("v"))));
  write_seed("codec", "tuple", prefixed(5, std::tuple<int, std::string, std::optional<double>>{1, "t", 2.0}));
  write_seed("codec", "nested", prefixed(7, std::vector<std::vector<std::vector<int>>>{{{1, 2}}, {}}));
}

void handover_seeds() {
  const std::string secret(32, 'a');
  for (const auto& [name, value] : {std::pair<std::string, std::string>{"worker", "1:1:" + secret + ":3,4,5,6,7"},
                                    {"process", "1:2:" + secret + ":3,4,5"},
                                    {"fork-server", "1:3:" + secret + ":3,4"}}) {
    std::vector<std::uint8_t> seed{0};
    seed.insert(seed.end(), value.begin(), value.end());
    write_seed("handover", name, seed);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  corpus = argv[1];
  ring_seeds();
  response_seeds();
  request_seeds();
  queue_seeds();
  codec_seeds();
  handover_seeds();
  return 0;
}
