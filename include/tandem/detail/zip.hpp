// Several ranges read side by side into one vector of tuples, stopping at the shortest (Python's
// zip): what a pool's map over several ranges hands to starmap.
#pragma once

#include <ranges>
#include <tuple>
#include <utility>
#include <vector>

namespace tandem::detail {

template <std::ranges::input_range... Ranges>
auto zip_to_tuples(Ranges&... ranges) {
  using Tuple = std::tuple<std::ranges::range_value_t<Ranges>...>;
  std::vector<Tuple> tuples;
  auto positions = std::make_tuple(std::ranges::begin(ranges)...);
  const auto ends = std::make_tuple(std::ranges::end(ranges)...);
  const auto any_at_end = [&]<std::size_t... I>(std::index_sequence<I...>) {
    return ((std::get<I>(positions) == std::get<I>(ends)) || ...);
  };
  while (!any_at_end(std::index_sequence_for<Ranges...>{})) {
    tuples.push_back(std::apply([](auto&... position) { return Tuple(*position...); }, positions));
    std::apply([](auto&... position) { (++position, ...); }, positions);
  }
  return tuples;
}

}  // namespace tandem::detail
