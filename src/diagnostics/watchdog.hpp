// The diagnostics' watchdog: a thread in the process that enabled them which looks, every
// watchdog_period, at who waits for whom in every process of the program, and reports
// deadlocks, starving lock waiters and stalled pools.
#pragma once

#include <thread>

#include "diagnostics/diagnostics_table.hpp"
#include "tandem/diagnostics.hpp"

namespace tandem::detail {

class Watchdog {
 public:
  Watchdog(DiagnosticsTable& table, const diagnostics::Options& options);
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
  ~Watchdog();

 private:
  struct Observer;
  std::unique_ptr<Observer> observer_;
  std::jthread thread_;
};

}  // namespace tandem::detail
