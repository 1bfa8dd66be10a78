// Boost.Asio's thread_pool with two threads: post every task, then wait for the pool to drain.
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <chrono>

#include "peers.hpp"

namespace tandem::bench {

double asio_thread_pool_burst(std::size_t tasks) {
  boost::asio::thread_pool pool(2);
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < tasks; ++i) boost::asio::post(pool, [] {});
  pool.wait();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace tandem::bench
