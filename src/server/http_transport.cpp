// HttpTransport: Beast's request parser over plain sockets (see http_transport.h).
#include "server/http_transport.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <smolvlm/error.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <limits>
#include <mutex>
#include <set>
#include <thread>

#include "server/connection_threads.h"

namespace smolvlm::server {

namespace {

namespace http = boost::beast::http;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

bool same_name(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// A connected socket as Beast's SyncReadStream, every wait bounded by a deadline (Beast's own sync
// reads never time out).
struct Socket {
  int fd = -1;
  Clock::time_point read_deadline;
  std::chrono::seconds write_timeout{10};

  static int wait(int fd, short events, Clock::time_point deadline) {
    for (;;) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return 0;
      pollfd p{fd, events, 0};
      const int n = poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 60000)));
      if (n > 0) return 1;
      if (n < 0 && errno != EINTR) return -1;
    }
  }
  template <class Buffers>
  size_t read_some(const Buffers& buffers, error_code& ec) {
    const auto b = *boost::asio::buffer_sequence_begin(buffers);
    for (;;) {
      const ssize_t n = recv(fd, b.data(), b.size(), MSG_DONTWAIT);
      if (n > 0) {
        ec = {};
        return static_cast<size_t>(n);
      }
      if (n == 0) {
        ec = boost::asio::error::eof;
        return 0;
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        ec = error_code(errno, boost::system::system_category());
        return 0;
      }
      if (wait(fd, POLLIN, read_deadline) <= 0) {
        ec = boost::beast::error::timeout;
        return 0;
      }
    }
  }
  template <class Buffers>
  size_t read_some(const Buffers& buffers) {
    error_code ec;
    const size_t n = read_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }
  // Sends all of the parts (one system call when the socket takes them); false once the client
  // cannot be written to (gone, or reading nothing for write_timeout).
  bool write_all(std::string_view a, std::string_view b = {}, std::string_view c = {}) {
    std::array<std::string_view, 3> parts{a, b, c};
    const auto deadline = Clock::now() + write_timeout;
    for (;;) {
      iovec io[3];
      size_t count = 0;
      for (std::string_view p : parts) {
        if (!p.empty()) io[count++] = {const_cast<char*>(p.data()), p.size()};
      }
      if (count == 0) return true;
      msghdr m{};
      m.msg_iov = io;
      m.msg_iovlen = count;
      const ssize_t n = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n >= 0) {
        size_t sent = static_cast<size_t>(n);
        for (std::string_view& p : parts) {
          const size_t k = std::min(sent, p.size());
          p.remove_prefix(k);
          sent -= k;
        }
        continue;
      }
      if (errno == EINTR) continue;
      if ((errno != EAGAIN && errno != EWOULDBLOCK) || wait(fd, POLLOUT, deadline) <= 0) {
        return false;
      }
    }
  }
};

// Beast's parser, keeping the request line, fields (counted as they come) and body itself.
class RequestParser : public http::basic_parser<true> {
 public:
  RequestParser(size_t max_fields, size_t max_body) : max_fields_(max_fields), max_body_(max_body) {
    // Our own body limit (below); Beast's stays out of the way.
    body_limit(std::numeric_limits<std::uint64_t>::max());
  }
  std::string method, target;
  int version = 11;  // 10: HTTP/1.0
  std::vector<HttpField> fields;
  std::string body;
  bool too_many_fields = false, body_too_large = false;

