// An echo server on cpp-httplib for probe.py: GET /h answers "ok", POST /echo the body's length.
#include <httplib.h>
int main(int, char** argv) {
  httplib::Server s;
  s.set_payload_max_length(1 << 20);
  s.set_read_timeout(5, 0);
  s.Get("/h",
        [](const httplib::Request&, httplib::Response& r) { r.set_content("ok", "text/plain"); });
  s.Post("/echo", [](const httplib::Request& q, httplib::Response& r) {
    r.set_content(std::to_string(q.body.size()), "text/plain");
  });
  s.listen("127.0.0.1", atoi(argv[1]));
}
