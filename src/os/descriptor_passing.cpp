#include "os/descriptor_passing.hpp"

#include "os/private_descriptors.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

namespace tandem::detail {

bool send_with_descriptors(int socket, const void* data, std::size_t size, std::initializer_list<int> fds) {
  iovec payload{const_cast<void*>(data), size};
  msghdr header{};
  header.msg_iov = &payload;
  header.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(kMaxPassedDescriptors * sizeof(int))] = {};
  if (fds.size() > kMaxPassedDescriptors) return false;
  if (fds.size() != 0) {
    header.msg_control = control;
    header.msg_controllen = CMSG_SPACE(fds.size() * sizeof(int));
    cmsghdr* attached = CMSG_FIRSTHDR(&header);
    attached->cmsg_level = SOL_SOCKET;
    attached->cmsg_type = SCM_RIGHTS;
    attached->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
    std::copy(fds.begin(), fds.end(), reinterpret_cast<int*>(CMSG_DATA(attached)));
  }
  for (;;) {
    if (::sendmsg(socket, &header, MSG_NOSIGNAL) == static_cast<ssize_t>(size)) return true;
    if (errno != EINTR) return false;
  }
}

long receive_with_descriptors(int socket, void* data, std::size_t size, std::vector<UniqueFd>& fds, bool block) {
  iovec payload{data, size};
  msghdr header{};
  header.msg_iov = &payload;
  header.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(kMaxPassedDescriptors * sizeof(int))];
  header.msg_control = control;
  header.msg_controllen = sizeof control;
  ssize_t received;
  do {
    received = ::recvmsg(socket, &header, MSG_CMSG_CLOEXEC | (block ? 0 : MSG_DONTWAIT));
  } while (received < 0 && errno == EINTR);
  if (received < 0 && !block && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
  if (received <= 0) return kConnectionClosed;
  for (cmsghdr* attached = CMSG_FIRSTHDR(&header); attached; attached = CMSG_NXTHDR(&header, attached)) {
    if (attached->cmsg_level != SOL_SOCKET || attached->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (attached->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const int* received_fds = reinterpret_cast<const int*>(CMSG_DATA(attached));
    for (std::size_t i = 0; i < count; ++i) fds.emplace_back(out_of_the_way(received_fds[i]));
  }
  return static_cast<long>(received);
}

}  // namespace tandem::detail
