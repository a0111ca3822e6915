// The TCP connection a request came on, to notice a client that hangs up while its non-streamed
// answer is computed (a streamed one notices when a write fails).
#pragma once

#include <string>

namespace smolvlm::server {

class ClientConnection {
 public:
  // Finds the connection's socket by its two addresses: cpp-httplib 0.11 gives a handler no
  // handle on it. No socket is found where /proc is missing; then gone() is always false.
  ClientConnection(const std::string& remote_addr, int remote_port, const std::string& local_addr,
                   int local_port);
  bool found() const { return fd_ >= 0; }
  // True once the client has closed or reset the connection. Reads nothing from it, so a
  // pipelined next request stays where the server will read it.
  bool gone() const;

 private:
  int fd_ = -1;
};

}  // namespace smolvlm::server
