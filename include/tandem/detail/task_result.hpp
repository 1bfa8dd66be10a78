// What a pool task returns: callables that take a std::stop_token first get their task's token.
#pragma once

#include <stop_token>
#include <type_traits>

namespace tandem::detail {

template <class F, class... Args>
struct TaskResult {
  using type = std::invoke_result_t<std::decay_t<F>, std::decay_t<Args>...>;
};
template <class F, class... Args>
  requires std::is_invocable_v<std::decay_t<F>, std::stop_token, std::decay_t<Args>...>
struct TaskResult<F, Args...> {
  using type = std::invoke_result_t<std::decay_t<F>, std::stop_token, std::decay_t<Args>...>;
};

}  // namespace tandem::detail
