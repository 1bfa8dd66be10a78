#include "workloads/workloads.hpp"

#include <httplib.h>
#include <sys/socket.h>

#include <map>
#include <string>
#include <thread>

#include "tandem/error.hpp"

namespace tandem::workloads {

std::uint64_t count_primes(std::uint64_t begin, std::uint64_t end) {
  std::uint64_t count = 0;
  for (std::uint64_t n = std::max<std::uint64_t>(begin, 2); n < end; ++n) {
    bool prime = true;
    for (std::uint64_t d = 2; d * d <= n; ++d) {
      if (n % d == 0) {
        prime = false;
        break;
      }
    }
    count += prime;
  }
  return count;
}

std::vector<std::pair<std::uint64_t, std::uint64_t>> split_range(std::uint64_t limit, std::size_t chunks) {
  if (chunks == 0) throw Error("split_range: chunks must be positive");
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
  ranges.reserve(chunks);
  for (std::size_t i = 0; i < chunks; ++i) {
    ranges.emplace_back(limit * i / chunks, limit * (i + 1) / chunks);
  }
  return ranges;
}

struct LatencyServer::Impl {
  httplib::Server server;
  std::thread thread;
  int port = 0;
  std::chrono::milliseconds latency;
};

LatencyServer::LatencyServer(std::chrono::milliseconds latency, std::size_t max_concurrency)
    : impl_(std::make_unique<Impl>()) {
  impl_->latency = latency;
  // httplib takes ownership of the queue it is handed as a raw pointer.
  impl_->server.set_tcp_nodelay(true);
  // stop() waits for each open keep-alive connection to sit idle this long (httplib's default
  // is 5 s); clients whose connection the server closed reconnect on their next request.
  impl_->server.set_keep_alive_timeout(1);
  impl_->server.new_task_queue = [max_concurrency] {
    return std::make_unique<httplib::ThreadPool>(max_concurrency).release();
  };
  impl_->server.Get(R"(/page/(\d+))", [latency](const httplib::Request& request, httplib::Response& response) {
    std::this_thread::sleep_for(latency);
    response.set_content("<html><body>page " + std::string(request.matches[1]) + "</body></html>", "text/html");
  });
  // Debian's compiled httplib listens with a backlog of 5: a burst of 64 connects overflows it and
  // the extra ones are retried a second later, which would measure TCP's SYN timer, not the
  // pool. The socket-options hook hands us the listening socket, and Linux lets listen() be
  // called again to enlarge the backlog.
  int listening_fd = -1;
  impl_->server.set_socket_options([&listening_fd](int fd) {
    const int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    listening_fd = fd;
  });
  impl_->port = impl_->server.bind_to_any_port("127.0.0.1");
  if (impl_->port <= 0 || listening_fd < 0) throw Error("LatencyServer: cannot bind 127.0.0.1");
  if (::listen(listening_fd, SOMAXCONN) != 0) throw Error("LatencyServer: cannot enlarge the listen backlog");
  impl_->thread = std::thread([this] { impl_->server.listen_after_bind(); });
  // This httplib (Debian 12: 0.11) has no wait_until_ready(): poll, briefly and bounded.
  for (int i = 0; i < 5000 && !impl_->server.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (!impl_->server.is_running()) throw Error("LatencyServer: the server did not start");
}

LatencyServer::~LatencyServer() {
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

int LatencyServer::port() const noexcept { return impl_->port; }
std::chrono::milliseconds LatencyServer::latency() const noexcept { return impl_->latency; }

std::size_t fetch_page(int port, int index) {
  // One keep-alive connection per thread and server, as a scraper's session keeps: the
  // measurement is then about waiting, not about TCP handshakes competing for two cores.
  thread_local std::map<int, std::unique_ptr<httplib::Client>> clients;
  auto& client = clients[port];
  if (!client) {
    client = std::make_unique<httplib::Client>("127.0.0.1", port);
    client->set_keep_alive(true);
    client->set_tcp_nodelay(true);  // else Nagle meets delayed ACKs: 40 ms stalls per request
    client->set_connection_timeout(std::chrono::seconds(10));
    client->set_read_timeout(std::chrono::seconds(30));
  }
  const auto result = client->Get("/page/" + std::to_string(index));
  if (!result) throw Error("fetch_page " + std::to_string(index) + ": " + httplib::to_string(result.error()));
  if (result->status != 200) {
    throw Error("fetch_page " + std::to_string(index) + ": HTTP status " + std::to_string(result->status));
  }
  return result->body.size();
}

}  // namespace tandem::workloads
