// Section: CPU-bound work. C++ has no GIL: a ThreadPool of N workers counts primes up to N times
// faster on N cores, where Python's threads do not speed up at all and only its processes do;
// tandem's ProcessPool gets the same speedup with workers isolated in their own processes.
#include <filesystem>
#include <numeric>
#include <optional>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

#include "sections.hpp"
#include "system.hpp"
#include "tandem/cpu.hpp"
#include "tandem/process_pool.hpp"
#include "tandem/thread_pool.hpp"
#include "workloads/workloads.hpp"

namespace tandem::tour {
namespace {

// Enough chunks that two workers finish together although higher ranges cost more per number.
constexpr std::size_t kChunks = 64;
constexpr const char* kTandem = "tandem (C++)";
constexpr const char* kPython = "Python stdlib";

using Ranges = std::vector<std::pair<std::uint64_t, std::uint64_t>>;

std::uint64_t count_serially(const Ranges& ranges) {
  std::uint64_t total = 0;
  for (auto [begin, end] : ranges) total += workloads::count_primes(begin, end);
  return total;
}

template <class Pool>
std::uint64_t count_on(Pool& pool, const Ranges& ranges) {
  // chunksize 1: each range is one task, so the pool balances the uneven ranges itself.
  const auto counts = pool.map([](auto range) { return workloads::count_primes(range.first, range.second); }, ranges, 1);
  return std::accumulate(counts.begin(), counts.end(), std::uint64_t{0});
}

void check_count(const std::string& who, std::uint64_t found, std::uint64_t expected) {
  if (found != expected) {
    throw std::runtime_error(who + " counted " + std::to_string(found) + " primes where the serial loop counted " +
                             std::to_string(expected));
  }
}

// What tour/python/cpu_bound.py measured.
struct PythonRun {
  std::string version;
  bool gil = true;
  double serial = 0, threads = 0, processes = 0;
  std::uint64_t serial_count = 0, thread_count = 0, process_count = 0;
};

// The value of `key` in the script's flat, one-line JSON object, as text without quotes.
std::string json_value(const std::string& json, const std::string& key) {
  std::smatch match;
  if (!std::regex_search(json, match, std::regex("\"" + key + "\": *(\"([^\"]*)\"|[^,} ]+)"))) {
    throw std::runtime_error("tour/python/cpu_bound.py printed no \"" + key + "\": " + json);
  }
  return match[2].matched ? match[2].str() : match[1].str();
}

PythonRun run_python(const std::filesystem::path& python, std::uint64_t limit, int repeats) {
  const std::filesystem::path script = TANDEM_TOUR_PYTHON_DIR "/cpu_bound.py";
  if (!std::filesystem::exists(script)) throw std::runtime_error(script.string() + " is missing");
  const auto result = run_command({python.string(), script.string(), "--limit", std::to_string(limit), "--chunks",
                                   std::to_string(kChunks), "--workers", "2", "--repeats", std::to_string(repeats)});
  if (result.exit_code != 0) {
    throw std::runtime_error("the Python experiment failed (exit " + std::to_string(result.exit_code) + ")");
  }
  const std::string& json = result.output;
  PythonRun run;
  run.version = json_value(json, "python");
  run.gil = json_value(json, "gil") == "true";
  run.serial = std::stod(json_value(json, "serial"));
  run.threads = std::stod(json_value(json, "threads"));
  run.processes = std::stod(json_value(json, "processes"));
  run.serial_count = std::stoull(json_value(json, "serial_count"));
  run.thread_count = std::stoull(json_value(json, "thread_count"));
  run.process_count = std::stoull(json_value(json, "process_count"));
  return run;
}

std::string threads_label(std::size_t n) { return std::to_string(n) + (n == 1 ? " thread" : " threads"); }

// What the tandem part says, from its numbers. `speedups` holds the pool speedup per worker count.
std::vector<std::string> tandem_takeaways(std::size_t cpus, const std::vector<std::pair<std::size_t, double>>& speedups) {
  auto at = [&](std::size_t workers) {
    for (auto [w, s] : speedups) {
      if (w == workers) return s;
    }
    throw std::logic_error("no run with " + std::to_string(workers) + " workers");
  };
  std::vector<std::string> out;
  const double two = at(2);
  std::string first = "2 tandem threads: " + times(two) + " faster than the serial loop";
  if (cpus < 2) {
    first += "; this process may use only 1 CPU here, so no thread count can speed up CPU-bound work.";
  } else if (two >= 1.7) {
    first += ": C++ threads run on two cores at once (there is no GIL).";
  } else {
    first += ", short of the ~2x two cores allow: the machine was probably busy with something else.";
  }
  out.push_back(first);
  if (cpus >= 2) {
    const double all = at(cpus), over = at(2 * cpus);
    std::string more = std::to_string(2 * cpus) + " threads, twice the usable CPUs: " + times(over) + ", against " +
                       times(all) + " with " + std::to_string(cpus);
    if (over < all * 0.95) {
      more += ": slower; beyond one thread per core, threads only take turns and add switching.";
    } else if (over <= all * 1.05) {
      more += ": no better; once every core is busy, more threads add nothing to CPU-bound work.";
    } else {
      more += ": a little better on this run (the last uneven chunks are shared more finely), though "
              "every core was already busy.";
    }
    out.push_back(more);
  }
  return out;
}

std::string gil_takeaway(const PythonRun& python, double tandem_two) {
  const double threads = python.serial / python.threads, processes = python.serial / python.processes;
  std::string text = "With 2 workers on this machine: tandem threads " + times(tandem_two) + ", Python threads " +
                     times(threads) + ", Python processes " + times(processes) + ". ";
  if (threads < 1.3 && processes >= 1.5) {
    text += "Python's threads take turns holding the GIL, so they do not speed up CPU-bound Python code; each "
            "Python process has its own interpreter and GIL, so processes do. tandem's threads get the "
            "speedup that Python needs processes for.";
  } else if (threads < 1.3) {
    text += "Python's threads did not speed up (the GIL), and on this run its processes did not either.";
  } else {
    text += std::string("Python's threads did speed up here: ") +
            (python.gil ? "unexpected with the GIL on; the machine may have been unevenly loaded."
                        : "this is a free-threaded Python, which has no GIL.");
  }
  return text;
}

}  // namespace

Section cpu_bound(const Options& options, Progress& progress) {
  const std::size_t cpus = cpu_count();
  std::vector<std::size_t> worker_counts{1, 2};
  if (cpus > 2) worker_counts.push_back(cpus);
  if (2 * cpus > 2) worker_counts.push_back(2 * cpus);  // more threads than CPUs
  const auto python = find_program("python3");
  progress.plan(static_cast<int>(1 + worker_counts.size() + (cpus > 2 ? 2 : 1) + (python ? 2 : 0)));

  Section section;
  section.title = "CPU-bound work: counting primes";
  const std::uint64_t limit = options.quick ? 400'000 : 3'000'000;
  const auto ranges = workloads::split_range(limit, kChunks);
  const Repeats repeats = options.repeats();
  section.setup = "Counting the primes below " + std::to_string(limit) + " by trial division, in " +
                  std::to_string(kChunks) + " chunks; the pools run map over the chunks (ThreadPool and ProcessPool alike) and are " +
                  "built before the clock starts. " + options.repeats_text() + " tandem::cpu_count() = " +
                  std::to_string(cpus) + ".";
  std::vector<Chart::Series> series{{kTandem, kTandemColour}};
  if (python) series.push_back({kPython, kPeerColour});
  section.chart = Chart(std::move(series));

  progress.step("serial loop");
  std::uint64_t expected = 0;
  const Timing serial = time_runs(repeats, [&] { expected = count_serially(ranges); });
  // A prime counter that finds none is broken however fast it is.
  if (expected == 0) throw std::runtime_error("the serial loop found no primes");

  Table table{{"variant", "workers", "time (ms)", "runs", "speedup", "primes found"}, {}};
  table.rows.push_back({"serial loop", "1", fixed(serial.seconds * 1e3, 1), std::to_string(serial.runs), times(1),
                        std::to_string(expected)});
  section.chart.set("serial", kTandem, 1);
  std::vector<std::pair<std::size_t, double>> speedups;
  for (std::size_t workers : worker_counts) {
    const std::string name = "tandem ThreadPool(" + std::to_string(workers) + ")";
    progress.step(name);
    ThreadPool pool(workers);
    std::uint64_t found = 0;
    const Timing timing = time_runs(repeats, [&] { found = count_on(pool, ranges); });
    check_count(name, found, expected);
    const double speedup = serial.seconds / timing.seconds;
    speedups.emplace_back(workers, speedup);
    const std::string note = workers == cpus ? " = cpu_count()" : workers == 2 * cpus ? " = 2 x cpu_count()" : "";
    table.rows.push_back({name + note, std::to_string(workers), fixed(timing.seconds * 1e3, 1),
                          std::to_string(timing.runs), times(speedup), std::to_string(found)});
    section.chart.set(threads_label(workers), kTandem, speedup);
  }
  std::vector<std::size_t> process_counts{2};
  if (cpus > 2) process_counts.push_back(cpus);
  double processes_two = 0;
  for (std::size_t workers : process_counts) {
    const std::string name = "tandem ProcessPool(" + std::to_string(workers) + ")";
    progress.step(name);
    ProcessPool pool(workers);
    std::uint64_t found = 0;
    const Timing timing = time_runs(repeats, [&] { found = count_on(pool, ranges); });
    check_count(name, found, expected);
    const double speedup = serial.seconds / timing.seconds;
    if (workers == 2) processes_two = speedup;
    table.rows.push_back({name, std::to_string(workers), fixed(timing.seconds * 1e3, 1), std::to_string(timing.runs),
                          times(speedup), std::to_string(found)});
    section.chart.set(std::to_string(workers) + " processes", kTandem, speedup);
  }
  section.tables.push_back(std::move(table));
  section.takeaways = tandem_takeaways(cpus, speedups);
  double threads_two = 0;
  for (auto [workers, speedup] : speedups) {
    if (workers == 2) threads_two = speedup;
  }
  section.takeaways.push_back(
      "2 tandem worker processes: " + times(processes_two) + ", against " + times(threads_two) + " with 2 threads" +
      (processes_two >= threads_two * 0.9
           ? ": for CPU-bound work a process costs about what a thread does once it runs; the chunks travel "
             "through shared-memory rings. Choose processes when the work must be isolated."
           : ": processes pay for sending chunks and results between address spaces; choose them when the work "
             "must be isolated, threads otherwise."));

  if (!python) {
    section.takeaways.push_back("python3 is not on PATH, so the same experiment in Python was not run and no "
                                "Python numbers are shown.");
    return section;
  }
  // Python counts ~25x slower: a smaller limit keeps its serial run to a second or two.
  const std::uint64_t python_limit = options.quick ? 100'000 : 500'000;
  progress.step("Python stdlib: serial, ThreadPoolExecutor(2), ProcessPoolExecutor(2) (a child process)");
  const PythonRun py = run_python(*python, python_limit, repeats.min_runs);
  progress.step("C++ serial loop up to the Python limit, for scale");
  const auto python_ranges = workloads::split_range(python_limit, kChunks);
  std::uint64_t cxx_count = 0;
  const Timing cxx_serial = time_runs(repeats, [&] { cxx_count = count_serially(python_ranges); });
  check_count("Python's serial loop", py.serial_count, cxx_count);
  check_count("Python's ThreadPoolExecutor", py.thread_count, cxx_count);
  check_count("Python's ProcessPoolExecutor", py.process_count, cxx_count);

  section.chart.set("serial", kPython, 1);
  section.chart.set(threads_label(2), kPython, py.serial / py.threads);
  section.chart.set("2 processes", kPython, py.serial / py.processes);

  const std::string runs = std::to_string(repeats.min_runs);
  Table table_py{{"Python " + py.version + " stdlib, primes below " + std::to_string(python_limit), "workers",
                  "time (ms)", "runs", "speedup", "primes found"},
                 {}};
  table_py.rows.push_back({"serial loop", "1", fixed(py.serial * 1e3, 1), runs, times(1), std::to_string(py.serial_count)});
  table_py.rows.push_back({"ThreadPoolExecutor(2)", "2", fixed(py.threads * 1e3, 1), runs, times(py.serial / py.threads),
                           std::to_string(py.thread_count)});
  table_py.rows.push_back({"ProcessPoolExecutor(2), started before timing", "2", fixed(py.processes * 1e3, 1), runs,
                           times(py.serial / py.processes), std::to_string(py.process_count)});
  table_py.rows.push_back({"C++ serial loop, same limit (for scale)", "1", fixed(cxx_serial.seconds * 1e3, 1),
                           std::to_string(cxx_serial.runs), "-", std::to_string(cxx_count)});
  section.tables.push_back(std::move(table_py));

  double tandem_two = 0;
  for (auto [workers, speedup] : speedups) {
    if (workers == 2) tandem_two = speedup;
  }
  section.takeaways.push_back(gil_takeaway(py, tandem_two));
  const double language = py.serial / cxx_serial.seconds;
  section.takeaways.push_back("Before any parallelism, the C++ loop counts the same primes " + times(language) +
                              (language >= 1 ? " faster than" : " as fast as") + " the Python loop.");
  return section;
}

}  // namespace tandem::tour
