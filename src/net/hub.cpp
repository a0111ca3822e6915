#include "net/hub.h"

#include <curl/curl.h>
#include <smolvlm/error.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "formats/file_hash.h"
#include "formats/mapped_file.h"
#include "formats/output_file.h"
#include "util/input_text.h"
#include "util/sha256.h"

namespace smolvlm::net {

namespace fs = std::filesystem;

namespace {

void curl_init_once() {
  static const bool done = [] { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }();
  if (!done) throw Error("cannot initialise libcurl");
}

std::string trim_slash(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

// Percent-encodes a path segment by segment ('/' kept).
std::string url_path(const std::string& path) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : path) {
    if (std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// One GET. The body goes to `sink` only when the status is 200 or 206; other statuses collect
// (a little of) the body for the error message.
struct Transfer {
  long status = 0;
  CURLcode code = CURLE_OK;
  std::string error;  // curl's words when code != CURLE_OK (control characters replaced)
  std::string body;   // small bodies (JSON, errors)
  int64_t received = 0;
  bool body_too_long = false;  // the body passed the bound given to get(): the transfer stopped
};

// Bodies kept in memory when they are not the file asked for (an error page): enough for any
// real one, and an endless one stops there instead of running on.
constexpr int64_t kMaxErrorBodyBytes = 64 << 10;

using Sink = std::function<bool(const char* data, size_t size, long status)>;

struct WriteState {
  CURL* curl;
  const Sink* sink;
  Transfer* t;
  int64_t max_body;
};

size_t on_write(char* data, size_t one, size_t n, void* user) {
  auto* s = static_cast<WriteState*>(user);
  const size_t size = one * n;
  curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &s->t->status);
  s->t->received += static_cast<int64_t>(size);
  if ((s->t->status == 200 || s->t->status == 206) && *s->sink) {
    return (*s->sink)(data, size, s->t->status) ? size : 0;
  }
  if (static_cast<int64_t>(s->t->body.size() + size) > s->max_body) {
    s->t->body_too_long = true;
    return 0;  // stops the transfer (CURLE_WRITE_ERROR)
  }
  s->t->body.append(data, size);
  return size;
}

// One GET of `url`. `max_body`: the most bytes kept in Transfer::body (the body the sink does
// not take); `deadline_s` > 0: the whole transfer's time limit.
Transfer get(const std::string& url, const PullOptions& o, const Sink& sink, int64_t from = 0,
             int64_t max_body = kMaxErrorBodyBytes, double deadline_s = 0) {
  curl_init_once();
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) throw Error("cannot initialise libcurl");
  Transfer t;
  WriteState state{curl.get(), &sink, &t, max_body};
  char errbuf[CURL_ERROR_SIZE] = "";
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "User-Agent: smolvlm.cpp");
  if (!o.token.empty())
    headers = curl_slist_append(headers, ("Authorization: Bearer " + o.token).c_str());
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> header_guard(headers, &curl_slist_free_all);
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);  // custom headers go to the first host only
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  // A hub may redirect to its CDN, never to a local file or another protocol.
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(c, CURLOPT_PROTOCOLS, long{CURLPROTO_HTTP | CURLPROTO_HTTPS});
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS, long{CURLPROTO_HTTP | CURLPROTO_HTTPS});
#endif
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &on_write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &state);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, o.connect_timeout_s);
  // A stalled or trickling transfer fails (see PullOptions::stall_timeout_s).
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, std::max(o.stall_bytes_per_s, 1L));
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, std::max(o.stall_timeout_s, 1L));
  if (deadline_s > 0)
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(std::ceil(deadline_s * 1000)));
  const std::string range = std::to_string(from) + "-";
  if (from > 0) curl_easy_setopt(c, CURLOPT_RANGE, range.c_str());
  t.code = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &t.status);
  if (t.code != CURLE_OK) {
    // curl's words may quote what a server sent (a redirect's host name, say): one line, bounded.
    t.error = one_line(errbuf[0] ? errbuf : curl_easy_strerror(t.code));
    if (t.error.size() > 300) t.error = t.error.substr(0, 300) + "...";
    while (!t.error.empty() && t.error.back() == ' ') t.error.pop_back();
  }
  return t;
}

