// OpenAI chat-completions requests -> the engine's Conversation and GenerationOptions. No sockets
// here: the parser is a pure function of the body and the policy, so it is unit-tested directly.
#pragma once

#include <smolvlm/smolvlm.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace smolvlm::server {

// A request the server refuses: the HTTP status and OpenAI's error fields.
class RequestError : public Error {
 public:
  RequestError(int status, const std::string& message, std::string type = "invalid_request_error",
               std::string param = {}, std::string code = {})
      : Error(message),
        status_(status),
        type_(std::move(type)),
        param_(std::move(param)),
        code_(std::move(code)) {}
  int status() const { return status_; }
  const std::string& type() const { return type_; }
  const std::string& param() const { return param_; }  // empty: null
  const std::string& code() const { return code_; }    // empty: null

 private:
  int status_;
  std::string type_, param_, code_;
};

// Downloads an http(s) URL's bytes (at most max_bytes); throws RequestError when it cannot.
using RemoteFetcher = std::function<std::string(const std::string& url, size_t max_bytes)>;

// What a request may reach beyond its own bytes.
struct RequestPolicy {
  bool allow_remote_images = false;    // http(s):// picture URLs (fetched with `fetch`)
  std::string local_media_dir;         // non-empty: paths (or file://) inside it are allowed
  int max_pictures = 16;               // pictures per request (the whole conversation)
  size_t max_remote_bytes = 20 << 20;  // one downloaded picture
  int max_tokens_limit = 1 << 20;      // the largest max_tokens accepted
  int default_max_tokens = 1024;       // when the request names none
  std::string temp_dir;                // where uploaded videos are written (empty: the system's)
  RemoteFetcher fetch;                 // empty: fetch_remote (libcurl, in smolvlm_net)
};

// Files a request wrote (uploaded videos), removed when the request is done.
class TempFiles {
 public:
  TempFiles() = default;
  TempFiles(const TempFiles&) = delete;
  TempFiles& operator=(const TempFiles&) = delete;
  ~TempFiles();
  // Writes `bytes` to a fresh file under `dir` and returns its path.
  std::string write(const std::string& dir, const std::string& bytes, const std::string& suffix);

 private:
  std::vector<std::string> paths_;
};

struct ChatRequest {
  Conversation conversation;
  GenerationOptions options;
  std::vector<std::string> stop;  // the answer ends before the first of these
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  std::string model;           // as the client named it (echoed back)
  int pictures = 0;
  bool seeded = false;  // the request named a seed (else the server draws a fresh one)
};

// Nesting deeper than this is refused before parsing (nlohmann's parser recurses).
inline constexpr int kMaxJsonDepth = 64;

// Parses a /v1/chat/completions body. Throws RequestError (400, naming the field) for anything
// malformed, of the wrong type, out of range, or not allowed by the policy.
ChatRequest parse_chat_request(std::string_view body, const RequestPolicy& policy,
                               TempFiles& temp_files);

// Strict base64 (RFC 4648, padding optional, no whitespace inside); false when malformed.
bool decode_base64(std::string_view text, std::string& out);
// The other way, with padding (clients: the load test, the benchmark, the tests).
std::string encode_base64(std::string_view bytes);

// True when `text` nests arrays/objects no deeper than `max_depth` (brackets in strings ignored).
bool json_depth_within(std::string_view text, int max_depth);

// smolvlm_net's libcurl fetcher (net/remote_fetch.h: http and https only, redirects too, at most
// max_bytes, 10 s in all), its errors as RequestErrors (400; 500 when no download could start).
std::string fetch_remote(const std::string& url, size_t max_bytes);

// `path` resolved (symlinks followed) when it lies inside `dir` (also resolved); throws
// RequestError otherwise, or when it does not exist.
std::string resolve_inside(const std::string& dir, const std::string& path,
                           const std::string& param);

}  // namespace smolvlm::server
