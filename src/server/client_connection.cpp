#include "server/client_connection.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstdlib>
#include <memory>

namespace smolvlm::server {

namespace {

struct Endpoint {
  std::string addr;
  int port = -1;
};

bool endpoint_of(const sockaddr_storage& a, Endpoint& out) {
  char text[INET6_ADDRSTRLEN] = {};
  if (a.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(a);
    if (!inet_ntop(AF_INET, &v4.sin_addr, text, sizeof text)) return false;
    out = {text, ntohs(v4.sin_port)};
    return true;
  }
  if (a.ss_family == AF_INET6) {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(a);
    if (!inet_ntop(AF_INET6, &v6.sin6_addr, text, sizeof text)) return false;
    out = {text, ntohs(v6.sin6_port)};
    return true;
  }
  return false;
}

bool is_connection(int fd, const Endpoint& remote, const Endpoint& local) {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  Endpoint e;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0 || !endpoint_of(a, e) ||
      e.port != local.port || e.addr != local.addr) {
    return false;
  }
  len = sizeof a;
  return getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0 && endpoint_of(a, e) &&
         e.port == remote.port && e.addr == remote.addr;
}

}  // namespace

ClientConnection::ClientConnection(const std::string& remote_addr, int remote_port,
                                   const std::string& local_addr, int local_port) {
  const Endpoint remote{remote_addr, remote_port}, local{local_addr, local_port};
  if (remote_port < 0 || local_port < 0) return;
  // The handler's thread holds this connection open until it returns, so the number found
  // cannot be closed and reused while this object lives.
  std::unique_ptr<DIR, int (*)(DIR*)> dir(opendir("/proc/self/fd"), closedir);
  if (!dir) return;
  while (const dirent* entry = readdir(dir.get())) {
    char* end = nullptr;
    const long fd = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || fd < 0) continue;
    if (is_connection(static_cast<int>(fd), remote, local)) {
      fd_ = static_cast<int>(fd);
      return;
    }
  }
}

bool ClientConnection::gone() const {
  if (fd_ < 0) return false;
  pollfd p{fd_, POLLRDHUP, 0};
  if (poll(&p, 1, 0) <= 0) return false;
  return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

}  // namespace smolvlm::server