 private:
  void on_request_impl(http::verb, boost::beast::string_view method_text,
                       boost::beast::string_view target_text, int http_version,
                       error_code&) override {
    method.assign(method_text.data(), method_text.size());
    target.assign(target_text.data(), target_text.size());
    this->version = http_version;
  }
  void on_response_impl(int, boost::beast::string_view, int, error_code&) override {}
  void on_field_impl(http::field, boost::beast::string_view name, boost::beast::string_view value,
                     error_code& ec) override {
    if (fields.size() >= max_fields_) {
      too_many_fields = true;
      ec = http::error::header_limit;
      return;
    }
    fields.push_back(
        {std::string(name.data(), name.size()), std::string(value.data(), value.size())});
  }
  void on_header_impl(error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code&) override {}
  size_t on_body_impl(boost::beast::string_view data, error_code& ec) override {
    return append(data, ec);
  }
  void on_chunk_header_impl(std::uint64_t, boost::beast::string_view, error_code&) override {}
  size_t on_chunk_body_impl(std::uint64_t, boost::beast::string_view data,
                            error_code& ec) override {
    return append(data, ec);
  }
  void on_finish_impl(error_code&) override {}
  size_t append(boost::beast::string_view data, error_code& ec) {
    if (body.size() + data.size() > max_body_) {
      body_too_large = true;
      ec = http::error::body_limit;
      return 0;
    }
    body.append(data.data(), data.size());
    return data.size();
  }
  size_t max_fields_, max_body_;
};

std::string reason(int status) {
  const auto text = http::obsolete_reason(static_cast<http::status>(status));
  return text.empty() ? std::string("Unknown") : std::string(text.data(), text.size());
}

bool is_timeout(const error_code& ec) { return ec == boost::beast::error::timeout; }
bool is_eof(const error_code& ec) {
  return ec == boost::asio::error::eof || ec == http::error::end_of_stream ||
         ec == http::error::partial_message;
}

}  // namespace

struct HttpExchange::Connection {
  const TransportOptions& options;
  const HttpHandlers& handlers;
  Socket socket;
  boost::beast::flat_buffer buffer;
  std::unique_ptr<RequestParser> parser;
  bool keep_alive = true;
  bool discard_unread = false;  // the body was not read: drop it before closing
};

HttpExchange::HttpExchange(Connection& connection, std::string method, std::string target,
                           std::vector<HttpField> fields, int version)
    : connection_(connection),
      method_(std::move(method)),
      target_(std::move(target)),
      fields_(std::move(fields)),
      version_(version) {
  path_ = target_.substr(0, target_.find('?'));
}

std::string HttpExchange::header(std::string_view name) const {
  for (const HttpField& f : fields_) {
    if (same_name(f.name, name)) return f.value;
  }
  return {};
}

bool HttpExchange::has_header(std::string_view name) const {
  return std::any_of(fields_.begin(), fields_.end(),
                     [&](const HttpField& f) { return same_name(f.name, name); });
}

HttpExchange::Body HttpExchange::read_body(std::string& body) {
  Connection& c = connection_;
  if (body_read_ || !c.parser) return Body::malformed;
  body_read_ = true;
  RequestParser& p = *c.parser;
  if (!p.is_done()) {
    // A client that waits for leave to send its body (curl's Expect: 100-continue).
    if (status_ == 0 && same_name(header("Expect"), "100-continue") && c.buffer.size() == 0 &&
        !c.socket.write_all("HTTP/1.1 100 Continue\r\n\r\n")) {
      c.keep_alive = false;
      return Body::gone;
    }
    c.socket.read_deadline = Clock::now() + std::chrono::seconds(c.options.read_timeout_s);
    error_code ec;
    http::read(c.socket, c.buffer, p, ec);
    if (ec) {
      c.keep_alive = false;  // where the next request would start is not known
      if (p.body_too_large) {
        c.discard_unread = true;
        return Body::too_large;
      }
      if (is_timeout(ec)) return Body::too_slow;
      if (is_eof(ec) || ec.category() == boost::system::system_category()) return Body::gone;
      return Body::malformed;
    }
  }
  body = std::move(p.body);
  return Body::read;
}

void HttpExchange::add_header(std::string name, std::string value) {
  answer_fields_.push_back({std::move(name), std::move(value)});
}

namespace {

std::string head_text(int status, const std::vector<HttpField>& fields, bool close) {
  std::string head = "HTTP/1.1 " + std::to_string(status) + " " + reason(status) + "\r\n";
  for (const HttpField& f : fields) head += f.name + ": " + f.value + "\r\n";
  if (close) head += "Connection: close\r\n";
  return head;
}

}  // namespace