// What went wrong with a transfer that did not complete, in words for a message.
std::string failure(const Transfer& t, const PullOptions& o) {
  if (t.code == CURLE_OPERATION_TIMEDOUT && t.error.find("too slow") != std::string::npos) {
    return "stalled: less than " + format_bytes(static_cast<uint64_t>(o.stall_bytes_per_s)) +
           "/s for " + std::to_string(o.stall_timeout_s) + " s";
  }
  return t.error;
}

[[noreturn]] void http_error(const std::string& what, const std::string& url, long status) {
  std::string hint;
  if (status == 401 || status == 403) hint = " (a gated or private model? set HF_TOKEN)";
  if (status == 404) hint = " (check the repository id and HF_ENDPOINT)";
  throw Error(what + ": HTTP " + std::to_string(status) + " from " + url + hint);
}

// Why `p` cannot be a file name in the model folder, or "" when it can: a plain name (no
// folders, no way out of the folder), printable, short enough for `p`.part.
std::string bad_name(const std::string& p) {
  if (p.empty() || p == "." || p == "..") return "not a file name";
  if (p.find('/') != std::string::npos || p.find('\\') != std::string::npos)
    return "names a folder";
  for (char ch : p) {
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) return "holds control characters";
  }
  if (p.size() > 200) return "longer than 200 bytes";
  return "";
}

void remove_quietly(const std::string& path) {
  std::error_code ec;
  fs::remove(path, ec);
}

int64_t file_size_or(const std::string& path, int64_t fallback) {
  std::error_code ec;
  const auto s = fs::file_size(path, ec);
  return ec ? fallback : static_cast<int64_t>(s);
}

// Whether a file on disk is the remote one (size, and sha256 where the hub gives it).
bool complete(const std::string& path, const RemoteFile& f) {
  if (file_size_or(path, -1) != f.size) return false;
  return f.sha256.empty() || sha256_file(path) == f.sha256;
}

std::string format_seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g s", s);
  return buf;
}

void note(const PullOptions& o, const std::string& line) {
  if (o.on_note) o.on_note(line);
}

// Fetches one file into dest (through dest.part), resuming and retrying. Returns bytes received.
int64_t fetch(const std::string& url, const RemoteFile& f, const std::string& dest,
              const PullOptions& o) {
  const std::string part = dest + ".part";
  check_output_path(part);
  int64_t received = 0;
  double delay = o.retry_delay_s;
  for (int attempt = 1;; ++attempt) {
    int64_t have = file_size_or(part, 0);
    if (have > f.size) {
      remove_quietly(part);
      have = 0;
    }
    if (have < f.size || f.size == 0) {
      if (have > 0 && attempt == 1)
        note(o, "resuming " + f.path + " at " + std::to_string(have) + " bytes");
      auto out = open_output_file(part, have > 0);
      int64_t at = have;
      bool first = true, write_failed = false, too_long = false;
      const Sink sink = [&](const char* data, size_t size, long status) {
        if (first && status == 200 && at > 0) {  // the server ignored the Range: start over
          out.reset(std::fopen(part.c_str(), "wb"));
          if (!out) return !(write_failed = true);
          at = 0;
        }
        first = false;
        // Never past the size the list announces: an endless body stops there.
        if (static_cast<int64_t>(size) > f.size - at) {
          too_long = true;
          return false;
        }
        if (std::fwrite(data, 1, size, out.get()) != size) return !(write_failed = true);
        at += static_cast<int64_t>(size);
        if (o.on_progress) o.on_progress(f, at);
        return true;
      };
      const Transfer t = get(url, o, sink, have);
      received += t.received;
      const bool flushed = out && std::fflush(out.get()) == 0;
      out.reset();
      if (too_long) {
        remove_quietly(part);
        throw Error("cannot download " + f.path + " from " + url +
                    ": the server sends more than the " + std::to_string(f.size) +
                    " bytes the file list announces (nothing kept)");
      }
      if (write_failed || !flushed) {
        throw Error("cannot write '" + one_line(part) + "' (disk full?)");
      }
      const bool got_status = t.code == CURLE_OK || t.body_too_long;
      if (got_status && t.status == 416) {
        remove_quietly(part);  // our part does not fit the remote file: start again
      } else if (got_status && t.status != 200 && t.status != 206) {
        http_error("cannot download " + f.path, url, t.status);
      } else if (t.code != CURLE_OK && attempt >= o.attempts) {
        throw Error("cannot download " + f.path + " from " + url + ": " + failure(t, o) +
                    " (after " + std::to_string(attempt) + " tries; run pull again to resume)");
      } else if (t.code != CURLE_OK) {
        note(o, "connection lost in " + f.path + " at " + std::to_string(file_size_or(part, 0)) +
                    " of " + std::to_string(f.size) + " bytes (" + failure(t, o) + "); resuming");
        std::this_thread::sleep_for(std::chrono::duration<double>(delay));
        delay *= 2;
        continue;
      }
    }
    const int64_t got = file_size_or(part, 0);
    if (got < f.size && attempt < o.attempts) continue;  // the server closed early: resume
    if (got != f.size) {
      throw Error("cannot download " + f.path + " from " + url + ": the server stopped after " +
                  std::to_string(got) + " of the " + std::to_string(f.size) +
                  " bytes the file list announces (run pull again to resume)");
    }
    if (!f.sha256.empty() && sha256_file(part) != f.sha256) {
      remove_quietly(part);
      throw Error(f.path + " does not match the hub's sha256 (" + f.sha256 +
                  "): the download was corrupt and has been removed; run pull again");
    }
    std::error_code ec;
    fs::rename(part, dest, ec);
    if (ec) {
      throw Error("cannot move the download '" + one_line(part) + "' to '" + one_line(dest) +
                  "': " + ec.message());
    }
    return received;
  }
}

}  // namespace

