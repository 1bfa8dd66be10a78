#include "os/handover.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "tandem/detail/unique_fd.hpp"
#include "tandem/error.hpp"
#include "tandem/start_method.hpp"

namespace tandem::detail {
namespace {

// The variable: "1:<role>:<secret, 32 hex digits>:<ticket fd>,<fd>,..." (version 1).
constexpr std::size_t kSecretBytes = 16;
constexpr std::size_t kMaxValueLength = 256;
constexpr std::size_t kMaxDescriptors = 5;  // the ticket and up to four of the role's
constexpr char kTicketMagic[8] = {'t', 'a', 'n', 'd', 'e', 'm', 'H', 'O'};

struct Ticket {
  char magic[8];
  std::uint8_t role;
  std::uint8_t secret[kSecretBytes];
};

enum class Kind { memory_file, eventfd, socket, pipe };

// What each role is handed, after the ticket.
std::optional<std::vector<Kind>> kinds_of(Role role) {
  switch (role) {
    case Role::worker:  // its rings, its pool's shared word, the wake-up eventfd, its channel
      return std::vector{Kind::memory_file, Kind::memory_file, Kind::eventfd, Kind::socket};
    case Role::process:  // its request, its error pipe
      return std::vector{Kind::memory_file, Kind::pipe};
    case Role::fork_server:  // its control connection
      return std::vector{Kind::socket};
  }
  return std::nullopt;
}

bool is_kind(int fd, Kind kind) {
  if (::fcntl(fd, F_GETFD) < 0) return false;
  char link[128] = {};
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  if (::readlink(path.c_str(), link, sizeof link - 1) <= 0) return false;
  const std::string_view target(link);
  switch (kind) {
    case Kind::memory_file:
      return target.starts_with("/memfd:");
    case Kind::eventfd:
      return target == "anon_inode:[eventfd]";
    case Kind::socket:
      return target.starts_with("socket:[");
    case Kind::pipe:
      return target.starts_with("pipe:[");
  }
  return false;
}

bool same_executable_as_parent() {
  struct stat self {}, parent {};
  const std::string parent_exe = "/proc/" + std::to_string(::getppid()) + "/exe";
  return ::stat("/proc/self/exe", &self) == 0 && ::stat(parent_exe.c_str(), &parent) == 0 &&
         self.st_dev == parent.st_dev && self.st_ino == parent.st_ino;
}

bool made_by_parent(int socket) {
  ucred credentials{};
  socklen_t length = sizeof credentials;
  return ::getsockopt(socket, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0 &&
         credentials.pid == ::getppid();
}

std::optional<std::uint8_t> hex_digit(char c) {
  if (c >= '0' && c <= '9') return static_cast<std::uint8_t>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<std::uint8_t>(c - 'a' + 10);
  return std::nullopt;
}

// The next field of `rest` up to ':' (or the end); false when there is none.
bool next_field(std::string_view& rest, std::string_view& field) {
  if (rest.empty()) return false;
  const auto colon = rest.find(':');
  field = rest.substr(0, colon);
  rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
  return true;
}

std::optional<int> parse_descriptor(std::string_view text) {
  if (text.empty() || text.size() > 7) return std::nullopt;
  int value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value >= 3 ? std::optional<int>(value) : std::nullopt;
}

void warn(const char* what) {
  std::fprintf(stderr, "tandem::init: ignoring %s: %s; this program runs as itself\n", kHandoverVariable, what);
}

}  // namespace

pid_t spawn_program(Role role, std::initializer_list<int> fds, const char* who) {
  if (!initialized()) {
    throw Error(std::string(who) +
                ": StartMethod::spawn starts this program afresh, which needs tandem::init(argc, argv) at the top "
                "of main");
  }
  // The ticket: the secret and the role, in a memory file sealed against any change.
  Ticket ticket{};
  std::memcpy(ticket.magic, kTicketMagic, sizeof ticket.magic);
  ticket.role = static_cast<std::uint8_t>(role);
  if (::getrandom(ticket.secret, sizeof ticket.secret, 0) != static_cast<ssize_t>(sizeof ticket.secret)) {
    throw Error(std::string(who) + ": spawn: getrandom: " + std::strerror(errno));
  }
  UniqueFd ticket_file(::memfd_create("tandem-handover", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!ticket_file || ::pwrite(ticket_file.get(), &ticket, sizeof ticket, 0) != static_cast<ssize_t>(sizeof ticket) ||
      ::fcntl(ticket_file.get(), F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    throw Error(std::string(who) + ": spawn: the hand-over ticket: " + std::strerror(errno));
  }
  // Above the target numbers first, so that no dup2 below overwrites a source.
  const int count = 1 + static_cast<int>(fds.size());
  std::vector<UniqueFd> sources;
  sources.emplace_back(::fcntl(ticket_file.get(), F_DUPFD_CLOEXEC, 3 + count));
  for (const int fd : fds) sources.emplace_back(::fcntl(fd, F_DUPFD_CLOEXEC, 3 + count));
  std::string value = "1:" + std::to_string(static_cast<int>(role)) + ":";
  for (const std::uint8_t byte : ticket.secret) {
    constexpr char kHex[] = "0123456789abcdef";
    value += kHex[byte >> 4];
    value += kHex[byte & 15];
  }
  value += ':';
  for (int i = 0; i < count; ++i) {
    if (!sources[static_cast<std::size_t>(i)]) throw Error(std::string(who) + ": spawn: fcntl: " + std::strerror(errno));
    if (i > 0) value += ',';
    value += std::to_string(3 + i);
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  for (int i = 0; i < count; ++i) {
    posix_spawn_file_actions_adddup2(&actions, sources[static_cast<std::size_t>(i)].get(), 3 + i);
  }
  std::vector<std::string> environment{std::string(kHandoverVariable) + "=" + value};
  for (char** entry = environ; *entry; ++entry) {
    const std::string_view name(*entry, std::strcspn(*entry, "="));
    if (name != kHandoverVariable) environment.emplace_back(*entry);
  }
  std::vector<char*> envp;
  for (auto& entry : environment) envp.push_back(entry.data());
  envp.push_back(nullptr);
  char program[] = "/proc/self/exe";
  char* argv[] = {program, nullptr};
  pid_t pid = -1;
  std::fflush(nullptr);  // else the copy could print the parent's buffered output too
  const int error = ::posix_spawn(&pid, program, &actions, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (error != 0) throw Error(std::string(who) + ": posix_spawn of /proc/self/exe: " + std::strerror(error));
  return pid;
}

std::optional<const char*> check_handover(const char* value, bool environment_secure, Handover& handover) {
  if (environment_secure) return "a secure-execution (setuid or setgid) program never takes a role from its environment";
  const std::string_view text(value, ::strnlen(value, kMaxValueLength + 1));
  if (text.size() > kMaxValueLength) return "the value is too long";
  std::string_view rest = text, field;
  if (!next_field(rest, field) || field != "1") return "not a version-1 hand-over";
  if (!next_field(rest, field) || field.size() != 1 || field[0] < '1' || field[0] > '3') return "no known role";
  const auto role = static_cast<Role>(field[0] - '0');
  std::array<std::uint8_t, kSecretBytes> secret{};
  if (!next_field(rest, field) || field.size() != 2 * kSecretBytes) return "no secret of 32 hex digits";
  for (std::size_t i = 0; i < kSecretBytes; ++i) {
    const auto high = hex_digit(field[2 * i]), low = hex_digit(field[2 * i + 1]);
    if (!high || !low) return "no secret of 32 hex digits";
    secret[i] = static_cast<std::uint8_t>(*high << 4 | *low);
  }
  if (!next_field(rest, field) || !rest.empty()) return "no descriptor list at the end";
  std::vector<int> fds;
  for (std::string_view list = field; !list.empty();) {
    const auto comma = list.find(',');
    const auto fd = parse_descriptor(list.substr(0, comma));
    if (!fd || fds.size() == kMaxDescriptors) return "a malformed descriptor list";
    fds.push_back(*fd);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
  }
  const auto kinds = kinds_of(role);
  if (!kinds || fds.size() != kinds->size() + 1) return "not the descriptors its role needs";
  if (!is_kind(fds[0], Kind::memory_file)) return "no hand-over ticket";
  for (std::size_t i = 0; i < kinds->size(); ++i) {
    if (!is_kind(fds[i + 1], (*kinds)[i])) return "a descriptor of the wrong kind";
  }
  // The ticket must be sealed (nobody changed it since the parent wrote it) and hold the secret.
  Ticket ticket{};
  const int seals = ::fcntl(fds[0], F_GET_SEALS);
  if (seals < 0 || (seals & F_SEAL_WRITE) == 0 ||
      ::pread(fds[0], &ticket, sizeof ticket, 0) != static_cast<ssize_t>(sizeof ticket) ||
      std::memcmp(ticket.magic, kTicketMagic, sizeof ticket.magic) != 0 || ticket.role != static_cast<std::uint8_t>(role)) {
    return "no valid hand-over ticket";
  }
  std::uint8_t difference = 0;  // compared in constant time
  for (std::size_t i = 0; i < kSecretBytes; ++i) difference |= static_cast<std::uint8_t>(ticket.secret[i] ^ secret[i]);
  if (difference != 0) return "the secret does not match the ticket";
  if (!same_executable_as_parent()) return "the parent process runs another executable";
  for (std::size_t i = 0; i < kinds->size(); ++i) {
    if ((*kinds)[i] == Kind::socket && !made_by_parent(fds[i + 1])) return "a socket the parent did not make";
  }
  handover.role = role;
  handover.fds.assign(fds.begin() + 1, fds.end());
  ::close(fds[0]);
  return std::nullopt;
}

std::optional<Handover> receive_handover() {
  const char* value = std::getenv(kHandoverVariable);
  if (value == nullptr) return std::nullopt;
  // Copied before the variable is removed (which may free its storage).
  const std::string copy(value, ::strnlen(value, kMaxValueLength + 1));
  ::unsetenv(kHandoverVariable);
  Handover handover;
  if (const auto wrong = check_handover(copy.c_str(), ::getauxval(AT_SECURE) != 0, handover)) {
    warn(*wrong);
    return std::nullopt;
  }
  return handover;
}

}  // namespace tandem::detail
