#include "tandem/thread.hpp"

#include <unistd.h>

#include <atomic>
#include <thread>

#include "tandem/error.hpp"

namespace tandem {
namespace detail {

struct ThreadState {
  AgentOptions options;
  std::unique_ptr<AgentBody> body;
  std::thread thread;
  bool started = false;
  // 0 while running, 1 once the callable returned or threw: the futex join_for sleeps on.
  std::atomic<std::uint32_t> finished{0};
  std::atomic<long> tid{0};
  std::exception_ptr error;
};

}  // namespace detail

namespace {

void check_not_started(const detail::ThreadState& state, const char* what) {
  if (state.started) throw Error(std::string("Thread::") + what + ": the thread has already been started");
}

// Whether the caller is the agent's own thread. It compares the id the thread published itself,
// since the std::thread handle may still be being assigned by start() when the thread runs.
bool is_current(const detail::ThreadState& state) {
  return state.tid.load(std::memory_order_acquire) == static_cast<long>(gettid());
}

bool wait_finished(detail::ThreadState& state, detail::Clock::time_point deadline) {
  return detail::block_until([&] { return state.finished.load(std::memory_order_acquire) != 0; },
                             [&](detail::Clock::time_point d) { detail::futex_wait(state.finished, 0, d); }, deadline);
}

}  // namespace

Thread::Thread(AgentOptions options, std::unique_ptr<detail::AgentBody> body)
    : state_(std::make_shared<detail::ThreadState>()) {
  if (options.name.empty()) options.name = detail::default_agent_name("Thread");
  state_->options = std::move(options);
  state_->body = std::move(body);
}

Thread::Thread(Thread&&) noexcept = default;

Thread& Thread::operator=(Thread&& other) noexcept {
  if (this != &other) {
    Thread doomed(std::move(*this));  // joins or detaches what this held, as its destructor would
    state_ = std::move(other.state_);
  }
  return *this;
}

Thread::~Thread() {
  if (!state_ || !state_->started || !state_->thread.joinable()) return;
  if (state_->options.daemon || is_current(*state_)) {
    state_->thread.detach();
  } else {
    state_->thread.join();
  }
}

detail::ThreadState& Thread::state() const {
  if (!state_) throw Error("Thread: this object was moved from");
  return *state_;
}

void Thread::start() {
  auto& state = this->state();
  check_not_started(state, "start");
  // Marked before the thread exists, so the new thread sees it (it may call join() on itself);
  // undone if std::thread's constructor throws.
  state.started = true;
  try {
    start_thread(state);
  } catch (...) {
    state.started = false;
    throw;
  }
}

void Thread::start_thread(detail::ThreadState& state) {
  // The thread holds its own reference: a detached daemon outlives this object safely.
  state.thread = std::thread([shared = state_] {
    shared->tid.store(gettid(), std::memory_order_release);
    try {
      shared->body->run();
    } catch (...) {
      shared->error = std::current_exception();
    }
    shared->body.reset();
    shared->finished.store(1, std::memory_order_release);
    detail::futex_wake_all(shared->finished);
  });
}

void Thread::join() { join_until(detail::Clock::time_point::max()); }

bool Thread::join_by(detail::Clock::time_point deadline) {
  auto& state = this->state();
  if (!state.started) throw Error("Thread::join: the thread has not been started");
  if (is_current(state)) throw Error("Thread::join: a thread cannot join itself");
  if (!wait_finished(state, deadline)) return false;
  if (state.thread.joinable()) state.thread.join();
  return true;
}

bool Thread::is_alive() const {
  const auto& state = this->state();
  return state.started && state.finished.load(std::memory_order_acquire) == 0;
}

const std::string& Thread::name() const { return state().options.name; }

void Thread::set_name(std::string name) {
  auto& state = this->state();
  check_not_started(state, "set_name");
  state.options.name = std::move(name);
}

bool Thread::daemon() const { return state().options.daemon; }

void Thread::set_daemon(bool daemon) {
  auto& state = this->state();
  check_not_started(state, "set_daemon");
  state.options.daemon = daemon;
}

long Thread::id() const {
  const auto& state = this->state();
  if (!state.started) throw Error("Thread::id: the thread has not been started");
  // The new thread publishes its id first thing; this wait is a few microseconds at most.
  while (state.tid.load(std::memory_order_acquire) == 0) std::this_thread::yield();
  return state.tid.load(std::memory_order_acquire);
}

std::exception_ptr Thread::exception() const {
  const auto& state = this->state();
  if (!state.started) throw Error("Thread::exception: the thread has not been started");
  if (state.finished.load(std::memory_order_acquire) == 0) throw Error("Thread::exception: the thread is still running; join it first");
  return state.error;
}

}  // namespace tandem
