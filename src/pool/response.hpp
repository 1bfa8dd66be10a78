// How a pool reads a worker's response: every word checked before it is used, since the worker's
// task may have written anything there. collect() in process_pool.cpp runs these on the ring's
// frames and large responses' files; fuzz/response_fuzzer.cpp runs them on any bytes.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>

#include "pool/large_message.hpp"
#include "tandem/detail/codec.hpp"

namespace tandem::detail {

// The header of a response frame, which must answer request `due`: the protocol violation, or
// nullptr (then `header` holds it).
inline const char* check_response_header(std::span<const std::byte> frame, std::uint64_t due,
                                         ResponseHeader& header) noexcept {
  if (frame.size() < sizeof header) return "a response too short to say what it answers";
  header = ByteReader::load_raw<ResponseHeader>(frame.data());
  if (header.sequence != due) return "a response to another request than the one due";
  return nullptr;
}

// After a large response's header in its frame: where its file is, and how many of its bytes
// hold the response.
struct LargeResponseFile {
  std::uint64_t bytes;
  int fd;  // in the worker, when it could not send the file over its channel; else -1
};
inline LargeResponseFile large_response_file(ByteReader& frame) {
  const auto bytes = frame.read_raw<std::uint64_t>();
  const auto fd = frame.read_raw<std::int64_t>();
  if (bytes < sizeof(ResponseHeader)) throw_malformed("a large response too short to say what it answers");
  if (fd < -1 || fd > INT32_MAX) throw_malformed("a large response whose file is no descriptor");
  return {bytes, static_cast<int>(fd)};
}

// The response in a large response's file (`file`: its bytes as the frame counted them), whose
// header must repeat the frame's: its status; `file` is left at its payload.
inline ResponseStatus open_large_response(ByteReader& file, const ResponseHeader& frame) {
  const auto inner = file.read_raw<ResponseHeader>();
  const auto status = static_cast<ResponseStatus>(inner.status);
  if (inner.sequence != frame.sequence || status == ResponseStatus::large) {
    throw_malformed("a large response whose file answers another request");
  }
  return status;
}

// An exception's type name and message, as a worker reported it.
inline std::pair<std::string, std::string> decode_exception(ByteReader& in) {
  std::string type = decode_text(in);
  std::string text = decode_text(in);
  return {std::move(type), std::move(text)};
}

}  // namespace tandem::detail
