// tandem::partial: a function with its first arguments bound, whose bound values travel to
// worker processes the way arguments do (Python's functools.partial).
//
//   auto scale = tandem::partial([](int factor, int x) { return factor * x; }, 3);
//   std::vector<int> tripled = pool.map(scale, numbers);        // ThreadPool or ProcessPool
//
// It is how state reaches a task on a ProcessPool: C++ cannot see what a lambda captured, so a
// capturing lambda cannot be sent to another process (a copied reference or pointer would read
// the worker's own, stale memory), while the type of every bound value is visible and checked
// like an argument's: trivially copyable without addresses, vectors and strings of such, cereal
// types, tandem's shared objects. On a ThreadPool any values may be bound.
#pragma once

#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

namespace tandem {

template <class F, class... Values>
class Partial {
 public:
  explicit Partial(F f, Values... values) : f_(std::move(f)), values_(std::move(values)...) {}

  // f(values..., args...): the bound values are passed as lvalues, so a Partial can be called
  // again (once per element of a map).
  template <class... Args>
    requires std::is_invocable_v<F&, Values&..., Args...>
  decltype(auto) operator()(Args&&... args) {
    return std::apply([&](Values&... values) -> decltype(auto) { return std::invoke(f_, values..., std::forward<Args>(args)...); },
                      values_);
  }
  template <class... Args>
    requires std::is_invocable_v<const F&, const Values&..., Args...>
  decltype(auto) operator()(Args&&... args) const {
    return std::apply(
        [&](const Values&... values) -> decltype(auto) { return std::invoke(f_, values..., std::forward<Args>(args)...); },
        values_);
  }

  const F& function() const noexcept { return f_; }
  const std::tuple<Values...>& values() const noexcept { return values_; }

 private:
  F f_;
  std::tuple<Values...> values_;
};

// Binds `values` (decay-copied) as the first arguments of `f`.
template <class F, class... Values>
Partial<std::decay_t<F>, std::decay_t<Values>...> partial(F&& f, Values&&... values) {
  return Partial<std::decay_t<F>, std::decay_t<Values>...>(std::forward<F>(f), std::forward<Values>(values)...);
}

}  // namespace tandem
