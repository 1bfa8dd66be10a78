// Thread and Process: the same code runs on either agent.
//   build/release/examples/agents
#include <tandem/error.hpp>
#include <tandem/process.hpp>
#include <tandem/start_method.hpp>
#include <tandem/thread.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>

using namespace std::chrono_literals;

template <class Agent>
void demonstrate(const char* kind) {
  // Start, wait with a timeout, then for good.
  Agent worker([](int n) { std::this_thread::sleep_for(std::chrono::milliseconds(n)); }, 50);
  worker.start();
  std::printf("%s %s (id %ld) alive: %d\n", kind, worker.name().c_str(), worker.id(), worker.is_alive());
  if (!worker.join_for(10ms)) std::printf("  still running after 10 ms\n");
  worker.join();
  std::printf("  joined, alive: %d\n", worker.is_alive());

  // An exception that escapes the callable is never lost.
  Agent failing(tandem::AgentOptions{.name = "failing", .daemon = false}, [] { throw std::runtime_error("disk full"); });
  failing.start();
  failing.join();
  try {
    std::rethrow_exception(failing.exception());
  } catch (const tandem::RemoteError& e) {  // from a process, a type it cannot rebuild: name and message
    std::printf("  %s raised %s: %s\n", failing.name().c_str(), e.type_name().c_str(), e.message().c_str());
  } catch (const std::exception& e) {  // a thread's own exception, or a registered type rebuilt
    std::printf("  %s raised: %s\n", failing.name().c_str(), e.what());
  }
}

void convert(int quality) {
  std::printf("  converting at quality %d in process %d\n", quality, static_cast<int>(::getpid()));
}

int main(int argc, char** argv) {
  tandem::init(argc, argv);  // first line of main: needed by the forkserver and spawn start methods
  demonstrate<tandem::Thread>("Thread");
  demonstrate<tandem::Process>("Process");

  // Only a process survives a crash: the parent reads the signal from the exit code.
  tandem::Process crashing([] { *static_cast<volatile int*>(nullptr) = 1; });
  crashing.start();
  crashing.join();
  std::printf("a crashing process exited with %d (minus SIGSEGV); this program goes on\n", *crashing.exitcode());

  // A child that does not copy this process (safe however many threads it runs): the callable
  // and its arguments travel as bytes, as a ProcessPool task's do.
  for (const auto method : {tandem::StartMethod::forkserver, tandem::StartMethod::spawn}) {
    tandem::Process child(tandem::ProcessOptions{.start_method = method}, convert, 90);
    child.start();
    child.join();
    std::printf("  started by %s, exit code %d\n", std::string(tandem::to_string(method)).c_str(), *child.exitcode());
  }
}