void HttpExchange::respond(int status, std::string body, const std::string& content_type) {
  if (status_ != 0) return;
  status_ = status;
  Connection& c = connection_;
  if (close_after_) c.keep_alive = false;
  // 1xx, 204 and 304 carry no body (nor its length).
  const bool no_body = status < 200 || status == 204 || status == 304;
  std::string head = head_text(status, answer_fields_, !c.keep_alive);
  if (!no_body) {
    if (!content_type.empty()) head += "Content-Type: " + content_type + "\r\n";
    head += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  head += "\r\n";
  const bool with_body = !no_body && method_ != "HEAD";
  if (!c.socket.write_all(head, with_body ? std::string_view(body) : std::string_view())) {
    c.keep_alive = false;
  }
  if (c.handlers.answered) c.handlers.answered(status);
}

bool HttpExchange::start_stream(int status, const std::string& content_type) {
  if (status_ != 0) return false;
  status_ = status;
  streaming_ = true;
  Connection& c = connection_;
  if (close_after_) c.keep_alive = false;
  std::string head = head_text(status, answer_fields_, !c.keep_alive);
  head += "Content-Type: " + content_type + "\r\nTransfer-Encoding: chunked\r\n\r\n";
  if (!c.socket.write_all(head)) stream_broken_ = true;
  if (c.handlers.answered) c.handlers.answered(status);
  return !stream_broken_;
}

bool HttpExchange::write(std::string_view data) {
  if (!streaming_ || stream_broken_) return false;
  if (data.empty()) return true;  // an empty chunk would end the stream
  char size[24];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  if (!connection_.socket.write_all(size, data, "\r\n")) stream_broken_ = true;
  return !stream_broken_;
}

void HttpExchange::end_stream() {
  if (!streaming_) return;
  if (stream_broken_ || !connection_.socket.write_all("0\r\n\r\n")) {
    stream_broken_ = true;
    connection_.keep_alive = false;
  }
  streaming_ = false;
}

bool HttpExchange::client_gone() {
  if (stream_broken_) return true;
  pollfd p{connection_.socket.fd, POLLRDHUP, 0};
  const short events = poll(&p, 1, 0) > 0 ? p.revents : 0;
  if (events & (POLLHUP | POLLERR | POLLNVAL)) return true;  // reset, or closed both ways
  if (!(events & POLLRDHUP)) return false;
  if (probed_) return false;  // half-closed, and still there after the probe
  // The client's side is closed: it hung up, or it half-closed after its request (`nc -N`) and
  // waits for the answer. An interim 100 Continue, which HTTP/1.1 clients skip, tells which: a
  // closed socket answers it with a reset (seen at the next look).
  if (version_ < 11) return true;
  probed_ = true;
  return !connection_.socket.write_all("HTTP/1.1 100 Continue\r\n\r\n");
}

struct HttpTransport::Impl {
  TransportOptions options;
  HttpHandlers handlers;
  int listen_fd = -1;
  int port = -1;
  std::thread acceptor;
  std::unique_ptr<ConnectionThreads> threads;
  std::atomic<bool> stopping{false};
  std::mutex stop_mu;
  bool stopped = false;
  std::mutex open_mu;
  std::set<int> open;  // connections being served
  std::set<int> idle;  // of those, the ones waiting for a next request

  void accept_loop();
  void serve(int fd);
  bool serve_one(HttpExchange::Connection& c, bool first);
  void refuse(HttpExchange::Connection& c, int status, const std::string& message,
              const std::string& code) {
    c.keep_alive = false;
    HttpExchange x(c, {}, {}, {}, 11);
    handlers.refuse(x, status, message, code);
  }
  void set_idle(int fd, bool is_idle) {
    std::lock_guard lock(open_mu);
    if (is_idle) {
      idle.insert(fd);
      if (stopping) shutdown(fd, SHUT_RD);  // stop() may have passed already
    } else {
      idle.erase(fd);
    }
  }
};

void HttpTransport::Impl::accept_loop() {
  for (;;) {
    const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (stopping) return;
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));  // descriptors run out
        continue;
      }
      return;
    }
    if (stopping) {
      close(fd);
      return;
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    {
      std::lock_guard lock(open_mu);
      open.insert(fd);
      idle.insert(fd);
    }
    threads->enqueue([this, fd] { serve(fd); });
  }
}

