// Section: isolation. Tasks that crash their process (segfault, abort, exit, SIGKILL) on a
// ProcessPool cost only themselves: every other result arrives, each crash is reported with its
// signal, the pool keeps its size. Beside it, Python's ProcessPoolExecutor given the same mix.
#include <signal.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "sections.hpp"
#include "system.hpp"
#include "tandem/process_pool.hpp"

namespace tandem::tour {
namespace {

enum class Fault : int { none, segfault, abort, exit, sigkill, exception };

int run_task(int index, Fault fault) {
  switch (fault) {
    case Fault::segfault:
      std::raise(SIGSEGV);
      break;
    case Fault::abort:
      std::abort();
    case Fault::exit:
      std::exit(3);
    case Fault::sigkill:
      std::raise(SIGKILL);
      break;
    case Fault::exception:
      throw std::runtime_error("bad record " + std::to_string(index));
    case Fault::none:
      break;
  }
  return index * 2;
}

// Every tenth task fails, cycling through the ways a process can die, plus a plain exception.
Fault fault_of(int index) {
  if (index % 10 != 3) return Fault::none;
  constexpr Fault kCycle[] = {Fault::segfault, Fault::abort, Fault::exit, Fault::sigkill, Fault::exception};
  return kCycle[(index / 10) % 5];
}

struct Outcome {
  int results = 0;
  int wrong = 0;
  int exceptions = 0;
  std::map<std::string, int> lost;  // "SIGSEGV" / "exit 3" -> count
  double seconds = 0;
};

Outcome run_mix(int tasks, bool with_faults) {
  ProcessPool pool(2);
  Outcome outcome;
  const auto start = std::chrono::steady_clock::now();
  std::vector<Future<int>> futures;
  for (int i = 0; i < tasks; ++i) futures.push_back(pool.submit(&run_task, i, with_faults ? fault_of(i) : Fault::none));
  for (int i = 0; i < tasks; ++i) {
    try {
      if (futures[static_cast<std::size_t>(i)].get() == 2 * i) {
        ++outcome.results;
      } else {
        ++outcome.wrong;
      }
    } catch (const WorkerLost& e) {
      ++outcome.lost[e.signal() ? std::string("SIG") + sigabbrev_np(e.signal()) : "exit " + std::to_string(e.exit_status())];
    } catch (const std::runtime_error&) {
      ++outcome.exceptions;
    }
  }
  outcome.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (pool.size() != 2) throw std::runtime_error("the pool did not keep its size");
  return outcome;
}

struct PythonIsolation {
  std::string version;
  int results = 0, broken = 0;
};

// The figures of tour/python/isolation.py, or why there are none.
struct PythonOutcome {
  std::optional<PythonIsolation> run;
  std::string failure;
};

PythonOutcome run_python(const std::filesystem::path& python, int tasks) {
  const auto result = run_command({python.string(), TANDEM_TOUR_PYTHON_DIR "/isolation.py", "--tasks",
                                   std::to_string(tasks), "--every", "10"},
                                  true);
  std::smatch match;
  const std::regex pattern(R"re("python": "([^"]+)", "results": (\d+), "broken": (\d+))re");
  if (result.exit_code != 0 || !std::regex_search(result.output, match, pattern)) {
    return {std::nullopt, "exit status " + std::to_string(result.exit_code) + ", output: " + result.output.substr(0, 300)};
  }
  return {PythonIsolation{match[1].str(), std::stoi(match[2].str()), std::stoi(match[3].str())}, ""};
}

}  // namespace

Section isolation(const Options& options, Progress& progress) {
  const auto python = find_program("python3");
  progress.plan(3 + (python ? 1 : 0));
  const int tasks = options.quick ? 60 : 300;
  Section section;
  section.title = "Isolation: tasks that crash their worker process";
  section.setup = "tandem::ProcessPool(2) runs " + std::to_string(tasks) +
                  " tasks; every tenth one fails, in turn by a segfault (raise SIGSEGV), abort(), exit(3), "
                  "SIGKILL, or an exception. Then the same tasks without faults, for the cost of a crash; then a "
                  "task that hangs, under task_timeout.";

  progress.step("tasks with faults");
  const Outcome faulty = run_mix(tasks, true);
  progress.step("the same tasks without faults");
  const Outcome clean = run_mix(tasks, false);
  int crashes = 0;
  for (const auto& [cause, count] : faulty.lost) crashes += count;
  const int planned_faults = tasks / 10;
  const int planned_crashes = planned_faults - planned_faults / 5;  // every fifth fault is an exception
  if (faulty.wrong != 0 || faulty.results != tasks - planned_faults || crashes + faulty.exceptions != planned_faults) {
    throw std::runtime_error("the isolation run lost or mixed up results: " + std::to_string(faulty.results) +
                             " results, " + std::to_string(crashes) + " crashes, " +
                             std::to_string(faulty.exceptions) + " exceptions");
  }

  Table table{{"tandem ProcessPool(2)", "count"}, {}};
  table.rows.push_back({"tasks submitted", std::to_string(tasks)});
  table.rows.push_back({"correct results", std::to_string(faulty.results)});
  for (const auto& [cause, count] : faulty.lost) {
    table.rows.push_back({"WorkerLost, " + cause, std::to_string(count)});
  }
  table.rows.push_back({"exceptions (std::runtime_error)", std::to_string(faulty.exceptions)});
  table.rows.push_back({"workers after the run", "2"});
  table.rows.push_back({"time with faults (ms)", fixed(faulty.seconds * 1e3, 1)});
  table.rows.push_back({"time without faults (ms)", fixed(clean.seconds * 1e3, 1)});

  progress.step("a task that hangs, with task_timeout = 200 ms");
  ProcessPoolOptions timed;
  timed.workers = 2;
  timed.task_timeout = std::chrono::milliseconds(200);
  ProcessPool pool(timed);
  const auto start = std::chrono::steady_clock::now();
  auto hung = pool.submit([] {
    std::this_thread::sleep_for(std::chrono::hours(1));
    return 0;
  });
  bool timed_out = false;
  try {
    hung.get();
  } catch (const TaskTimeout&) {
    timed_out = true;
  }
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!timed_out) throw std::runtime_error("the hanging task did not time out");
  const int after = pool.submit([](int x) { return x + 1; }, 41).get();
  table.rows.push_back({"hanging task: TaskTimeout after (ms)", fixed(waited * 1e3, 0)});
  table.rows.push_back({"next task on the same pool returned", std::to_string(after)});
  section.tables.push_back(std::move(table));

  const double per_crash = crashes > 0 ? (faulty.seconds - clean.seconds) / crashes : 0;
  section.takeaways.push_back(std::to_string(faulty.results) + " of " + std::to_string(tasks - planned_faults) +
                              " good tasks returned their result although " + std::to_string(crashes) +
                              " tasks killed their worker process; each crash was reported on its own future as "
                              "tandem::WorkerLost with the signal or exit status, and the pool replaced the worker.");
  if (crashes == planned_crashes && per_crash > 0) {
    section.takeaways.push_back("A crash cost about " + fixed(per_crash * 1e3, 2) +
                                " ms here (a new worker forked and ready), on top of the task itself.");
  }
  section.takeaways.push_back("The hanging task failed with tandem::TaskTimeout after " + fixed(waited * 1e3, 0) +
                              " ms; its worker was killed and replaced, and the pool went on.");

  if (!python) {
    section.takeaways.push_back("python3 is not on PATH: no comparison with Python's ProcessPoolExecutor.");
    return section;
  }
  progress.step("Python ProcessPoolExecutor(2), same tasks with only segfaults");
  const auto outcome = run_python(*python, tasks);
  if (!outcome.run) {
    section.takeaways.push_back("The Python comparison (tour/python/isolation.py) did not run cleanly (" +
                                outcome.failure + "); no figures.");
    return section;
  }
  const auto& py = outcome.run;
  Table table_py{{"Python " + py->version + " ProcessPoolExecutor(2)", "count"}, {}};
  table_py.rows.push_back({"tasks submitted", std::to_string(tasks)});
  table_py.rows.push_back({"results", std::to_string(py->results)});
  table_py.rows.push_back({"BrokenProcessPool", std::to_string(py->broken)});
  section.tables.push_back(std::move(table_py));
  section.takeaways.push_back("Python's ProcessPoolExecutor, given one segfault in every ten tasks, returned " +
                              std::to_string(py->results) + " results and failed " + std::to_string(py->broken) +
                              " tasks with BrokenProcessPool: one dead worker breaks its whole pool.");
  return section;
}

}  // namespace tandem::tour
