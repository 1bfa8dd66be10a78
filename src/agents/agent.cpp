#include "tandem/agent.hpp"

#include <atomic>

namespace tandem::detail {

std::string default_agent_name(const char* kind) {
  static std::atomic<int> thread_count{0}, process_count{0};
  auto& counter = std::string_view(kind) == "Thread" ? thread_count : process_count;
  return std::string(kind) + "-" + std::to_string(counter.fetch_add(1, std::memory_order_relaxed) + 1);
}

}  // namespace tandem::detail