void HttpTransport::Impl::serve(int fd) {
  HttpExchange::Connection c{options, handlers, {}, {}, {}, true, false};
  c.socket.fd = fd;
  c.socket.write_timeout = std::chrono::seconds(options.write_timeout_s);
  for (int n = 0; n < options.max_requests_per_connection && !stopping; ++n) {
    if (!serve_one(c, n == 0) || !c.keep_alive) break;
  }
  {
    std::lock_guard lock(open_mu);
    open.erase(fd);
    idle.erase(fd);
  }
  // A lingering close: what the client still sends (a body we did not read) is read and dropped,
  // up to a bound, so that the answer is not lost to a reset.
  shutdown(fd, SHUT_WR);
  if (c.discard_unread) {
    c.socket.read_deadline =
        Clock::now() + std::chrono::seconds(std::max(1, options.read_timeout_s));
    std::vector<char> sink(65536);
    size_t dropped = 0;
    error_code ec;
    while (dropped < options.max_discarded_bytes && !stopping) {
      dropped += c.socket.read_some(boost::asio::buffer(sink.data(), sink.size()), ec);
      if (ec) break;
    }
  }
  close(fd);
}

bool HttpTransport::Impl::serve_one(HttpExchange::Connection& c, bool first) {
  c.parser = std::make_unique<RequestParser>(options.max_header_fields, options.max_body_bytes);
  RequestParser& p = *c.parser;
  p.header_limit(static_cast<std::uint32_t>(options.max_header_bytes));
  error_code ec;
  // The first byte of a request: an idle connection waits up to the keep-alive timeout.
  if (c.buffer.size() == 0) {
    set_idle(c.socket.fd, true);
    c.socket.read_deadline =
        Clock::now() +
        std::chrono::seconds(first ? options.read_timeout_s : options.keep_alive_timeout_s);
    const size_t n = c.socket.read_some(c.buffer.prepare(65536), ec);
    c.buffer.commit(n);
    if (ec || stopping) return false;  // the client left, was idle too long, or we stop
  }
  set_idle(c.socket.fd, false);
  c.socket.read_deadline = Clock::now() + std::chrono::seconds(options.read_timeout_s);
  // The request line alone: refused by its length before the rest of the head is read.
  {
    const auto start = [&] {
      return std::string_view(static_cast<const char*>(c.buffer.data().data()), c.buffer.size());
    };
    while (start().find('\n') == std::string_view::npos &&
           c.buffer.size() <= options.max_request_line_bytes) {
      const size_t n = c.socket.read_some(c.buffer.prepare(options.max_request_line_bytes + 1), ec);
      c.buffer.commit(n);
      if (ec) break;
    }
    const size_t line_end = start().find('\n');
    if (line_end == std::string_view::npos ? c.buffer.size() > options.max_request_line_bytes
                                           : line_end > options.max_request_line_bytes) {
      refuse(c, 414,
             "the request line is longer than " + std::to_string(options.max_request_line_bytes) +
                 " bytes",
             "uri_too_long");
      return false;
    }
    if (ec && line_end == std::string_view::npos) {
      if (is_timeout(ec)) refuse(c, 408, "the request came too slowly", "request_timeout");
      return false;
    }
  }
  http::read_header(c.socket, c.buffer, p, ec);
  if (ec) {
    if (ec == http::error::header_limit) {
      refuse(c, 431,
             p.too_many_fields
                 ? "more than " + std::to_string(options.max_header_fields) + " header fields"
                 : "the request's head is longer than " + std::to_string(options.max_header_bytes) +
                       " bytes",
             "header_too_large");
    } else if (is_timeout(ec)) {
      refuse(c, 408, "the request came too slowly", "request_timeout");
    } else if (!is_eof(ec) && ec.category() != boost::system::system_category()) {
      // Malformed: Content-Length with Transfer-Encoding, a bad field, a bad length...
      refuse(c, 400, "malformed request (" + ec.message() + ")", "bad_request");
    }
    return false;
  }
  c.keep_alive = p.keep_alive() && !stopping;
  HttpExchange x(c, std::move(p.method), std::move(p.target), std::move(p.fields), p.version);
  if (p.content_length() && *p.content_length() > options.max_body_bytes) {
    // Refused by its declared size before a byte of it is read; read and dropped after.
    x.close_after();
    c.discard_unread = true;
    handlers.refuse(
        x, 413,
        "the body is larger than --max-body (" + std::to_string(options.max_body_bytes) + " bytes)",
        "body_too_large");
    return false;
  }
  try {
    handlers.request(x);
  } catch (...) {
    if (!x.answered()) x.respond(500, "internal error", "text/plain");
  }
  if (!x.answered()) x.respond(500, "internal error", "text/plain");
  if (x.streaming_) x.end_stream();
  if (!x.body_read_ && !p.is_done()) {
    // A body the handler did not want (a refusal): read and dropped, and the connection kept
    // when that works; else it ends, dropping what still comes.
    // (A client that waits for 100 Continue sends none: the connection just ends.)
    std::string ignored;
    const bool waits = same_name(x.header("Expect"), "100-continue") && c.buffer.size() == 0;
    if (waits) {
      c.keep_alive = false;
    } else if (!c.keep_alive || x.read_body(ignored) != HttpExchange::Body::read) {
      c.keep_alive = false;
      c.discard_unread = true;
    }
  }
  return c.keep_alive;
}

