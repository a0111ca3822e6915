// An echo server on Boost.Beast's parser for probe.py, fed from a plain socket (poll deadlines),
// a thread per connection: GET /h answers "ok", POST /echo the body's length.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <thread>
namespace http = boost::beast::http;
using boost::system::error_code;
struct Fd {
  int fd;
  template <class B>
  size_t read_some(const B& b, error_code& ec) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 5000) <= 0) {
      ec = boost::beast::error::timeout;
      return 0;
    }
    auto buf = *boost::asio::buffer_sequence_begin(b);
    ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n == 0) {
      ec = boost::asio::error::eof;
      return 0;
    }
    if (n < 0) {
      ec = error_code(errno, boost::system::system_category());
      return 0;
    }
    ec = {};
    return size_t(n);
  }
  template <class B>
  size_t read_some(const B& b) {
    error_code ec;
    auto n = read_some(b, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }
  template <class B>
  size_t write_some(const B& b, error_code& ec) {
    auto buf = *boost::asio::buffer_sequence_begin(b);
    ssize_t n = send(fd, buf.data(), buf.size(), MSG_NOSIGNAL);
    if (n < 0) {
      ec = error_code(errno, boost::system::system_category());
      return 0;
    }
    ec = {};
    return size_t(n);
  }
  template <class B>
  size_t write_some(const B& b) {
    error_code ec;
    auto n = write_some(b, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }
};
void answer(Fd& s, int status, const std::string& body, bool close) {
  http::response<http::string_body> r{http::status(status), 11};
  r.body() = body;
  r.keep_alive(!close);
  r.prepare_payload();
  error_code ec;
  http::write(s, r, ec);
}
void serve(int fd) {
  Fd s{fd};
  boost::beast::flat_buffer buf;
  for (;;) {
    http::request_parser<http::string_body> p;
    p.header_limit(16384);
    p.body_limit(UINT64_MAX);
    error_code ec;
    http::read_header(s, buf, p, ec);
    if (ec == http::error::end_of_stream || ec == boost::asio::error::eof) break;
    if (ec == http::error::header_limit) {
      bool line = std::string_view((const char*)buf.data().data(), buf.size()).find("\r\n") ==
                  std::string_view::npos;
      answer(s, line ? 414 : 431, "big header", true);
      break;
    }
    if (ec) {
      answer(s, ec == boost::beast::error::timeout ? 408 : 400, ec.message(), true);
      break;
    }
    auto cl = p.content_length();
    if (cl && *cl > (1u << 20)) {  // read and discard up to 16 MB, then answer
      size_t left = std::min<uint64_t>(*cl, 16 << 20);
      left -= std::min(left, buf.size());
      buf.consume(buf.size());
      char tmp[65536];
      while (left) {
        error_code e;
        size_t n = s.read_some(boost::asio::buffer(tmp, std::min(left, sizeof tmp)), e);
        if (e) break;
        left -= n;
      }
      answer(s, 413, "too large", true);
      break;
    }
    p.body_limit(1 << 20);
    http::read(s, buf, p, ec);
    if (ec == http::error::body_limit) {
      answer(s, 413, "too large", true);
      break;
    }
    if (ec) {
      answer(s, ec == boost::beast::error::timeout ? 408 : 400, ec.message(), true);
      break;
    }
    auto& req = p.get();
    answer(s, 200, req.method() == http::verb::post ? std::to_string(req.body().size()) : "ok",
           !req.keep_alive());
    if (!req.keep_alive()) break;
  }
  close(fd);
}
int main(int, char** argv) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, 4);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(atoi(argv[1]));
  a.sin_addr.s_addr = htonl(0x7f000001);
  bind(l, (sockaddr*)&a, sizeof a);
  listen(l, 64);
  for (;;) {
    int c = accept(l, nullptr, nullptr);
    std::thread(serve, c).detach();
  }
}
