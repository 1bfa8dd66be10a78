// Section: the two agents themselves. Threads share their process's memory and start cheaply;
// processes get their own memory (a copy at fork) and cost more to start.
#include <chrono>
#include <string>
#include <vector>

#include "sections.hpp"
#include "tandem/process.hpp"
#include "tandem/thread.hpp"

namespace tandem::tour {
namespace {

// Median microseconds to construct, start and join an agent running an empty callable. Each
// sample is timed on its own (not a batch) so the median drops the odd slow start.
template <class Agent, class... Options>
double start_join_micros(int runs, Options... options) {
  std::vector<double> samples;
  for (int i = 0; i < runs; ++i) {
    const auto start = std::chrono::steady_clock::now();
    Agent agent(options..., [] {});
    agent.start();
    agent.join();
    samples.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
  }
  return median(std::move(samples));
}

int written_by_agent = 0;

// Whether a write made by the agent is visible to the code that started it. A process is forked,
// the start method that gives it a copy of this memory: the write goes to that copy.
template <class Agent, class... Options>
bool shares_memory(Options... options) {
  written_by_agent = 0;
  Agent agent(options..., [] { written_by_agent = 42; });
  agent.start();
  agent.join();
  return written_by_agent == 42;
}

}  // namespace

Section agents(const Options& options, Progress& progress) {
  progress.plan(5);
  Section section;
  section.title = "Threads and processes";
  const int runs = options.quick ? 50 : 300;
  section.setup = "Each agent runs an empty callable; start + join timed " + std::to_string(runs) +
                  " times (processes by forkserver and spawn " + std::to_string(runs / 5) + " times), median. Then each agent writes 42 into a variable of the code that started it.";

  progress.step("Thread start + join, " + std::to_string(runs) + " times");
  const double thread_us = start_join_micros<Thread>(runs);
  progress.step("Process start + join by fork, " + std::to_string(runs) + " times");
  const double process_us = start_join_micros<Process>(runs, ProcessOptions{.start_method = StartMethod::fork});
  const int slow_runs = runs / 5;  // spawn starts a whole program: fewer samples keep the tour short
  progress.step("Process start + join by forkserver, " + std::to_string(slow_runs) + " times");
  const double forkserver_us =
      start_join_micros<Process>(slow_runs, ProcessOptions{.start_method = StartMethod::forkserver});
  progress.step("Process start + join by spawn, " + std::to_string(slow_runs) + " times");
  const double spawn_us = start_join_micros<Process>(slow_runs, ProcessOptions{.start_method = StartMethod::spawn});
  progress.step("who sees whose memory");
  const bool thread_shares = shares_memory<Thread>();
  const bool process_shares = shares_memory<Process>(ProcessOptions{.start_method = StartMethod::fork});

  Table table{{"agent", "start + join (us)", "relative", "its write is seen by the starter"}, {}};
  table.rows.push_back({"tandem::Thread", fixed(thread_us, 1), times(1), thread_shares ? "yes" : "no"});
  table.rows.push_back(
      {"tandem::Process (fork)", fixed(process_us, 1), times(process_us / thread_us), process_shares ? "yes" : "no"});
  table.rows.push_back({"tandem::Process (forkserver)", fixed(forkserver_us, 1), times(forkserver_us / thread_us), "no"});
  table.rows.push_back({"tandem::Process (spawn)", fixed(spawn_us, 1), times(spawn_us / thread_us), "no"});
  section.tables.push_back(std::move(table));

  const double ratio = process_us / thread_us;
  section.takeaways.push_back(
      ratio > 1.2 ? "Starting a process costs " + times(ratio) +
                        " the time of a thread here: fork copies the page tables and the kernel sets up a new "
                        "address space, where a thread only needs a stack."
                  : "Starting a process cost about as much as a thread on this run (" + times(ratio) +
                        "): unusual; a busy machine can blur such short timings.");
  section.takeaways.push_back(std::string("A thread's write ") + (thread_shares ? "is" : "is NOT") +
                              " seen by the code that started it (one memory space); a process's write " +
                              (process_shares ? "IS" : "is not") +
                              " (it changed its own copy): processes share data only through explicit IPC.");
  section.takeaways.push_back("forkserver and spawn children start from the program as it was at tandem::init, or "
                              "afresh: safe in a program that runs threads, at " +
                              times(forkserver_us / process_us) + " and " + times(spawn_us / process_us) +
                              " the cost of a fork here.");
  return section;
}

}  // namespace tandem::tour
