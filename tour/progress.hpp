// Tells the person watching what the tour is measuring right now, on stderr: one line rewritten
// in place on a terminal, plain lines otherwise (CI logs and pipes get no control codes).
//
//   [  12.3 s] 2/3 CPU-bound, step 3/6: tandem ThreadPool(2)
#pragma once

#include <chrono>
#include <string>

namespace tandem::tour {

class Progress {
 public:
  explicit Progress(int sections);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Called by the tour before each section runs.
  void section(const std::string& name);
  // Called by a section first: how many step() calls it will make, for the "step i/n" counter.
  void plan(int steps);
  void step(const std::string& what);
  // A line outside any section, e.g. what happens after the last one.
  void note(const std::string& what);

 private:
  int sections_;
  int section_ = 0;
  void print(const std::string& line);
  double elapsed() const;

  int steps_ = 0;
  int step_ = 0;
  bool terminal_;
  std::string name_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace tandem::tour
