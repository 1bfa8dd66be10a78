// What Thread and Process share: how they are named and whether they are daemons.
//
//   tandem::Thread t(tandem::AgentOptions{.name = "loader", .daemon = true}, load, path);
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

namespace tandem {

struct AgentOptions {
  // Empty: "Thread-N" / "Process-N", numbered per program as in Python.
  std::string name = {};
  // A daemon agent is not waited for by its destructor: a daemon Thread is detached, a daemon
  // Process is terminated (SIGTERM, then SIGKILL after a second) and reaped.
  bool daemon = false;
};

namespace detail {

// A callable with its arguments, type-erased and move-only, run exactly once.
class AgentBody {
 public:
  virtual ~AgentBody() = default;
  virtual void run() = 0;
};

template <class F, class... Args>
class AgentBodyFor final : public AgentBody {
 public:
  template <class G, class... A>
  explicit AgentBodyFor(G&& f, A&&... args) : f_(std::forward<G>(f)), args_(std::forward<A>(args)...) {}
  void run() override {
    std::apply([this](auto&... args) { std::invoke(std::move(f_), std::move(args)...); }, args_);
  }

 private:
  F f_;
  std::tuple<Args...> args_;
};

template <class F, class... Args>
std::unique_ptr<AgentBody> make_agent_body(F&& f, Args&&... args) {
  static_assert(std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>,
                "tandem::Thread/Process: the callable cannot be invoked with these arguments");
  return std::make_unique<AgentBodyFor<std::decay_t<F>, std::decay_t<Args>...>>(std::forward<F>(f),
                                                                                std::forward<Args>(args)...);
}

// "Thread-3", "Process-1": one counter per kind, like Python's.
std::string default_agent_name(const char* kind);

}  // namespace detail
}  // namespace tandem
