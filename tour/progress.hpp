// Tells the person watching what the tour is measuring right now, on stderr: one updating line
// on a terminal, plain lines otherwise (CI logs).
#pragma once

#include <unistd.h>

#include <cstdio>
#include <string>

namespace tandem::tour {

class Progress {
 public:
  explicit Progress(int sections) : sections_(sections), terminal_(isatty(STDERR_FILENO) != 0) {}
  ~Progress() {
    if (terminal_) std::fputs("\r\033[K", stderr);
  }

  void section(const std::string& title) {
    ++current_;
    title_ = title;
  }
  void step(const std::string& what) {
    if (terminal_) {
      std::fprintf(stderr, "\r\033[K[%d/%d] %s: %s", current_, sections_, title_.c_str(), what.c_str());
    } else {
      std::fprintf(stderr, "[%d/%d] %s: %s\n", current_, sections_, title_.c_str(), what.c_str());
    }
    std::fflush(stderr);
  }

 private:
  int sections_;
  int current_ = 0;
  bool terminal_;
  std::string title_;
};

}  // namespace tandem::tour