namespace {
// A positive number of seconds from the environment variable `name`, or `fallback` when unset.
double seconds_from_environment(const char* name, double fallback) {
  const char* text = std::getenv(name);
  if (!text || !*text) return fallback;
  char* end = nullptr;
  const double v = std::strtod(text, &end);
  if (*end != '\0' || !(v > 0 && v <= 86400)) {
    throw Error(std::string(name) + " must be a number of seconds from 0 to 86400, got " +
                quote_input(text));
  }
  return v;
}
}  // namespace

PullOptions options_from_environment() {
  PullOptions o;
  if (const char* e = std::getenv("HF_ENDPOINT"); e && *e) o.endpoint = e;
  if (const char* t = std::getenv("HF_TOKEN"); t && *t) {
    o.token = t;
  } else if (const char* t2 = std::getenv("HUGGING_FACE_HUB_TOKEN"); t2 && *t2) {
    o.token = t2;
  }
  o.stall_timeout_s = static_cast<long>(
      std::ceil(seconds_from_environment("SMOLVLM_PULL_STALL_S", double(o.stall_timeout_s))));
  o.list_deadline_s = seconds_from_environment("SMOLVLM_PULL_LIST_DEADLINE_S", o.list_deadline_s);
  return o;
}

void check_repo_id(const std::string& repo) {
  const size_t slash = repo.find('/');
  bool ok = slash != std::string::npos && slash > 0 && slash + 1 < repo.size() &&
            repo.find('/', slash + 1) == std::string::npos && repo.size() <= 96;
  for (char c : repo)
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '-' || c == '_' ||
                c == '.');
  if (!ok || repo.find("..") != std::string::npos) {
    throw Error(
        quote_input(repo) +
        " is not a repository id (owner/name, e.g. HuggingFaceTB/SmolVLM2-256M-Video-Instruct)");
  }
}

