// Section 1: CPU-bound work. C++ has no GIL: a ThreadPool of N workers counts primes N times
// faster, where Python's threads do not speed up at all and only its processes do.
#include <sys/wait.h>

#include <cstdio>
#include <memory>
#include <numeric>
#include <optional>
#include <regex>
#include <stdexcept>
#include <string>

#include "measure.hpp"
#include "sections.hpp"
#include "tandem/cpu.hpp"
#include "tandem/thread_pool.hpp"
#include "workloads/workloads.hpp"

namespace tandem::tour {
namespace {

constexpr std::size_t kChunks = 64;

struct PythonRun {
  double serial = 0, threads = 0, processes = 0;
  std::uint64_t limit = 0, count = 0;
  std::string version;
};

double json_number(const std::string& json, const std::string& key) {
  std::smatch match;
  if (!std::regex_search(json, match, std::regex("\"" + key + "\": ([0-9.eE+-]+)"))) {
    throw std::runtime_error("python output lacks " + key + ": " + json);
  }
  return std::stod(match[1]);
}

// Runs tour/python/cpu_bound.py; nullopt (with the reason) when python3 is not available.
std::optional<PythonRun> run_python(std::uint64_t limit, int repeats, std::string& why_not) {
  if (std::system("command -v python3 >/dev/null 2>&1") != 0) {
    why_not = "python3 is not installed, so the Python comparison was skipped";
    return std::nullopt;
  }
  const std::string command = "python3 " TANDEM_TOUR_PYTHON_DIR "/cpu_bound.py --limit " + std::to_string(limit) +
                              " --chunks 16 --workers 2 --repeats " + std::to_string(repeats);
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) throw std::runtime_error("cannot run " + command);
  std::string output;
  char buffer[512];
  while (std::fgets(buffer, sizeof buffer, pipe.get())) output += buffer;
  if (const int status = pclose(pipe.release()); status != 0) {
    throw std::runtime_error("the Python experiment failed (exit " + std::to_string(WEXITSTATUS(status)) + ")");
  }
  PythonRun run;
  run.serial = json_number(output, "serial");
  run.threads = json_number(output, "threads");
  run.processes = json_number(output, "processes");
  run.limit = static_cast<std::uint64_t>(json_number(output, "limit"));
  run.count = static_cast<std::uint64_t>(json_number(output, "count"));
  std::smatch match;
  if (std::regex_search(output, match, std::regex("\"python\": \"([^\"]+)\""))) run.version = match[1];
  return run;
}

std::uint64_t count_with(ThreadPool* pool, const std::vector<std::pair<std::uint64_t, std::uint64_t>>& chunks) {
  if (!pool) {
    std::uint64_t total = 0;
    for (auto [begin, end] : chunks) total += workloads::count_primes(begin, end);
    return total;
  }
  const auto counts = pool->map([](auto range) { return workloads::count_primes(range.first, range.second); }, chunks, 1);
  return std::accumulate(counts.begin(), counts.end(), std::uint64_t{0});
}

}  // namespace

Section cpu_bound(const Options& options, Progress& progress) {
  Section section;
  section.title = "CPU-bound work: counting primes";
  const std::uint64_t limit = options.quick ? 400'000 : 3'000'000;
  const auto chunks = workloads::split_range(limit, kChunks);
  const int repeats = options.repeats();
  section.setup = "Primes below " + std::to_string(limit) + " by trial division, in " + std::to_string(kChunks) +
                  " chunks; tandem::ThreadPool::map over the chunks. Median of " + std::to_string(repeats) +
                  " run(s). This machine: " + std::to_string(cpu_count()) + " usable CPUs.";

  progress.step("serial");
  std::uint64_t expected = 0;
  const double serial = median_seconds(repeats, [&] { expected = count_with(nullptr, chunks); });

  Table table{{"variant", "workers", "time (ms)", "speedup", "primes found"}, {}};
  table.rows.push_back({"serial loop", "1", fixed(serial * 1e3, 1), times(1), std::to_string(expected)});
  section.bars.push_back({"C++ serial", 1});
  double two_worker_speedup = 0;
  for (std::size_t workers : {std::size_t{1}, std::size_t{2}, std::size_t{4}}) {
    progress.step("ThreadPool(" + std::to_string(workers) + ")");
    ThreadPool pool(workers);
    std::uint64_t found = 0;
    const double seconds = median_seconds(repeats, [&] { found = count_with(&pool, chunks); });
    if (found != expected) throw std::runtime_error("ThreadPool counted a different number of primes");
    const double speedup = serial / seconds;
    if (workers == 2) two_worker_speedup = speedup;
    table.rows.push_back({"tandem ThreadPool", std::to_string(workers), fixed(seconds * 1e3, 1), times(speedup),
                          std::to_string(found)});
    section.bars.push_back({"tandem " + std::to_string(workers) + " thr", speedup});
  }
  section.tables.push_back(std::move(table));

  std::string verdict = two_worker_speedup >= 1.7 ? "scale with the cores" : "scaled less than expected on this run";
  section.takeaways.push_back("2 tandem threads: " + times(two_worker_speedup) + " faster than serial: C++ threads " +
                              verdict + " (no GIL). More threads than cores add nothing.");

  progress.step("Python stdlib (serial, 2 threads, 2 processes)");
  const std::uint64_t python_limit = options.quick ? 100'000 : 500'000;
  std::string why_not;
  if (auto python = run_python(python_limit, repeats, why_not)) {
    const std::uint64_t cxx_count = workloads::count_primes(0, python_limit);
    if (python->count != cxx_count) throw std::runtime_error("Python and C++ disagree on the prime count");
    const double cxx_serial = median_seconds(repeats, [&] { workloads::count_primes(0, python_limit); });
    Table py{{"variant (Python " + python->version + ", primes below " + std::to_string(python_limit) + ")", "workers",
              "time (ms)", "speedup"},
             {}};
    py.rows.push_back({"serial", "1", fixed(python->serial * 1e3, 1), times(1)});
    py.rows.push_back({"ThreadPoolExecutor", "2", fixed(python->threads * 1e3, 1), times(python->serial / python->threads)});
    py.rows.push_back(
        {"ProcessPoolExecutor", "2", fixed(python->processes * 1e3, 1), times(python->serial / python->processes)});
    py.rows.push_back({"C++ serial, same limit (for scale)", "1", fixed(cxx_serial * 1e3, 1), "-"});
    section.tables.push_back(std::move(py));
    section.bars.push_back({"Python serial", 1, true});
    section.bars.push_back({"Python 2 thr", python->serial / python->threads, true});
    section.bars.push_back({"Python 2 proc", python->serial / python->processes, true});
    const double thread_speedup = python->serial / python->threads;
    section.takeaways.push_back("2 Python threads: " + times(thread_speedup) +
                                (thread_speedup < 1.3 ? " - the GIL lets one thread run Python at a time"
                                                      : " - more than the GIL usually allows on this run") +
                                "; 2 Python processes: " + times(python->serial / python->processes) + ".");
    section.takeaways.push_back("Counting the same primes serially, C++ is " + times(python->serial / cxx_serial) +
                                " faster than Python, before any parallelism.");
  } else {
    section.takeaways.push_back(why_not + ".");
  }
  return section;
}

}  // namespace tandem::tour
