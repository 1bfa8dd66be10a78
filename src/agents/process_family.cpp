#include "agents/process_family.hpp"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <new>
#include <optional>
#include <utility>
#include <vector>

#include "tandem/detail/codec.hpp"

namespace tandem {
namespace detail {
namespace {

// Set once, as the child starts, before it runs anything of the user's.
struct Family {
  std::string name = "MainProcess";
  std::optional<ProcessInfo> parent;
};

Family& family() {
  static Family instance;
  return instance;
}

struct Child {
  ProcessIdentity identity;
  std::string name;
};

class Children {
 public:
  static Children& instance() {
    static Children children;
    return children;
  }
  // A forked child has no children yet, and its copies of the lock and list may be mid-change in
  // a thread that does not exist there: both are made anew (the old list's memory is left).
  static void start_afresh_in_forked_child() {
    new (&instance().mutex_) std::mutex;
    new (&instance().children_) std::vector<Child>;
  }
  void add(Child child) {
    std::lock_guard lock(mutex_);
    children_.push_back(std::move(child));
  }
  void remove(long pid) {
    std::lock_guard lock(mutex_);
    std::erase_if(children_, [pid](const Child& child) { return child.identity.pid == pid; });
  }
  std::vector<ProcessInfo> alive() {
    std::lock_guard lock(mutex_);
    std::vector<ProcessInfo> out;
    for (const Child& child : children_) {
      if (child.identity.alive()) out.push_back({child.identity.pid, child.name});
    }
    return out;
  }

 private:
  std::mutex mutex_;
  std::vector<Child> children_;
};

// Registered at start-up, not at first use (see shared_memory.cpp's registry for why).
[[maybe_unused]] const bool children_start_afresh =
    ::pthread_atfork(nullptr, nullptr, &Children::start_afresh_in_forked_child) == 0;

}  // namespace

void become_child(std::string name, ProcessInfo parent) {
  family().name = std::move(name);
  family().parent = std::move(parent);
}

void encode_family(ByteWriter& out, const std::string& child_name) {
  encode_text(out, child_name);
  out.write_raw(static_cast<std::int64_t>(::getpid()));
  encode_text(out, family().name);
}

void adopt_family(ByteReader& in) {
  std::string name = decode_text(in);
  const auto parent_pid = in.read_raw<std::int64_t>();
  std::string parent_name = decode_text(in);
  become_child(std::move(name), {static_cast<long>(parent_pid), std::move(parent_name)});
}

void add_child(const ProcessIdentity& child, const std::string& name) { Children::instance().add({child, name}); }
void remove_child(long pid) { Children::instance().remove(pid); }

}  // namespace detail

ProcessInfo current_process() { return {static_cast<long>(::getpid()), detail::family().name}; }
std::optional<ProcessInfo> parent_process() { return detail::family().parent; }
std::vector<ProcessInfo> active_children() { return detail::Children::instance().alive(); }

}  // namespace tandem
