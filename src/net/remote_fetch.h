// One http(s) file into memory, with a size cap and a time limit: the pictures that
// `smolvlm serve --allow-remote-images` fetches. Part of the smolvlm_net library (the only one
// that links libcurl); declared for the server library.
#pragma once

#include <smolvlm/error.h>

#include <cstddef>
#include <string>

namespace smolvlm::net {

// Why a fetch failed, one line quoting the URL. `local`: this machine could not start the
// download (not the URL's fault); otherwise the URL, its server or its size is the cause.
class FetchError : public Error {
 public:
  FetchError(const std::string& message, bool local) : Error(message), local_(local) {}
  bool local() const { return local_; }

 private:
  bool local_;
};

// The bytes at `url`: http and https only (redirects too, at most 3), at most max_bytes, 10 s in
// all. Throws FetchError.
std::string fetch_url(const std::string& url, size_t max_bytes);

}  // namespace smolvlm::net
