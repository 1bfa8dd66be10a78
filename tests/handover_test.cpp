// The environment is not a way in (docs/process_pool.md, "Trust model"): a tandem program started
// with a forged hand-over (garbage, a well-formed forgery from another executable, a setuid copy)
// runs as itself, says why on stderr, and never takes the role. The legitimate hand-over is
// exercised by every spawn test of the other suites.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "os/handover.hpp"

namespace {

struct Outcome {
  int exit_status = -1;
  std::string output;  // stdout and stderr
};

Outcome run(const std::string& command) {
  Outcome result;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[512];
  while (std::fgets(buffer, sizeof buffer, pipe)) result.output += buffer;
  const int status = ::pclose(pipe);
  result.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

const std::string kRanAsItself = "the program ran as itself";

TEST(Handover, AMalformedVariableIsIgnoredWithAWarningNeverAnExit) {
  const std::string secret(32, 'a');
  const std::string values[] = {
      "garbage",
      "1:1:",
      "1:1:" + secret,
      "1:1:" + secret + ":3,4,5,6,7",             // well formed; nothing of the kind is open there
      "1:7:" + secret + ":3,4,5,6,7",             // no such role
      "1:1:" + secret + ":3,4,5,6,7,8,9,10,11",   // too many descriptors
      "1:1:" + std::string(32, 'z') + ":3,4,5,6,7",  // not hex
      "2:1:" + secret + ":3,4,5,6,7",             // another version
      "1:1:" + secret + ":-1,4,5,6,7",
      "1:1:" + secret + ":99999999999,4,5,6,7",
      std::string(1000, '1'),
  };
  for (const std::string& value : values) {
    const Outcome result = run("TANDEM_HANDOVER='" + value + "' " TANDEM_HANDOVER_PROBE);
    EXPECT_EQ(result.exit_status, 0) << value << "\n" << result.output;
    EXPECT_TRUE(contains(result.output, kRanAsItself)) << value << "\n" << result.output;
    EXPECT_TRUE(contains(result.output, "ignoring TANDEM_HANDOVER")) << value << "\n" << result.output;
  }
  // The variables of earlier versions name nothing any more.
  const Outcome old = run("TANDEM_WORKER=garbage TANDEM_PROCESS=3,4 " TANDEM_HANDOVER_PROBE);
  EXPECT_EQ(old.exit_status, 0) << old.output;
  EXPECT_EQ(old.output, kRanAsItself + "\n");
}

TEST(Handover, AWellFormedForgeryFromAnotherExecutableIsRefused) {
  const Outcome result = run(TANDEM_HANDOVER_FORGER " " TANDEM_HANDOVER_PROBE);
  EXPECT_EQ(result.exit_status, 0) << result.output;
  EXPECT_TRUE(contains(result.output, kRanAsItself)) << result.output;
  EXPECT_TRUE(contains(result.output, "the parent process runs another executable")) << result.output;
}

// A fresh directory that the user nobody can reach, on a filesystem that honours setuid bits
// (the build directory may be private, as a mktemp -d clone is, or mounted nosuid); empty if none.
std::filesystem::path setuid_capable_directory() {
  for (const char* base : {"/tmp", "/var/tmp"}) {
    struct statvfs filesystem {};
    if (::statvfs(base, &filesystem) != 0 || (filesystem.f_flag & ST_NOSUID) != 0) continue;
    std::string directory = std::string(base) + "/tandem-setuid-XXXXXX";
    if (::mkdtemp(directory.data()) == nullptr) continue;
    if (::chmod(directory.c_str(), 0755) == 0) return directory;
    std::filesystem::remove(directory);
  }
  return {};
}

// A setuid copy run by another user: secure execution, whose environment is never its own.
TEST(Handover, ASecureExecutionProgramNeverTakesARole) {
  if (::geteuid() != 0) GTEST_SKIP() << "making a setuid-root copy needs root";
  if (::access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "setpriv (util-linux) is not installed";
  const std::filesystem::path directory = setuid_capable_directory();
  if (directory.empty()) GTEST_SKIP() << "no world-reachable directory on a filesystem that honours setuid";
  const std::filesystem::path probe = directory / "handover_probe_setuid";
  const std::filesystem::path forger = directory / "handover_forger";
  std::filesystem::copy_file(TANDEM_HANDOVER_PROBE, probe);
  std::filesystem::copy_file(TANDEM_HANDOVER_FORGER, forger);
  ASSERT_EQ(::chown(probe.c_str(), 0, 0), 0);
  ASSERT_EQ(::chmod(probe.c_str(), 04755), 0);
  ASSERT_EQ(::chmod(forger.c_str(), 0755), 0);
  const Outcome result = run("/usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups " + forger.string() + " " +
                             probe.string() + " TANDEM_DEADLOCK=abort");
  std::filesystem::remove_all(directory);
  EXPECT_EQ(result.exit_status, 0) << result.output;
  EXPECT_TRUE(contains(result.output, kRanAsItself)) << result.output;
  EXPECT_TRUE(contains(result.output, "secure-execution")) << result.output;
}

// What the checks say of values no process could have been handed.
TEST(Handover, TheCheckNamesWhatIsWrong) {
  tandem::detail::Handover handover;
  EXPECT_STREQ(*tandem::detail::check_handover("garbage", false, handover), "not a version-1 hand-over");
  EXPECT_STREQ(*tandem::detail::check_handover("1:1:00", false, handover), "no secret of 32 hex digits");
  EXPECT_STREQ(*tandem::detail::check_handover(("1:2:" + std::string(32, '0') + ":3,4").c_str(), false, handover),
               "not the descriptors its role needs");
  EXPECT_STREQ(*tandem::detail::check_handover(("1:2:" + std::string(32, '0') + ":900,901,902").c_str(), true, handover),
               "a secure-execution (setuid or setgid) program never takes a role from its environment");
}

}  // namespace
