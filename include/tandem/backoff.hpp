// Backoff: randomized exponential backoff, the cure for livelock. Agents that politely back off
// and retry at the same moments collide again and again; waiting longer after each failure, and
// for a random part of that wait, pulls them apart.
//
//   for (tandem::Backoff backoff; !try_both(); backoff.pause()) {}
//
// Each pause() waits longer than the last: first it spins (4, 8, ... CPU pause instructions,
// doubling), then yields the processor a few times, then sleeps for a duration drawn uniformly
// from [0, min(cap, first_sleep * 2^k)] at its k-th sleep ("full jitter": the randomness spreads
// the agents over the whole window, not around its edge). reset() after a success starts over
// from the short pauses. Every Backoff draws from its own random sequence, seeded from
// std::random_device, so two agents do not pick the same sleeps.
//
// It is not fair: an agent that just succeeded (and reset) starts again with short pauses while
// one that keeps failing waits longer and longer, so the first can win most of the rounds.
#pragma once

#include <chrono>
#include <cstdint>

namespace tandem {

class Backoff {
 public:
  struct Options {
    // Pauses that spin, from 4 pause instructions up to 4 * 2^(spin_limit - 1); at most 16.
    int spin_limit = 7;
    // Pauses that then yield the processor (std::this_thread::yield).
    int yield_limit = 3;
    // The longest possible first sleep; it doubles with each sleep, up to cap.
    std::chrono::nanoseconds first_sleep = std::chrono::microseconds(50);
    std::chrono::nanoseconds cap = std::chrono::milliseconds(10);
  };

  Backoff() : Backoff(Options{}) {}
  // tandem::Error unless 0 <= spin_limit <= 16, yield_limit >= 0 and 0 < first_sleep <= cap.
  explicit Backoff(Options options);

  // Waits a little longer than the previous pause did.
  void pause();
  // Starts over from the shortest pause, after a success.
  void reset() noexcept {
    attempts_ = 0;
    last_sleep_ = {};
  }
  // Pauses since construction or the last reset().
  std::int64_t attempts() const noexcept { return attempts_; }
  // How long the last pause() chose to sleep; zero when it spun or yielded.
  std::chrono::nanoseconds last_sleep() const noexcept { return last_sleep_; }

 private:
  std::chrono::nanoseconds draw_sleep(std::int64_t sleep_index);

  Options options_;
  std::int64_t attempts_ = 0;
  std::chrono::nanoseconds last_sleep_{};
  std::uint64_t random_state_ = 0;  // seeded at the first sleep: spinning needs no randomness
};

}  // namespace tandem
