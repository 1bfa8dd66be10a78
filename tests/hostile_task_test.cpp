// Tasks that attack their own worker process, on every start method: they close or replace its
// descriptors, scribble over its rings, truncate the memory files they were handed, fork, call
// setsid, exec. The pool's contract (docs/process_pool.md, "What a task can do to its pool"):
// the worst a task can do is lose its own result (a typed error, never a hang) and its worker
// (replaced); every other task gets its own result, never another's; the pool keeps its size.
//
// The attacks know the worker's layout (src/pool/worker.hpp), as an adversary reading the source would.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tandem/process_pool.hpp"
#include "pool/worker.hpp"

using namespace std::chrono_literals;

namespace {

constexpr std::size_t kRingBytes = std::size_t{1} << 16;  // results above 8 KiB travel in files

class HostileTask : public ::testing::TestWithParam<tandem::StartMethod> {
 protected:
  tandem::ProcessPoolOptions options(std::size_t workers = 2) const {
    tandem::ProcessPoolOptions options;
    options.workers = workers;
    options.ring_bytes = kRingBytes;
    options.start_method = GetParam();
    return options;
  }
};

int echo(int x) { return x; }

std::vector<std::uint8_t> large_result(int seed) { return std::vector<std::uint8_t>(100'000, static_cast<std::uint8_t>(seed)); }

// Every other task gets its own result, small and large.
void expect_the_pool_goes_on(tandem::ProcessPool& pool) {
  std::vector<tandem::Future<int>> small;
  for (int i = 0; i < 40; ++i) small.push_back(pool.submit(&echo, i));
  auto large = pool.submit(&large_result, 9);
  for (int i = 0; i < 40; ++i) {
    try {
      EXPECT_EQ(small[static_cast<std::size_t>(i)].get_for(10s), i) << "task " << i << " got another's result";
    } catch (const tandem::Error& e) {
      ADD_FAILURE() << "an innocent task failed: " << e.what();
    }
  }
  try {
    EXPECT_EQ(large.get_for(10s), large_result(9));
  } catch (const tandem::Error& e) {
    ADD_FAILURE() << "an innocent large result failed: " << e.what();
  }
}

// The hostile task's own outcome: its value, or the loss of its worker, and never a hang.
template <class R>
void expect_at_most_its_own_result_lost(tandem::Future<R>& future, const R& value) {
  try {
    EXPECT_EQ(future.get_for(10s), value);
  } catch (const tandem::WorkerLost&) {
    // Its worker broke (or was killed for breaking the protocol): acceptable, and typed.
  } catch (const tandem::TimeoutError&) {
    ADD_FAILURE() << "the hostile task's future hangs";
  }
}

// In a worker: its own mapping (the shared header and the two rings), found by its size.
tandem::detail::WorkerShared* own_worker_memory() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    if (line.find("memfd:tandem") == std::string::npos) continue;
    unsigned long start = 0, end = 0;
    std::sscanf(line.c_str(), "%lx-%lx", &start, &end);
    if (end - start == tandem::detail::worker_mapping_bytes(kRingBytes, 0)) {
      return reinterpret_cast<tandem::detail::WorkerShared*>(start);
    }
  }
  return nullptr;
}
std::byte* response_ring_bytes(tandem::detail::WorkerShared* shared) {
  return reinterpret_cast<std::byte*>(shared) + tandem::detail::kWorkerHeaderBytes + kRingBytes;
}

std::vector<int> descriptors_linking_to(const std::string& target) {
  std::vector<int> found;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code error;
    if (std::filesystem::read_symlink(entry.path(), error).string().rfind(target, 0) == 0) {
      found.push_back(std::stoi(entry.path().filename().string()));
    }
  }
  return found;
}

TEST_P(HostileTask, ClosingEveryDescriptorLosesAtMostItsOwnResult) {
  tandem::ProcessPool pool(options());
  auto hostile = pool.submit([] {
    ::syscall(SYS_close_range, 3u, ~0u, 0u);
    return 7;
  });
  expect_at_most_its_own_result_lost(hostile, 7);
  expect_the_pool_goes_on(pool);
}

