// StartMethod: how a ProcessPool starts its workers and a Process its child (Python's
// multiprocessing start methods), and tandem::init, which a program calls at the top of main to
// make them all work.
//
//   int main(int argc, char** argv) {
//     tandem::init(argc, argv);          // first line: starts the fork server, serves spawn
//     ...
//   }
//
// - forkserver (the default): a small server process is forked while the program still has one
//   thread (by init, or by the first pool if the program then has one thread); workers are
//   forked from it. Safe however many threads the program runs later, and fast however much
//   memory it has touched. Workers see the program as it was when the server started: globals
//   set later are not there (pass data as arguments).
// - fork: workers are forked from the program itself, seeing a copy of its memory as it is at
//   that moment. Fast to write for, but a fork copies only the forking thread: a lock that
//   another thread held stays locked in the worker forever (malloc and stdio are made safe by
//   the C library; your own locks and other libraries' are not).
// - spawn: each worker is this program started afresh (/proc/self/exe), which init turns into a
//   worker (or a Process's child). The slowest start; nothing of the parent's state is shared.
// The pools and Process share one default, forkserver (set_default_start_method changes it), the method that is safe in a program with
// threads; whatever the method, the callable and its arguments travel as values (a capture does
// not compile), so changing the method never changes what the child sees of its arguments.
#pragma once

#include <string_view>

namespace tandem {

enum class StartMethod { fork, forkserver, spawn };

// The program's default when it sets none.
inline constexpr StartMethod kDefaultStartMethod = StartMethod::forkserver;

// The start method that ProcessPoolOptions and ProcessOptions take when they name none:
// kDefaultStartMethod until set_default_start_method changes it (Python's set_start_method).
StartMethod default_start_method() noexcept;
// Sets the program-wide default for options made from now on (options already made keep theirs)
// and returns the one it replaces, so a caller (a test) can put it back. Unlike Python's
// set_start_method it may be called again: a program that wants spawn everywhere calls it once at
// the top of main.
StartMethod set_default_start_method(StartMethod method) noexcept;

constexpr std::string_view to_string(StartMethod method) noexcept {
  switch (method) {
    case StartMethod::fork:
      return "fork";
    case StartMethod::forkserver:
      return "forkserver";
    case StartMethod::spawn:
      return "spawn";
  }
  return "?";
}

// Call first thing in main, before any thread starts. In a process that tandem spawned as a
// worker, init never returns: the process serves its pool and exits. Elsewhere it starts the
// fork server and returns. Throws tandem::Error if other threads are already running.
void init(int argc, char** argv);

// True once init has run in this program.
bool initialized() noexcept;

}  // namespace tandem
