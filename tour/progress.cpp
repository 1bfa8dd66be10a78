#include "progress.hpp"

#include <unistd.h>

#include <cstdio>

namespace tandem::tour {

Progress::Progress(int sections) : sections_(sections), terminal_(isatty(STDERR_FILENO) != 0) {}

Progress::~Progress() {
  // Leave the terminal's line empty for the report; a log keeps its last line.
  if (terminal_) std::fputs("\r\033[K", stderr);
}

void Progress::section(const std::string& name) {
  ++section_;
  name_ = name;
  steps_ = 0;
  step_ = 0;
}

void Progress::plan(int steps) { steps_ = steps; }

void Progress::step(const std::string& what) {
  ++step_;
  const std::string counter = steps_ > 0 ? std::to_string(step_) + "/" + std::to_string(steps_) : std::to_string(step_);
  print(std::to_string(section_) + "/" + std::to_string(sections_) + " " + name_ + ", step " + counter + ": " + what);
}

void Progress::note(const std::string& what) { print(what); }

double Progress::elapsed() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::print(const std::string& line) {
  std::fprintf(stderr, "%s[%6.1f s] %s%s", terminal_ ? "\r\033[K" : "", elapsed(), line.c_str(), terminal_ ? "" : "\n");
  std::fflush(stderr);
}

}  // namespace tandem::tour
