// An echo server on GNU libmicrohttpd for probe.py: GET /h answers "ok", POST /echo the body's
// length.
#include <microhttpd.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
struct St {
  std::string body;
  bool big = false;
};
static MHD_Result reply(MHD_Connection* c, int status, const std::string& b) {
  auto* r = MHD_create_response_from_buffer(b.size(), (void*)b.data(), MHD_RESPMEM_MUST_COPY);
  auto ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}
static MHD_Result handler(void*, MHD_Connection* c, const char* url, const char* method,
                          const char*, const char* data, size_t* size, void** ctx) {
  if (!*ctx) {
    auto* st = new St;
    *ctx = st;
    const char* cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (cl && strtoull(cl, nullptr, 10) > (1u << 20)) return reply(c, 413, "too large");
    return MHD_YES;
  }
  auto* st = (St*)*ctx;
  if (*size) {
    if (st->body.size() + *size > (1u << 20)) {
      *size = 0;
      st->big = true;
      return MHD_YES;
    }
    st->body.append(data, *size);
    *size = 0;
    return MHD_YES;
  }
  if (st->big) return reply(c, 413, "too large");
  return reply(c, 200, strcmp(method, "POST") == 0 ? std::to_string(st->body.size()) : "ok");
}
static void done(void*, MHD_Connection*, void** ctx, MHD_RequestTerminationCode) {
  delete (St*)*ctx;
  *ctx = nullptr;
}
int main(int, char** argv) {
  auto* d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD,
                             atoi(argv[1]), nullptr, nullptr, &handler, nullptr,
                             MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768,
                             MHD_OPTION_CONNECTION_TIMEOUT, 5u, MHD_OPTION_NOTIFY_COMPLETED, &done,
                             nullptr, MHD_OPTION_END);
  if (!d) return 1;
  pause();
}
