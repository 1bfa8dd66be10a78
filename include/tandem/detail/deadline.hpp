// The one place where a timeout or a time point becomes the deadline every blocking call waits
// by: a steady-clock time point, saturated rather than overflowed. `op_for(d)` is
// `op_until(deadline_after(d))` and `op_until(t)` is `op_until(deadline_at(t))` everywhere in
// tandem, so that `wait_for(std::chrono::seconds::max())` waits forever instead of wrapping into
// the past, a negative or NaN timeout does not wait at all, and a time point of any clock works.
#pragma once

#include <chrono>
#include <type_traits>

#include "tandem/detail/futex.hpp"

namespace tandem::detail {

namespace deadline_math {
// Nanoseconds as a long double: every duration of every representation fits (with rounding), so
// comparisons cannot overflow.
using WideNanoseconds = std::chrono::duration<long double, std::nano>;

inline Clock::time_point saturating_add(Clock::time_point base, WideNanoseconds offset) {
  const WideNanoseconds from(base.time_since_epoch());
  const WideNanoseconds room_up = WideNanoseconds(Clock::time_point::max().time_since_epoch()) - from;
  const WideNanoseconds room_down = WideNanoseconds(Clock::time_point::min().time_since_epoch()) - from;
  if (!(offset == offset)) return base;  // NaN: no wait
  if (offset >= room_up) return Clock::time_point::max();
  if (offset <= room_down) return Clock::time_point::min();
  return base + std::chrono::ceil<Clock::duration>(offset);
}
}  // namespace deadline_math

// Now + `timeout`, rounded up; time_point::max() (never) when that lies past what the clock
// can represent; now when `timeout` is zero, negative or NaN.
template <class Rep, class Period>
Clock::time_point deadline_after(std::chrono::duration<Rep, Period> timeout) {
  const auto now = Clock::now();
  const deadline_math::WideNanoseconds wide(timeout);
  if (!(wide > deadline_math::WideNanoseconds::zero())) return now;
  return deadline_math::saturating_add(now, wide);
}

// `deadline` of any clock as a steady-clock deadline. A clock's time_point::max() is never and its
// min() is past. A steady-clock time point converts exactly (saturating only where its duration
// type reaches further than nanoseconds); another clock's is measured from that clock's now, so a
// system-clock deadline is taken as it stood when the call began, whatever the wall clock does.
template <class OtherClock, class Duration>
Clock::time_point deadline_at(std::chrono::time_point<OtherClock, Duration> deadline) {
  using TimePoint = std::chrono::time_point<OtherClock, Duration>;
  // Any clock's last moment is never, and its first one is past, whatever the clocks' offsets.
  if (deadline == TimePoint::max()) return Clock::time_point::max();
  if (deadline == TimePoint::min()) return Clock::time_point::min();
  if constexpr (std::is_same_v<OtherClock, Clock>) {
    if constexpr (std::is_same_v<Duration, Clock::duration>) {
      return deadline;
    } else {
      return deadline_math::saturating_add(Clock::time_point{},
                                           deadline_math::WideNanoseconds(deadline.time_since_epoch()));
    }
  } else {
    const deadline_math::WideNanoseconds left =
        deadline_math::WideNanoseconds(deadline.time_since_epoch()) -
        deadline_math::WideNanoseconds(OtherClock::now().time_since_epoch());
    return deadline_math::saturating_add(Clock::now(), left);
  }
}

}  // namespace tandem::detail
