// Workloads for the tour and the benchmarks: prime counting (pure CPU) and page fetching from a
// loopback HTTP server with a fixed per-page latency (pure waiting).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace tandem::workloads {

// Number of primes in [begin, end) by trial division: CPU-bound, no memory traffic.
std::uint64_t count_primes(std::uint64_t begin, std::uint64_t end);

// Splits [0, limit) into `chunks` contiguous ranges of near-equal length.
std::vector<std::pair<std::uint64_t, std::uint64_t>> split_range(std::uint64_t limit, std::size_t chunks);

// An HTTP server on 127.0.0.1 (ephemeral port) answering GET /page/<i> with a small page after
// sleeping `latency`, like a remote site would. Enough server threads for `max_concurrency`
// requests in flight. Ready when constructed; stopped by the destructor.
class LatencyServer {
 public:
  explicit LatencyServer(std::chrono::milliseconds latency, std::size_t max_concurrency = 128);
  ~LatencyServer();
  LatencyServer(const LatencyServer&) = delete;
  LatencyServer& operator=(const LatencyServer&) = delete;

  int port() const noexcept;
  std::chrono::milliseconds latency() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// GETs /page/<index> from 127.0.0.1:<port> over this thread's keep-alive connection to that
// port (opened on first use); returns the body's size.
// Throws tandem::Error on a connection failure or a status other than 200.
std::size_t fetch_page(int port, int index);

}  // namespace tandem::workloads
