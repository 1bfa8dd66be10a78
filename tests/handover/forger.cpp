// An attacker who controls the environment and the inherited descriptors of a tandem program
// (but runs another executable): it hands `program` a worker's hand-over that is right in every
// way it can make right (format, secret, sealed ticket, descriptors of the right kinds, sockets it
// made itself), with memory of its own choosing, and runs it. A program that took the role would
// run code named by that memory.
//
//   handover_forger <program> [extra environment assignment]
#include <fcntl.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

extern char** environ;

int main(int argc, char** argv) {
  if (argc < 2) return 100;
  struct Ticket {
    char magic[8];
    std::uint8_t role;
    std::uint8_t secret[16];
  } ticket{{'t', 'a', 'n', 'd', 'e', 'm', 'H', 'O'}, 1, {}};
  std::string secret_hex;
  for (int i = 0; i < 16; ++i) {
    ticket.secret[i] = static_cast<std::uint8_t>(0x41 + i);
    char hex[3];
    std::snprintf(hex, sizeof hex, "%02x", ticket.secret[i]);
    secret_hex += hex;
  }
  const int ticket_fd = ::memfd_create("tandem-handover", MFD_ALLOW_SEALING);
  if (::pwrite(ticket_fd, &ticket, sizeof ticket, 0) != static_cast<ssize_t>(sizeof ticket)) return 101;
  ::fcntl(ticket_fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
  // "Rings" full of 0x41: offsets from the code anchor that point wherever the attacker likes.
  const int rings = ::memfd_create("tandem", MFD_ALLOW_SEALING);
  const int pool = ::memfd_create("tandem", MFD_ALLOW_SEALING);
  std::vector<char> garbage(1 << 20, 0x41);
  (void)!::write(rings, garbage.data(), garbage.size());
  (void)!::write(pool, garbage.data(), 4096);
  const int wake = ::eventfd(0, 0);
  int pair[2];
  ::socketpair(AF_UNIX, SOCK_SEQPACKET, 0, pair);
  const int fds[] = {ticket_fd, rings, pool, wake, pair[1]};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  for (int i = 0; i < 5; ++i) {
    const int high = ::fcntl(fds[i], F_DUPFD, 20 + i);
    posix_spawn_file_actions_adddup2(&actions, high, 3 + i);
  }
  std::vector<std::string> environment{"TANDEM_HANDOVER=1:1:" + secret_hex + ":3,4,5,6,7"};
  if (argc > 2) environment.emplace_back(argv[2]);
  for (char** entry = environ; *entry; ++entry) {
    if (std::strncmp(*entry, "TANDEM_", 7) != 0) environment.emplace_back(*entry);
  }
  std::vector<char*> envp;
  for (auto& entry : environment) envp.push_back(entry.data());
  envp.push_back(nullptr);
  char* child_argv[] = {argv[1], nullptr};
  pid_t pid = 0;
  const int error = ::posix_spawn(&pid, argv[1], &actions, nullptr, child_argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (error != 0) return 102;
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
