// Large messages between a ProcessPool and its workers. A request or response of more than
// large_message_bytes() is written into a memory file of its own, whose descriptor goes over the
// worker's channel socket just before a small frame takes the message's place in the ring; the
// receiver takes descriptors in frame order. (A result whose worker finds its channel broken, as a
// task may leave it, names its file's descriptor in its frame instead: the pool opens it through
// /proc, so no result depends on the channel.) Requests are encoded straight into their file, and
// a worker encodes every result into a file it hands over when the result is large: a large
// message is written once and read once, and its size is limited only by memory. Files are reused
// once the other side is done with them: a request's file when its response has arrived, a
// response's file when the pool has taken its frame off the ring.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "ipc/shared_mapping.hpp"
#include "tandem/detail/remote_task.hpp"

namespace tandem::detail {

constexpr std::size_t large_message_bytes(std::size_t ring_bytes) { return ring_bytes / 8; }

// A large request's frame in the ring; its file holds the request's `size` bytes.
inline constexpr std::int64_t kLargeRequest = INT64_MIN;
struct LargeRequestFrame {
  std::int64_t marker = kLargeRequest;  // where a small request has its entry offset
  std::uint64_t flags = 0;
  std::uint64_t size = 0;
};
// Every response starts with the sequence number of the request it answers (the worker's count
// of the requests it took), then its status: a pool delivers it only to that request.
struct ResponseHeader {
  std::uint64_t sequence = 0;
  std::uint64_t status = 0;  // a ResponseStatus
};
// A large response's frame in the ring; its file (sent over the channel, or when `fd` is not -1,
// open in the worker as that descriptor) holds the whole response, `size` bytes (header included,
// the same sequence again).
struct LargeResponseFrame {
  ResponseHeader header;
  std::uint64_t size = 0;
  std::int64_t fd = -1;
};

// The one byte of each channel message: the descriptor it carries is the file of the next large
// frame (a request's, from the pool; a result's, from the worker).
inline constexpr char kMessageFile = 'M';

// Files kept for reuse: a fresh one costs a page allocation and zeroing per 4 KiB, a spare one
// nothing. Bounded, so that a burst of large messages does not pin its memory for good.
class SpareFiles {
 public:
  static constexpr std::size_t kMaxFiles = 4;
  static constexpr std::size_t kMaxFileBytes = std::size_t{64} << 20;

  // The smallest spare of at least `bytes`, or an empty mapping.
  SharedMapping take(std::size_t bytes) {
    auto best = spares_.end();
    for (auto it = spares_.begin(); it != spares_.end(); ++it) {
      if (it->size() >= bytes && (best == spares_.end() || it->size() < best->size())) best = it;
    }
    if (best == spares_.end()) return {};
    SharedMapping file = std::move(*best);
    spares_.erase(best);
    return file;
  }
  // A spare of at least `bytes`, or a new file.
  SharedMapping take_or_create(std::size_t bytes) {
    SharedMapping file = take(bytes);
    return file ? std::move(file) : SharedMapping(bytes, SharedMapping::Populate::now);
  }
  void give(SharedMapping file) {
    if (!file || file.size() > kMaxFileBytes) return;
    spares_.push_back(std::move(file));
    if (spares_.size() > kMaxFiles) {
      spares_.erase(std::min_element(spares_.begin(), spares_.end(),
                                     [](const auto& a, const auto& b) { return a.size() < b.size(); }));
    }
  }

 private:
  std::vector<SharedMapping> spares_;
};

}  // namespace tandem::detail
