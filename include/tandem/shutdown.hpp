// ShutdownOptions: how a pool (ThreadPool, ProcessPool) shuts down, named rather than two bools.
//
//   pool.shutdown({.wait = false, .cancel_pending = true});   // Python: shutdown(False, cancel_futures=True)
#pragma once

namespace tandem {

struct ShutdownOptions {
  // Block until every worker has finished (false: return at once; the destructor joins them).
  // The timed forms, shutdown_for and shutdown_until, wait up to their limit instead; given
  // false, they do not wait at all and report whether the workers had finished already.
  bool wait = true;
  // Cancel the tasks that have not started (their futures throw CancelledError), as Python's
  // cancel_futures; false: they all run first.
  bool cancel_pending = false;
};

}  // namespace tandem