// A task that closes the descriptors a program usually has (3..1023) finds none of its worker's
// there: they live above, where such a loop does not reach, so even its own result arrives.
TEST_P(HostileTask, ClosingTheUsualDescriptorsLeavesTheWorkersOwn) {
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_max <= 1100) GTEST_SKIP() << "the hard descriptor limit leaves no room above 1023";
  tandem::ProcessPool pool(options());
  auto hostile = pool.submit([] {
    for (int fd = 3; fd < 1024; ++fd) ::close(fd);
    return std::vector<std::uint8_t>(50'000, 3);  // a large result needs the worker's descriptors
  });
  EXPECT_EQ(hostile.get_for(10s), std::vector<std::uint8_t>(50'000, 3));
  expect_the_pool_goes_on(pool);
}

// The worker's wake-up descriptor replaced by the user's log file: tandem never writes into it.
TEST_P(HostileTask, ALogFileDupedOverTheWakeUpDescriptorGetsNoBytes) {
  char path[] = "/tmp/tandem-hostile-log-XXXXXX";
  const int log = ::mkstemp(path);
  ASSERT_GE(log, 0);
  ::close(log);
  {
    tandem::ProcessPool pool(options());
    auto hostile = pool.submit(
        [](std::string log_path) {
          const int file = ::open(log_path.c_str(), O_WRONLY | O_APPEND);
          for (const int fd : descriptors_linking_to("anon_inode:[eventfd]")) ::dup2(file, fd);
          for (const int fd : descriptors_linking_to("socket:")) ::dup2(file, fd);
          ::close(file);
          return 7;
        },
        std::string(path));
    std::this_thread::sleep_for(100ms);  // nobody collects now: the worker must wake the pool
    expect_at_most_its_own_result_lost(hostile, 7);
    expect_the_pool_goes_on(pool);
  }
  struct stat info {};
  ::stat(path, &info);
  ::unlink(path);
  EXPECT_EQ(info.st_size, 0) << "the pool's own bytes went into the user's file";
}

// A double close that hits the worker's descriptors, and a new file that takes their numbers.
TEST_P(HostileTask, ClosingTheWorkersDescriptorsByMistakeLosesAtMostItsOwnResult) {
  tandem::ProcessPool pool(options());
  auto hostile = pool.submit([] {
    for (const int fd : descriptors_linking_to("anon_inode:[eventfd]")) ::close(fd);
    for (const int fd : descriptors_linking_to("socket:")) ::close(fd);
    for (const int fd : descriptors_linking_to("/memfd:")) ::close(fd);
    for (int i = 0; i < 8; ++i) ::open("/dev/null", O_RDONLY);  // take the freed numbers
    return 7;
  });
  std::this_thread::sleep_for(100ms);
  expect_at_most_its_own_result_lost(hostile, 7);
  expect_the_pool_goes_on(pool);
}

// A task replays an old response in its ring (copies the last frame and moves the head past it):
// an answer to nothing that was asked. Neither it nor anybody after it may take that answer.
TEST_P(HostileTask, AReplayedResponseIsNeverDelivered) {
  tandem::ProcessPool pool(options(1));
  EXPECT_EQ(pool.submit(&echo, 5).get(), 5);
  auto hostile = pool.submit([] {
    auto* shared = own_worker_memory();
    if (!shared) return -1;
    std::byte* ring = response_ring_bytes(shared);
    const std::uint64_t head = shared->responses.head.load();
    for (std::uint64_t size = 8; size <= 256 && size <= head; size += 8) {
      std::uint32_t header[2];
      std::memcpy(header, ring + ((head - size) & (kRingBytes - 1)), sizeof header);
      if (header[1] != 1 || 8 + ((header[0] + 7) & ~7u) != size) continue;
      std::memmove(ring + (head & (kRingBytes - 1)), ring + ((head - size) & (kRingBytes - 1)), size);
      shared->responses.head.store(head + size);
      return 1;
    }
    return -2;
  });
  auto innocent = pool.submit(&echo, 6);
  try {
    const int value = hostile.get_for(10s);
    EXPECT_NE(value, 5) << "the task got the replayed answer of an earlier one";
    EXPECT_EQ(value, 1);
  } catch (const tandem::WorkerLost&) {
  }
  try {
    EXPECT_EQ(innocent.get_for(10s), 6) << "an innocent task got the hostile task's value";
  } catch (const tandem::WorkerLost&) {
    // It ran on the broken worker: lost, not misdelivered.
  }
  expect_the_pool_goes_on(pool);
}

// Two wrap markers and a head far ahead: reading the ring must stop, not loop for ever.
TEST_P(HostileTask, ACorruptRingIsAProtocolErrorNotAHang) {
  tandem::ProcessPool pool(options());
  auto hostile = pool.submit([] {
    auto* shared = own_worker_memory();
    if (!shared) return -1;
    std::byte* ring = response_ring_bytes(shared);
    const std::uint64_t head = shared->responses.head.load();
    const std::uint32_t wrap[2] = {0, 2};
    std::memcpy(ring + (head & (kRingBytes - 1)), wrap, sizeof wrap);
    std::memcpy(ring, wrap, sizeof wrap);
    shared->responses.head.store(head + (std::uint64_t{1} << 62));
    return 1;
  });
  const auto start = std::chrono::steady_clock::now();
  expect_at_most_its_own_result_lost(hostile, 1);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  expect_the_pool_goes_on(pool);
}

// A frame whose length runs past the ring, and a request ring whose tail (the worker's to write)
// is ahead of its head.
TEST_P(HostileTask, GarbageControlWordsAreProtocolErrors) {
  tandem::ProcessPool pool(options());
  auto bad_frame = pool.submit([] {
    auto* shared = own_worker_memory();
    if (!shared) return -1;
    const std::uint64_t head = shared->responses.head.load();
    const std::uint32_t header[2] = {0xfffffff0u, 1};
    std::memcpy(response_ring_bytes(shared) + (head & (kRingBytes - 1)), header, sizeof header);
    shared->responses.head.store(head + 64);
    return 1;
  });
  expect_at_most_its_own_result_lost(bad_frame, 1);
  auto bad_tail = pool.submit([] {
    auto* shared = own_worker_memory();
    if (!shared) return -1;
    shared->requests.tail.store(shared->requests.head.load() + 12'345);
    return 1;
  });
  expect_at_most_its_own_result_lost(bad_tail, 1);
  expect_the_pool_goes_on(pool);
}

// A task truncates every memory file it holds (its large request's, its result files): the pool
// maps those files too, and must not die of SIGBUS reading or reusing them.
TEST_P(HostileTask, TruncatingItsMemoryFilesCannotCrashThePool) {
  tandem::ProcessPool pool(options());
  for (int round = 0; round < 3; ++round) {
    auto hostile = pool.submit(
        [](const std::vector<std::uint8_t>& big) {
          for (const int fd : descriptors_linking_to("/memfd:")) (void)::ftruncate(fd, 0);
          return std::vector<std::uint8_t>(big.size(), 1);
        },
        std::vector<std::uint8_t>(200'000, 2));
    try {
      const auto result = hostile.get_for(10s);
      EXPECT_EQ(result.size(), 200'000u);
    } catch (const tandem::Error& e) {
      // Its own result may be lost (typed), nothing more.
      EXPECT_EQ(dynamic_cast<const tandem::TimeoutError*>(&e), nullptr) << e.what();
    }
    std::vector<tandem::Future<std::size_t>> large;
    for (int i = 0; i < 6; ++i) {
      large.push_back(pool.submit([](const std::vector<std::uint8_t>& v) { return v.size(); },
                                  std::vector<std::uint8_t>(150'000 + static_cast<std::size_t>(i), 3)));
    }
    for (int i = 0; i < 6; ++i) EXPECT_EQ(large[static_cast<std::size_t>(i)].get_for(10s), 150'000u + static_cast<std::size_t>(i));
  }
  expect_the_pool_goes_on(pool);
}

// The child of a fork inside a task returns into the worker's loop: it must not answer anything.
TEST_P(HostileTask, AForkedChildOfATaskNeverAnswers) {
  tandem::ProcessPool pool(options());
  for (int round = 0; round < 5; ++round) {
    auto hostile = pool.submit([] {
      const pid_t child = ::fork();
      if (child == 0) return 666;  // the child returns, as a careless task would
      ::waitpid(child, nullptr, 0);
      return 1;
    });
    expect_at_most_its_own_result_lost(hostile, 1);
  }
  auto throwing = pool.submit([] {
    if (::fork() == 0) throw std::runtime_error("from the child");
    ::wait(nullptr);
    return 1;
  });
  expect_at_most_its_own_result_lost(throwing, 1);
  expect_the_pool_goes_on(pool);
}

// The forked child of a task cannot stop its timer (it has none of the memory the worker shares
// with its pool): the parent, which hangs, still ends in TaskTimeout.
TEST_P(HostileTask, AForkedChildCannotStopItsParentsTimer) {
  auto options = this->options();
  options.task_timeout = 300ms;
  tandem::ProcessPool pool(options);
  auto hostile = pool.submit([] {
    if (::fork() == 0) return 0;  // the child returns into the worker's loop
    for (;;) ::pause();
  });
  EXPECT_THROW(hostile.get_for(10s), tandem::TaskTimeout);
  expect_the_pool_goes_on(pool);
}

// A task that grows its result file to 4 GiB (sparse) before a small large result: the pool maps
// only what the worker says it wrote, and allocates nothing for the rest.
TEST_P(HostileTask, AHugeSparseResultFileCostsThePoolNothing) {
  const auto rss_kib = [] {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    }
    return 0L;
  };
  tandem::ProcessPool pool(options());
  const long before = rss_kib();
  auto hostile = pool.submit([] {
    for (const int fd : descriptors_linking_to("/memfd:")) (void)::ftruncate(fd, off_t{1} << 32);
    return std::vector<std::uint8_t>(100'000, 7);
  });
  try {
    EXPECT_EQ(hostile.get_for(10s), std::vector<std::uint8_t>(100'000, 7));
  } catch (const tandem::WorkerLost&) {
  }
  EXPECT_LT(rss_kib() - before, 256 * 1024) << "the pool populated the sparse file";
  expect_the_pool_goes_on(pool);
}

TEST_P(HostileTask, SetsidAndExecLoseAtMostTheirOwnResult) {
  tandem::ProcessPool pool(options());
  auto detached = pool.submit([] { return static_cast<int>(::setsid() > 0); });
  expect_at_most_its_own_result_lost(detached, 1);
  auto replaced = pool.submit([] {
    ::execl("/bin/true", "true", static_cast<char*>(nullptr));
    return 0;
  });
  EXPECT_THROW(replaced.get_for(10s), tandem::WorkerLost);
  expect_the_pool_goes_on(pool);
}

// The word every worker of a pool shares: a task that says "somebody is collecting" for ever
// must not leave results uncollected.
TEST_P(HostileTask, AScribbledPoolWordDelaysNothingForEver) {
  tandem::ProcessPool pool(options());
  auto hostile = pool.submit([] {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line)) {
      unsigned long start = 0, end = 0;
      std::sscanf(line.c_str(), "%lx-%lx", &start, &end);
      if (line.find("memfd:tandem") != std::string::npos && end - start == 4096) {
        auto* pool_word = reinterpret_cast<tandem::detail::PoolShared*>(start);
        pool_word->active_collectors.store(1'000'000);
      }
    }
    return 1;
  });
  expect_at_most_its_own_result_lost(hostile, 1);
  std::this_thread::sleep_for(50ms);
  auto later = pool.submit(&echo, 3);
  std::this_thread::sleep_for(300ms);  // the caller is not collecting: only the pool can
  EXPECT_EQ(later.get_for(10s), 3);
  expect_the_pool_goes_on(pool);
}

// A position read from the shared word off the 8-byte frame grid (as a pool reads back a dead
// worker's ring from where the worker said it was) is corrupt, not a header read past the end.
// Found by the ring fuzzer.
TEST(HostileRing, APositionOffTheFrameGridIsCorrupt) {
  std::vector<std::byte> bytes(4096);
  tandem::detail::RingControl control;
  control.tail.store(4092);
  control.head.store(4100);
  tandem::detail::ByteRing ring(&control, bytes.data(), bytes.size());
  std::span<const std::byte> message;
  EXPECT_EQ(ring.peek(message), tandem::detail::ByteRing::Peek::corrupt);
  control.tail.store(8);
  control.head.store(8 + 4096 + 8);  // more than a ring ahead
  tandem::detail::ByteRing far(&control, bytes.data(), bytes.size());
  EXPECT_EQ(far.peek(message), tandem::detail::ByteRing::Peek::corrupt);
}

INSTANTIATE_TEST_SUITE_P(EachStartMethod, HostileTask,
                         ::testing::Values(tandem::StartMethod::fork, tandem::StartMethod::forkserver,
                                           tandem::StartMethod::spawn),
                         [](const auto& info) { return std::string(tandem::to_string(info.param)); });

}  // namespace
