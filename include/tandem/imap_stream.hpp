// ImapStream: the lazy range that a pool's imap and imap_unordered return, for ThreadPool and
// ProcessPool alike.
//
//   for (int square : pool.imap([](int x) { return x * x; }, std::views::iota(0))) { ... }
#pragma once

#include <algorithm>
#include <cstddef>
#include <deque>
#include <exception>
#include <memory>
#include <optional>
#include <utility>
#include <ranges>
#include <vector>

#include "tandem/detail/inbox.hpp"
#include "tandem/future.hpp"

namespace tandem {

namespace detail {
// Read-ahead of imap, in chunks: enough to keep every worker busy while the consumer reads.
inline std::size_t imap_window(std::size_t workers) { return 2 * workers + 2; }
}  // namespace detail

// The range that imap and imap_unordered return: pull results with range-for or next().
template <class Pool, class R, class View, class F, bool Ordered>
class ImapStream {
 public:
  using Chunk = std::vector<R>;

  ImapStream(Pool& pool, View view, F f, std::size_t chunksize)
      : pool_(pool),
        view_(std::move(view)),
        f_(std::make_shared<F>(std::move(f))),
        chunksize_(std::max<std::size_t>(1, chunksize)),
        window_limit_(detail::imap_window(pool.size())) {}
  ImapStream(const ImapStream&) = delete;
  ImapStream& operator=(const ImapStream&) = delete;
  // Pending chunks are cancelled; running ones finish on their own (they own their inputs).
  ~ImapStream() {
    for (auto& future : window_) future.cancel();
  }

  // The next result; nullopt at the end. Rethrows the exception of the element's chunk (and
  // goes on after it). An input range that throws while it is read: the results of what it
  // yielded before come first, then its exception, then the end (as Python's imap).
  std::optional<R> next() { return next_by(detail::Clock::time_point::max()); }
  // Like next(), but throws TimeoutError when no result is ready within `timeout` (by `deadline`).
  template <class Rep, class Period>
  std::optional<R> next_for(std::chrono::duration<Rep, Period> timeout) {
    return next_by(detail::deadline_after(timeout));
  }
  template <class Clock, class Duration>
  std::optional<R> next_until(std::chrono::time_point<Clock, Duration> deadline) {
    return next_by(detail::deadline_at(deadline));
  }

  using iterator = detail::NextIterator<ImapStream, R>;
  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() { return {}; }

 private:
  std::optional<R> next_by(detail::Clock::time_point deadline) {
    while (position_ == current_.size()) {
      fill_window();
      if (window_.empty()) {
        // The input failed: what it yielded before has been delivered, now its error, then the end.
        if (input_error_) std::rethrow_exception(std::exchange(input_error_, nullptr));
        return std::nullopt;
      }
      Future<Chunk> done = take_done(deadline);
      current_.clear();
      position_ = 0;
      auto& state = detail::FutureAccess::state(done);
      if (state.phase() != detail::kValue) detail::rethrow_outcome(state);
      current_ = state.take_value();
    }
    return std::move(current_[position_++]);
  }

  Future<Chunk> take_done(detail::Clock::time_point deadline) {
    if constexpr (Ordered) {
      if (!window_.front().wait_until(deadline)) detail::throw_timeout("imap: no result arrived in time");
      Future<Chunk> done = std::move(window_.front());
      window_.pop_front();
      return done;
    } else {
      if (inbox_->empty()) detail::run_one_here(window_);
      std::optional<const void*> id = inbox_->pop(deadline);
      if (!id) detail::throw_timeout("imap_unordered: no result arrived in time");
      auto it = std::ranges::find_if(window_, [&](const Future<Chunk>& f) { return f.id() == *id; });
      Future<Chunk> done = std::move(*it);
      window_.erase(it);
      return done;
    }
  }

  void fill_window() {
    if (!started_) {
      input_ = std::ranges::begin(view_);
      started_ = true;
    }
    while (!input_failed_ && window_.size() < window_limit_ && *input_ != std::ranges::end(view_)) {
      std::vector<std::ranges::range_value_t<View>> items;
      items.reserve(chunksize_);
      try {
        for (; items.size() < chunksize_ && *input_ != std::ranges::end(view_); ++*input_) items.push_back(**input_);
      } catch (...) {
        // Raised once the elements read before it are delivered; the input is not read again.
        input_error_ = std::current_exception();
        input_failed_ = true;
        if (items.empty()) return;
      }
      Future<Chunk> future = pool_.submit_chunk(f_, std::move(items));
      if constexpr (!Ordered) {
        detail::FutureAccess::state(future).on_ready([inbox = std::weak_ptr(inbox_), id = future.id()] {
          if (const auto alive = inbox.lock()) alive->push(id);
        });
      }
      window_.push_back(std::move(future));
    }
  }

  Pool& pool_;
  View view_;
  std::shared_ptr<F> f_;
  std::size_t chunksize_;
  std::size_t window_limit_;
  bool started_ = false;
  std::optional<std::ranges::iterator_t<View>> input_;
  bool input_failed_ = false;
  std::exception_ptr input_error_;
  std::deque<Future<Chunk>> window_;
  std::shared_ptr<detail::Inbox<const void*>> inbox_ = std::make_shared<detail::Inbox<const void*>>();
  Chunk current_;
  std::size_t position_ = 0;
};

}  // namespace tandem