std::vector<RemoteFile> list_files(const std::string& repo, const PullOptions& o) {
  check_repo_id(repo);
  const std::string url =
      trim_slash(o.endpoint) + "/api/models/" + repo + "/tree/" + url_path(o.revision);
  const Transfer t = get(url, o, nullptr, 0, o.max_list_bytes, o.list_deadline_s);
  if (t.body_too_long) {
    throw Error("the file list from " + url + " is larger than " +
                format_bytes(static_cast<uint64_t>(o.max_list_bytes)) + "; refused");
  }
  if (t.code == CURLE_OPERATION_TIMEDOUT) {
    throw Error(
        "cannot list " + repo + ": " + url + " " +
        (t.error.find("too slow") != std::string::npos
             ? failure(t, o)
             : "did not send the whole file list within " + format_seconds(o.list_deadline_s)));
  }
  if (t.code != CURLE_OK) {
    throw Error("cannot reach " + trim_slash(o.endpoint) + ": " + t.error +
                " (is the network closed? HF_ENDPOINT can name a mirror)");
  }
  if (t.status != 200) http_error("cannot list " + repo, url, t.status);
  const nlohmann::json j = parse_json_bounded(t.body, "the file list from " + url);
  if (!j.is_array()) throw Error("the file list from " + url + " is not a JSON list");
  // Every field is checked for its type before use: the list comes from a server.
  auto text = [](const nlohmann::json& e, const char* key) {
    const auto it = e.find(key);
    return it != e.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  auto size_of = [](const nlohmann::json& e, int64_t& out) {
    const auto it = e.find("size");
    if (it == e.end() || !it->is_number_integer() || it->get<int64_t>() < 0) return false;
    out = it->get<int64_t>();
    return true;
  };
  std::vector<RemoteFile> files;
  std::set<std::string> names;
  for (size_t i = 0; i < j.size(); ++i) {
    const nlohmann::json& e = j[i];
    const std::string where =
        "entry " + std::to_string(i + 1) + " of the file list from " + url + " ";
    if (!e.is_object()) throw Error(where + "is not an object");
    const std::string type = text(e, "type"), path = text(e, "path");
    if (type == "directory") {
      note(o, "skipping the folder " + (bad_name(path).empty() ? path : quote_input(path)) +
                  "/ (not needed)");
      continue;
    }
    RemoteFile f{path, 0, {}};
    if (type != "file") throw Error(where + "is neither a file nor a folder");
    if (!size_of(e, f.size)) throw Error(where + "has no size in bytes");
    if (const std::string why = bad_name(path); !why.empty())
      throw Error("refusing the file name " + quote_input(path) + " from " + url + ": " + why);
    if (const auto lfs = e.find("lfs"); lfs != e.end() && lfs->is_object()) {
      f.sha256 = text(*lfs, "oid");
      if (f.sha256.empty()) f.sha256 = text(*lfs, "sha256");
      if (f.sha256.rfind("sha256:", 0) == 0) f.sha256.erase(0, 7);
      for (char& ch : f.sha256)
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (f.sha256.size() != 64 ||
          f.sha256.find_first_not_of("0123456789abcdef") != std::string::npos)
        f.sha256.clear();
      if (lfs->contains("size") && !size_of(*lfs, f.size))
        throw Error(where + "has no size in bytes for its LFS file");
    }
    if (!names.insert(path).second)
      throw Error("the file list from " + url + " names " + quote_input(path) + " twice");
    files.push_back(std::move(f));
  }
  // pull keeps a download in progress as NAME.part beside NAME: a listed NAME.part would be
  // overwritten by it (or the other way round).
  for (const RemoteFile& f : files) {
    if (names.count(f.path + ".part")) {
      throw Error("the file list from " + url + " names both " + quote_input(f.path) + " and " +
                  quote_input(f.path + ".part") +
                  ", which collide: pull keeps a download in progress as NAME.part");
    }
  }
  if (files.empty()) throw Error(repo + " has no files at its root");
  return files;
}

PullSummary pull(const std::string& repo, const std::string& dir, const PullOptions& o) {
  const std::vector<RemoteFile> files = list_files(repo, o);
  std::error_code ec, ec_dir;
  fs::create_directories(dir, ec);
  if (!fs::is_directory(dir, ec_dir))
    throw Error("cannot create the folder '" + one_line(dir) + "'" +
                (ec ? ": " + ec.message() : std::string()));
  PullSummary s;
  // Places that are not regular files are refused before anything is fetched.
  for (const RemoteFile& f : files) {
    const std::string dest = (fs::path(dir) / f.path).string();
    check_output_path(dest);
    check_output_path(dest + ".part");
  }
  for (const RemoteFile& f : files) {
    const std::string dest = (fs::path(dir) / f.path).string();
    ++s.files;
    if (complete(dest, f)) {
      if (o.on_file_done) o.on_file_done(f);
      continue;
    }
    const std::string url = trim_slash(o.endpoint) + "/" + repo + "/resolve/" +
                            url_path(o.revision) + "/" + url_path(f.path);
    s.bytes += fetch(url, f, dest, o);
    ++s.fetched;
    if (o.on_file_done) o.on_file_done(f);
  }
  return s;
}

}  // namespace smolvlm::net
