// Section: I/O-bound work. A thread blocked on the network uses no CPU, so many more threads than
// cores fetch pages in parallel: the time approaches ceil(pages / workers) x latency.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "sections.hpp"
#include "tandem/cpu.hpp"
#include "tandem/thread_pool.hpp"
#include "workloads/workloads.hpp"

namespace tandem::tour {
namespace {

constexpr const char* kTandem = "tandem ThreadPool";
constexpr const char* kIdeal = "ideal";

// Every page must arrive, with the same body as in the serial loop (fetch_page throws on a
// failed request; this catches a pool that skipped or mixed up pages).
void check_pages(const std::string& who, const std::vector<std::size_t>& sizes, const std::vector<std::size_t>& expected) {
  if (sizes != expected) throw std::runtime_error(who + " did not fetch every page as the serial loop did");
}

}  // namespace

Section io_bound(const Options& options, Progress& progress) {
  using namespace std::chrono_literals;
  const std::vector<std::size_t> worker_counts{2, 8, 64};
  progress.plan(static_cast<int>(1 + worker_counts.size()));

  Section section;
  section.title = "I/O-bound work: scraping a web site";
  const std::size_t pages = options.quick ? 32 : 128;
  const auto latency = options.quick ? 10ms : 20ms;
  const Repeats repeats = options.repeats();
  auto ideal = [&](std::size_t workers) {
    return std::ceil(static_cast<double>(pages) / static_cast<double>(workers)) *
           std::chrono::duration<double>(latency).count();
  };
  section.setup = "GET " + std::to_string(pages) + " pages from a cpp-httplib server on 127.0.0.1 that answers each after " +
                  std::to_string(latency.count()) + " ms, as a remote site's latency; the pools run " +
                  "tandem::ThreadPool::map over the page numbers, one page per task, each worker keeping one " +
                  "keep-alive connection as a scraper's session would. Ideal time = ceil(pages / workers) x latency; " +
                  "efficiency = ideal / measured. " + options.repeats_text();
  section.chart = Chart(std::vector<Chart::Series>{{kTandem, kTandemColour}, {kIdeal, kIdealColour}});

  workloads::LatencyServer server(latency, 2 * worker_counts.back());
  const int port = server.port();
  std::vector<int> indices(pages);
  std::iota(indices.begin(), indices.end(), 0);

  progress.step("serial loop, " + std::to_string(pages) + " pages");
  std::vector<std::size_t> expected(pages);
  const Timing serial = time_runs(repeats, [&] {
    for (std::size_t i = 0; i < pages; ++i) expected[i] = workloads::fetch_page(port, indices[i]);
  });
  if (std::find(expected.begin(), expected.end(), 0) != expected.end()) throw std::runtime_error("an empty page arrived");

  Table table{{"variant", "workers", "time (ms)", "runs", "pages/s", "speedup", "ideal (ms)", "efficiency"}, {}};
  auto add_row = [&](const std::string& name, std::size_t workers, const Timing& timing) {
    table.rows.push_back({name, std::to_string(workers), fixed(timing.seconds * 1e3, 1), std::to_string(timing.runs),
                          fixed(static_cast<double>(pages) / timing.seconds, 0), times(serial.seconds / timing.seconds),
                          fixed(ideal(workers) * 1e3, 0), percent(ideal(workers) / timing.seconds)});
    const std::string group = workers == 1 ? std::string("serial") : std::to_string(workers) + " threads";
    section.chart.set(group, kTandem, serial.seconds / timing.seconds);
    section.chart.set(group, kIdeal, ideal(1) / ideal(workers));
  };
  add_row("serial loop", 1, serial);

  struct Result {
    std::size_t workers;
    double speedup, efficiency;
  };
  std::vector<Result> results;
  for (std::size_t workers : worker_counts) {
    const std::string name = "tandem ThreadPool(" + std::to_string(workers) + ")";
    progress.step(name + ", " + std::to_string(pages) + " pages");
    ThreadPool pool(workers);
    const Timing timing = time_runs(repeats, [&] {
      check_pages(name, pool.map([port](int i) { return workloads::fetch_page(port, i); }, indices, 1), expected);
    });
    add_row(name, workers, timing);
    results.push_back({workers, serial.seconds / timing.seconds, ideal(workers) / timing.seconds});
  }
  section.tables.push_back(std::move(table));

  const std::size_t cpus = cpu_count();
  const Result best = *std::max_element(results.begin(), results.end(),
                                        [](const Result& a, const Result& b) { return a.speedup < b.speedup; });
  std::string first = std::to_string(best.workers) + " threads fetch the pages " + times(best.speedup) +
                      " faster than the serial loop, on " + counted(cpus, "usable CPU");
  first += best.speedup > 2.0 * static_cast<double>(cpus)
               ? ": far beyond what more cores could give CPU-bound work. A thread waiting for a reply uses no CPU, "
                 "so I/O-bound work scales with the requests in flight, not with the cores: use many threads."
               : ": less than waiting alone should allow; the machine may have been too busy to serve the requests.";
  section.takeaways.push_back(first);

  const Result& most = results.back();
  const double lowest = std::min_element(results.begin(), results.end(), [](const Result& a, const Result& b) {
                          return a.efficiency < b.efficiency;
                        })->efficiency;
  std::string second = "With " + std::to_string(most.workers) + " threads the scrape took " +
                       fixed(ideal(most.workers) / most.efficiency * 1e3, 1) + " ms against an ideal " +
                       fixed(ideal(most.workers) * 1e3, 0) + " ms (efficiency " + percent(most.efficiency) + ")";
  if (most.efficiency >= 0.8) {
    second += ": the pool adds little on top of the waiting itself";
  } else {
    second += ": the rest is CPU time, " + std::to_string(most.workers) + " HTTP exchanges at once on " +
              counted(cpus, "CPU") + ", and thread wake-ups";
  }
  second += lowest >= 0.8 ? "; every pool size reached at least " + percent(lowest) + " of its ideal."
                          : "; the least efficient pool reached " + percent(lowest) + " of its ideal.";
  section.takeaways.push_back(second);
  return section;
}

}  // namespace tandem::tour
