#include "tandem/backoff.hpp"

#include <random>
#include <string>
#include <thread>

#include "tandem/detail/futex.hpp"
#include "tandem/error.hpp"

namespace tandem {
namespace {

constexpr int kFirstSpin = 4;        // pause instructions of the first pause
constexpr int kMostSpinPauses = 16;  // the last then spins 4 << 15 pauses: a millisecond or more

std::string nanoseconds_text(std::chrono::nanoseconds duration) { return std::to_string(duration.count()) + " ns"; }

// splitmix64: a tiny generator with good statistics, enough to decorrelate sleeps.
std::uint64_t next_random(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  return z ^ (z >> 31);
}

}  // namespace

Backoff::Backoff(Options options) : options_(options) {
  if (options_.spin_limit < 0 || options_.spin_limit > kMostSpinPauses) {
    throw Error("Backoff::Options: spin_limit must lie in [0, " + std::to_string(kMostSpinPauses) + "], not " +
                std::to_string(options_.spin_limit));
  }
  if (options_.yield_limit < 0) {
    throw Error("Backoff::Options: yield_limit must not be negative, not " + std::to_string(options_.yield_limit));
  }
  if (options_.first_sleep <= std::chrono::nanoseconds::zero()) {
    throw Error("Backoff::Options: first_sleep must be positive, not " + nanoseconds_text(options_.first_sleep));
  }
  if (options_.cap < options_.first_sleep) {
    throw Error("Backoff::Options: cap (" + nanoseconds_text(options_.cap) + ") must be at least first_sleep (" +
                nanoseconds_text(options_.first_sleep) + ")");
  }
}

void Backoff::pause() {
  const std::int64_t attempt = attempts_++;
  last_sleep_ = {};
  if (attempt < options_.spin_limit) {
    for (int i = 0, spins = kFirstSpin << attempt; i < spins; ++i) detail::cpu_relax();
  } else if (attempt < options_.spin_limit + options_.yield_limit) {
    std::this_thread::yield();
  } else {
    last_sleep_ = draw_sleep(attempt - options_.spin_limit - options_.yield_limit);
    std::this_thread::sleep_for(last_sleep_);
  }
}

std::chrono::nanoseconds Backoff::draw_sleep(std::int64_t sleep_index) {
  if (random_state_ == 0) {
    std::random_device device;
    random_state_ = (std::uint64_t{device()} << 32 | device()) | 1;
  }
  const std::int64_t first = options_.first_sleep.count();
  const std::int64_t cap = options_.cap.count();
  const std::int64_t bound = sleep_index >= 62 || first > (cap >> sleep_index) ? cap : first << sleep_index;
  const auto drawn = next_random(random_state_) % (static_cast<std::uint64_t>(bound) + 1);
  return std::chrono::nanoseconds(static_cast<std::int64_t>(drawn));
}

}  // namespace tandem
