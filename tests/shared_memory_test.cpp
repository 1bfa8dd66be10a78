// SharedMemory: the same bytes on both sides, for every agent kind; names that are private,
// exclusive, and never left behind, even by a creator killed with SIGKILL.
#include "tandem/shared_memory.hpp"

#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <set>
#include <string>
#include <thread>

#include "agent_kinds.hpp"
#include "ipc/segment_janitor.hpp"
#include "tandem/error.hpp"

using namespace std::chrono_literals;

namespace {

bool exists_in_dev_shm(const std::string& name) {
  struct stat info {};
  return ::stat(("/dev/shm" + name).c_str(), &info) == 0;
}

int open_descriptors() {
  int count = 0;
  DIR* dir = ::opendir("/proc/self/fd");
  while (::readdir(dir) != nullptr) ++count;
  ::closedir(dir);
  return count;
}

std::string unique_name(const char* what) {
  return "/tandem-test-" + std::string(what) + "-" + std::to_string(::getpid()) + "-" +
         std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
}

// Fills `memory` with 0, 1, 2 ... (mod 251) from another agent.
void fill_pattern(tandem::SharedMemory memory) {
  for (std::size_t i = 0; i < memory.size(); ++i) memory.data()[i] = std::byte(i % 251);
}

void expect_pattern(const tandem::SharedMemory& memory) {
  for (std::size_t i = 0; i < memory.size(); ++i) {
    ASSERT_EQ(memory.data()[i], std::byte(i % 251)) << "at " << i;
  }
}

class SharedMemoryAcrossAgents : public ::testing::TestWithParam<AgentKind> {};

TEST_P(SharedMemoryAcrossAgents, AnonymousMemoryIsTheSameBytesOnBothSides) {
  tandem::SharedMemory memory(3 * 4096 + 17);
  EXPECT_TRUE(memory.name().empty());
  EXPECT_TRUE(memory.is_creator());
  TestAgent agent(GetParam(), fill_pattern, memory);
  agent.join();
  expect_pattern(memory);
}

TEST_P(SharedMemoryAcrossAgents, NamedMemoryIsOpenedByNameInTheOtherAgent) {
  auto memory = tandem::SharedMemory::create(5000);
  TestAgent agent(
      GetParam(),
      [](std::string name) {
        auto opened = tandem::SharedMemory::open(name);
        if (opened.is_creator() || opened.size() != 5000) throw std::runtime_error("wrong memory opened");
        fill_pattern(opened);
      },
      memory.name());
  agent.join();
  expect_pattern(memory);
}

TEST_P(SharedMemoryAcrossAgents, NamedMemoryHandlePassedAsAnArgument) {
  auto memory = tandem::SharedMemory::create(4096);
  TestAgent agent(GetParam(), fill_pattern, memory);
  agent.join();
  expect_pattern(memory);
}

TEST_P(SharedMemoryAcrossAgents, TheNameOfAKilledCreatorIsRemoved) {
  if (GetParam() == AgentKind::thread) GTEST_SKIP() << "a thread cannot be killed alone";
  const std::string name = unique_name("killed");
  TestAgent agent(
      GetParam(),
      [](std::string segment_name) {
        auto memory = tandem::SharedMemory::create(4096, segment_name);
        ::raise(SIGKILL);
      },
      name);
  agent.join();
  EXPECT_EQ(agent.exitcode(), -SIGKILL);
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  while (exists_in_dev_shm(name) && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  EXPECT_FALSE(exists_in_dev_shm(name)) << name << " outlived its creator";
}

INSTANTIATE_TEST_SUITE_P(EachAgent, SharedMemoryAcrossAgents, ::testing::ValuesIn(kAllAgentKinds), agent_kind_name);

TEST(SharedMemory, NamedMemoryIsExclusiveOwnerOnlyAndRemovedWithItsCreator) {
  std::string name;
  {
    auto memory = tandem::SharedMemory::create(100);
    name = memory.name();
    EXPECT_EQ(name.rfind("/tandem-", 0), 0u) << name;
    struct stat info {};
    ASSERT_EQ(::stat(("/dev/shm" + name).c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0777, 0600u);
    EXPECT_THROW(tandem::SharedMemory::create(100, name), tandem::Error);
    auto opened = tandem::SharedMemory::open(name);
    EXPECT_FALSE(opened.is_creator());
    opened.data()[7] = std::byte{42};
    EXPECT_EQ(memory.data()[7], std::byte{42});
  }
  EXPECT_FALSE(exists_in_dev_shm(name));
  EXPECT_THROW(tandem::SharedMemory::open(name), tandem::Error);
}

TEST(SharedMemory, AnOpenerKeepsItsMappingAfterTheNameIsGone) {
  auto creator = std::make_unique<tandem::SharedMemory>(tandem::SharedMemory::create(64));
  auto opened = tandem::SharedMemory::open(creator->name());
  creator->data()[0] = std::byte{9};
  const std::string name = creator->name();
  creator.reset();
  EXPECT_FALSE(exists_in_dev_shm(name));
  EXPECT_EQ(opened.data()[0], std::byte{9});
}

TEST(SharedMemory, UnpredictableNamesAndNamesWithoutASlash) {
  std::set<std::string> names;
  for (int i = 0; i < 20; ++i) names.insert(tandem::SharedMemory::create(1).name());
  EXPECT_EQ(names.size(), 20u);
  const std::string plain = unique_name("plain").substr(1);
  auto memory = tandem::SharedMemory::create(1, plain);
  EXPECT_EQ(memory.name(), "/" + plain);
}

TEST(SharedMemory, BadRequestsAreErrors) {
  EXPECT_THROW(tandem::SharedMemory(0), tandem::Error);
  EXPECT_THROW(tandem::SharedMemory::create(0), tandem::Error);
  EXPECT_THROW(tandem::SharedMemory::create(1, "a/b"), tandem::Error);
  EXPECT_THROW(tandem::SharedMemory::create(1, std::string(300, 'x')), tandem::Error);
  EXPECT_THROW(tandem::SharedMemory::open(unique_name("missing")), tandem::Error);
}

TEST(SharedMemory, MoreThanDevShmHoldsIsAnErrorAtOnceNamingWhatIsFree) {
  try {
    tandem::SharedMemory::create(std::size_t{1} << 50);
    FAIL() << "a petabyte of /dev/shm was granted";
  } catch (const tandem::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/dev/shm has"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("free"), std::string::npos) << e.what();
  }
}

// Sizes are checked before anything is reserved: an overflow near SIZE_MAX is an error, not a
// segment "of 2^64-1 bytes" over one page, and more than the machine can back is an error naming
// what it can, not a global out-of-memory.
TEST(SharedMemory, SizesBeyondWhatTheSystemCanBackAreErrorsBeforeAnythingIsReserved) {
  const auto expect_refused = [](auto make, const char* what) {
    const auto start = std::chrono::steady_clock::now();
    try {
      make();
      ADD_FAILURE() << what << " was granted";
    } catch (const tandem::Error& e) {
      EXPECT_NE(std::string(e.what()).find("can back"), std::string::npos) << what << ": " << e.what();
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s) << what << " reserved memory before refusing";
  };
  expect_refused([] { tandem::SharedMemory memory(SIZE_MAX); }, "SIZE_MAX anonymous bytes");
  expect_refused([] { tandem::SharedMemory memory(SIZE_MAX - 10); }, "SIZE_MAX - 10 anonymous bytes");
  expect_refused([] { tandem::SharedMemory::create(SIZE_MAX - 10); }, "SIZE_MAX - 10 named bytes");
  expect_refused([] { tandem::SharedMemory memory(std::size_t{1} << 62); }, "2^62 anonymous bytes");
  struct sysinfo machine {};
  ::sysinfo(&machine);
  const std::size_t everything = (machine.totalram + machine.totalswap) * machine.mem_unit;
  expect_refused([everything] { tandem::SharedMemory memory(everything + (std::size_t{1} << 30)); },
                 "more than memory and swap");
  tandem::SharedMemory fits(std::size_t{1} << 20);
  EXPECT_EQ(fits.size(), std::size_t{1} << 20);
}

TEST(SharedMemory, AHandleWhoseMemoryIsGoneIsAnErrorNotOtherMemory) {
  tandem::detail::ByteWriter out;
  {
    tandem::SharedMemory memory(64);
    tandem::detail::Traveller<tandem::SharedMemory>::encode(out, memory);
  }
  tandem::SharedMemory other(64);  // may take the freed descriptor number
  tandem::detail::ByteReader in(out.bytes());
  EXPECT_THROW(tandem::detail::Traveller<tandem::SharedMemory>::decode(in), tandem::Error);
}

// The janitor killed: the next name starts a new one, which is told every name still tracked,
// so the names made before its death are removed with their creator too. (In a forked child, whose
// death by SIGKILL leaves the removal to its janitor alone.)
TEST(SharedMemory, AKilledJanitorIsReplacedAndForgetsNoName) {
  const std::string before = unique_name("before-janitor-death"), after = unique_name("after-janitor-death");
  const pid_t child = ::fork();
  if (child == 0) {
    auto first = tandem::SharedMemory::create(4096, before);
    const pid_t janitor = tandem::detail::janitor_pid();
    if (janitor <= 0) std::_Exit(2);
    ::kill(janitor, SIGKILL);
    for (int i = 0; i < 200 && ::kill(janitor, 0) == 0; ++i) std::this_thread::sleep_for(5ms);
    try {
      auto second = tandem::SharedMemory::create(4096, after);
      if (tandem::detail::janitor_pid() == janitor) std::_Exit(3);
      ::raise(SIGKILL);  // neither name is removed by this process
    } catch (const tandem::Error&) {
      std::_Exit(4);
    }
    std::_Exit(5);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the child exited with " << WEXITSTATUS(status);
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  while ((exists_in_dev_shm(before) || exists_in_dev_shm(after)) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_FALSE(exists_in_dev_shm(before)) << "a name made before the janitor died outlived its creator";
  EXPECT_FALSE(exists_in_dev_shm(after)) << "a name made after the janitor died outlived its creator";
}

TEST(SharedMemory, NothingIsLeftBehind) {
  tandem::SharedMemory::create(1);  // the janitor's pipe, opened once per process, is not a leak
  const int descriptors = open_descriptors();
  std::vector<std::string> names;
  for (int i = 0; i < 50; ++i) {
    tandem::SharedMemory anonymous(4096);
    auto named = tandem::SharedMemory::create(4096);
    names.push_back(named.name());
    auto copy = named;
    EXPECT_EQ(copy.data(), named.data());
  }
  EXPECT_EQ(open_descriptors(), descriptors);
  for (const auto& name : names) EXPECT_FALSE(exists_in_dev_shm(name)) << name;
}

}  // namespace
