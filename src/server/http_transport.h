// The HTTP/1.1 transport of `smolvlm serve`: sockets, connections, limits, timeouts, keep-alive,
// pipelining and a graceful stop. Requests are parsed by Boost.Beast's parser (its header and
// body limits), fed from plain sockets with poll() deadlines; one thread serves a connection at
// a time, so a handler may block (wait for an answer) without stalling other connections.
//
//   HttpTransport t(options, {.request = [](HttpExchange& x) { x.respond(200, "ok", "text/plain");
//   },
//                             .refuse = ..., .answered = ...});
//   int port = t.bind(); t.start(); ... t.stop();
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace smolvlm::server {

struct TransportOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                   // 0: any free port
  int max_connection_threads = 256;  // connections served at once; more wait for a thread
  int read_timeout_s = 10;           // a request (its head or its body) slower than this: 408
  int write_timeout_s = 10;          // a client that reads nothing for this long is dropped
  int keep_alive_timeout_s = 5;      // an idle connection is closed after this
  int max_requests_per_connection = 1000;
  // Refused before any of it is kept: a longer request line gets 414, a longer head (request
  // line and fields) or more fields 431.
  size_t max_request_line_bytes = 8 << 10;
  size_t max_header_bytes = 32 << 10;
  size_t max_header_fields = 100;
  size_t max_body_bytes = size_t{20} << 20;  // 413 beyond
  // A body left unread (a refused request) is read and dropped up to this many bytes before the
  // connection closes, so that a client that sends its whole body before reading sees the answer
  // rather than a reset.
  size_t max_discarded_bytes = size_t{64} << 20;
};

struct HttpField {
  std::string name, value;
};

// One request and its answer, on the connection's thread. A handler answers once, with
// respond() or with start_stream() + write()... + end_stream().
class HttpExchange {
 public:
  struct Connection;  // the transport's side
  HttpExchange(Connection& connection, std::string method, std::string target,
               std::vector<HttpField> fields, int version);

  const std::string& method() const { return method_; }
  const std::string& target() const { return target_; }  // as sent: path and query
  const std::string& path() const { return path_; }      // the target up to '?'
  // A request field's value ("" when absent; the first when repeated), by case-blind name.
  std::string header(std::string_view name) const;
  bool has_header(std::string_view name) const;

  enum class Body { read, too_large, too_slow, malformed, gone };
  // Reads the whole body (Content-Length or chunked, up to max_body_bytes). At most once.
  Body read_body(std::string& body);

  // A field for the answer, whichever one is sent.
  void add_header(std::string name, std::string value);
  // The connection closes after this answer.
  void close_after() { close_after_ = true; }
  void respond(int status, std::string body, const std::string& content_type);
  // A chunked answer, each write() sent at once. False once the client cannot be written to.
  bool start_stream(int status, const std::string& content_type);
  bool write(std::string_view data);
  void end_stream();

  // True once the client has hung up (reads nothing from it: a pipelined next request stays).
  // For a non-streamed answer, looked at while it is made. A client that half-closed after its
  // request (`nc -N`) is told from one that hung up by an interim 100 Continue (HTTP/1.1).
  bool client_gone();
  bool answered() const { return status_ != 0; }
  int status() const { return status_; }

 private:
  friend class HttpTransport;
  Connection& connection_;
  std::string method_, target_, path_;
  std::vector<HttpField> fields_;
  std::vector<HttpField> answer_fields_;
  int status_ = 0;
  bool body_read_ = false;
  bool close_after_ = false;
  bool streaming_ = false;
  bool stream_broken_ = false;
  int version_;  // 11: HTTP/1.1
  bool probed_ = false;
};

struct HttpHandlers {
  // Answers a request whose head was read (within the limits). Not answering is a 500.
  std::function<void(HttpExchange&)> request;
  // The transport's own refusals (400, 408, 413, 414, 431): answer with `status`.
  std::function<void(HttpExchange&, int status, const std::string& message,
                     const std::string& code)>
      refuse;
  // Every answer's status, once it is sent (metrics).
  std::function<void(int status)> answered;
};

class HttpTransport {
 public:
  HttpTransport(TransportOptions options, HttpHandlers handlers);
  ~HttpTransport();  // stop()
  HttpTransport(const HttpTransport&) = delete;
  HttpTransport& operator=(const HttpTransport&) = delete;

  int bind();    // the port; throws smolvlm::Error
  void start();  // accepts on a thread of its own
  // New connections are refused, idle ones closed, and each busy one after its answer; joins
  // every thread. Idempotent.
  void stop();
  int port() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace smolvlm::server
