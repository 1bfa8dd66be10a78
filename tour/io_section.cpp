// Section 2: I/O-bound work. A thread blocked on the network uses no CPU, so many more threads
// than cores fetch pages in parallel: the time approaches ceil(pages / workers) x latency.
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "measure.hpp"
#include "sections.hpp"
#include "tandem/thread_pool.hpp"
#include "workloads/workloads.hpp"

namespace tandem::tour {

Section io_bound(const Options& options, Progress& progress) {
  using namespace std::chrono_literals;
  Section section;
  section.title = "I/O-bound work: scraping a web site";
  const int pages = options.quick ? 32 : 128;
  const auto latency = options.quick ? 10ms : 20ms;
  const int repeats = options.repeats();
  section.setup = "GET " + std::to_string(pages) + " pages from a cpp-httplib server on 127.0.0.1 that answers each after " +
                  std::to_string(latency.count()) + " ms (a remote site's latency); each thread keeps one keep-alive connection, as a scraper's session would. Median of " +
                  std::to_string(repeats) + " run(s).";

  workloads::LatencyServer server(latency, 256);
  const int port = server.port();
  std::vector<int> indices(static_cast<std::size_t>(pages));
  std::iota(indices.begin(), indices.end(), 0);
  auto ideal = [&](std::size_t workers) {
    return std::ceil(static_cast<double>(pages) / static_cast<double>(workers)) * std::chrono::duration<double>(latency).count();
  };

  progress.step("serial");
  const double serial = median_seconds(repeats, [&] {
    for (int i : indices) workloads::fetch_page(port, i);
  });
  Table table{{"variant", "workers", "time (ms)", "pages/s", "speedup", "of ideal"}, {}};
  table.rows.push_back({"serial loop", "1", fixed(serial * 1e3, 1), fixed(pages / serial, 0), times(1),
                        percent(ideal(1) / serial)});
  section.bars.push_back({"serial", 1});
  double best_speedup = 0;
  std::size_t best_workers = 1;
  for (std::size_t workers : {std::size_t{2}, std::size_t{8}, std::size_t{64}}) {
    progress.step("ThreadPool(" + std::to_string(workers) + ")");
    ThreadPool pool(workers);
    const double seconds = median_seconds(repeats, [&] {
      const auto sizes = pool.map([port](int i) { return workloads::fetch_page(port, i); }, indices, 1);
      if (sizes.size() != indices.size()) throw std::runtime_error("pages went missing");
    });
    const double speedup = serial / seconds;
    if (speedup > best_speedup) best_speedup = speedup, best_workers = workers;
    table.rows.push_back({"tandem ThreadPool", std::to_string(workers), fixed(seconds * 1e3, 1), fixed(pages / seconds, 0),
                          times(speedup), percent(ideal(workers) / seconds)});
    section.bars.push_back({std::to_string(workers) + " threads", speedup});
  }
  section.tables.push_back(std::move(table));
  section.takeaways.push_back(std::to_string(best_workers) + " threads fetch the pages " + times(best_speedup) +
                              " faster than one loop: waiting threads cost no CPU, so for I/O use many more threads "
                              "than cores. \"of ideal\" is ceil(pages / workers) x latency divided by the measured time.");
  return section;
}

}  // namespace tandem::tour
