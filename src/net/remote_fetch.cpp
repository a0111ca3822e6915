// http(s) pictures for --allow-remote-images: libcurl with a size cap and a time limit.
#include "net/remote_fetch.h"

#include <curl/curl.h>

#include <mutex>

namespace smolvlm::net {

namespace {

struct Download {
  std::string bytes;
  size_t max_bytes = 0;
  bool too_large = false;
};

size_t on_data(char* data, size_t size, size_t count, void* user) {
  auto* d = static_cast<Download*>(user);
  const size_t n = size * count;
  if (d->bytes.size() + n > d->max_bytes) {
    d->too_large = true;
    return 0;  // aborts the transfer
  }
  d->bytes.append(data, n);
  return n;
}

}  // namespace

std::string fetch_url(const std::string& url, size_t max_bytes) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  CURL* curl = curl_easy_init();
  if (!curl) throw FetchError("cannot start a download", true);
  Download d;
  d.max_bytes = max_bytes;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  // Only http(s), redirects included: no file://, gopher:// or the like behind a redirect.
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 3L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 5L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(max_bytes));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &d);
  const CURLcode rc = curl_easy_perform(curl);
  curl_easy_cleanup(curl);
  if (d.too_large || rc == CURLE_FILESIZE_EXCEEDED) {
    throw FetchError(
        "the picture at '" + url + "' is larger than " + std::to_string(max_bytes) + " bytes",
        false);
  }
  if (rc != CURLE_OK) {
    throw FetchError("cannot download the picture at '" + url + "': " + curl_easy_strerror(rc),
                     false);
  }
  return std::move(d.bytes);
}

}  // namespace smolvlm::net