HttpTransport::HttpTransport(TransportOptions options, HttpHandlers handlers)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->handlers = std::move(handlers);
}

HttpTransport::~HttpTransport() { stop(); }

int HttpTransport::bind() {
  Impl& s = *impl_;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(s.options.port);
  const std::string where = s.options.host + ":" + port;
  if (getaddrinfo(s.options.host.c_str(), port.c_str(), &hints, &found) != 0 || !found) {
    throw Error("cannot listen on " + where + " (not an address of this machine)");
  }
  int fd = -1;
  for (addrinfo* a = found; a && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(found);
  if (fd < 0) {
    throw Error("cannot listen on " + where + " (in use, or not an address of this machine)");
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  s.port = bound.ss_family == AF_INET6
               ? ntohs(reinterpret_cast<const sockaddr_in6&>(bound).sin6_port)
               : ntohs(reinterpret_cast<const sockaddr_in&>(bound).sin_port);
  s.listen_fd = fd;
  return s.port;
}

void HttpTransport::start() {
  Impl& s = *impl_;
  if (s.listen_fd < 0) bind();
  s.threads = std::make_unique<ConnectionThreads>(
      static_cast<size_t>(std::max(4, s.options.max_connection_threads)));
  s.acceptor = std::thread([&s] { s.accept_loop(); });
}

void HttpTransport::stop() {
  Impl& s = *impl_;
  std::lock_guard lock(s.stop_mu);
  if (s.stopped) return;
  s.stopped = true;
  s.stopping = true;
  if (s.listen_fd >= 0) shutdown(s.listen_fd, SHUT_RDWR);  // wakes accept()
  if (s.acceptor.joinable()) s.acceptor.join();
  if (s.listen_fd >= 0) close(s.listen_fd);
  {
    // Idle connections end now (their read returns); busy ones after their answer.
    std::lock_guard open_lock(s.open_mu);
    for (int fd : s.idle) shutdown(fd, SHUT_RD);
  }
  if (s.threads) s.threads->shutdown();
  // Connections accepted but never given a thread.
  std::lock_guard open_lock(s.open_mu);
  for (int fd : s.open) close(fd);
  s.open.clear();
}

int HttpTransport::port() const { return impl_->port; }

}  // namespace smolvlm::server
