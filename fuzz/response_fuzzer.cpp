// What a pool reads of a worker's response (src/pool/response.hpp, then the value's decoder): any
// bytes a broken worker could leave in its ring or its large response's file.
//
// Input: [the sequence due: 8][what to decode the value as: 1][frame ...]; a large response's
// file is the frame's bytes again, cut where the frame says.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "record.hpp"
#include "pool/response.hpp"
#include "tandem/error.hpp"

namespace {

using fuzz_support::Record;

void decode_value(tandem::detail::ByteReader& in, std::uint8_t as) {
  switch (as % 5) {
    case 0:
      (void)tandem::detail::decode<int>(in);
      break;
    case 1:
      (void)tandem::detail::decode<std::vector<std::string>>(in);
      break;
    case 2:
      (void)tandem::detail::decode<std::map<std::string, std::vector<int>>>(in);
      break;
    case 3:
      (void)tandem::detail::decode<Record>(in);
      break;
    default:
      (void)tandem::detail::decode<std::vector<std::uint64_t>>(in);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tandem::detail;
  if (size < 9) return 0;
  std::uint64_t due = 0;
  std::memcpy(&due, data, 8);
  const std::uint8_t as = data[8];
  const std::span<const std::byte> frame(reinterpret_cast<const std::byte*>(data + 9), size - 9);
  ResponseHeader header;
  if (check_response_header(frame, due, header) != nullptr) return 0;
  try {
    ByteReader in(frame);
    in.take(sizeof header);
    auto status = static_cast<ResponseStatus>(header.status);
    ByteReader file(frame);
    if (status == ResponseStatus::large) {
      const std::uint64_t bytes = large_response_file(in).bytes;
      if (bytes > frame.size()) return 0;  // the pool's file check refuses it (SharedMapping::attach)
      file = ByteReader(frame.first(static_cast<std::size_t>(bytes)));
      status = open_large_response(file, header);
      in = file;
    }
    if (status == ResponseStatus::value) {
      decode_value(in, as);
    } else if (status == ResponseStatus::exception) {
      const auto [type, text] = decode_exception(in);
      const std::exception_ptr error = tandem::remote_exception(type, text);
      (void)error;
    }
  } catch (const tandem::Error&) {
    // Malformed: the pool kills the worker and fails the task with a typed error.
  }
  return 0;
}
