#include "net/hub.h"

#include <curl/curl.h>
#include <smolvlm/error.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "formats/file_hash.h"
#include "util/input_text.h"
#include "util/json_brief.h"
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
  std::string error;  // curl's words when code != CURLE_OK
  std::string body;   // small bodies (JSON, errors)
  int64_t received = 0;
};

using Sink = std::function<bool(const char* data, size_t size, long status)>;

struct WriteState {
  CURL* curl;
  const Sink* sink;
  Transfer* t;
};

size_t on_write(char* data, size_t one, size_t n, void* user) {
  auto* s = static_cast<WriteState*>(user);
  const size_t size = one * n;
  curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &s->t->status);
  s->t->received += static_cast<int64_t>(size);
  if ((s->t->status == 200 || s->t->status == 206) && *s->sink) {
    return (*s->sink)(data, size, s->t->status) ? size : 0;
  }
  if (s->t->body.size() < (8u << 20)) s->t->body.append(data, size);
  return size;
}

Transfer get(const std::string& url, const PullOptions& o, const Sink& sink, int64_t from = 0) {
  curl_init_once();
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) throw Error("cannot initialise libcurl");
  Transfer t;
  WriteState state{curl.get(), &sink, &t};
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
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &on_write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &state);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, o.connect_timeout_s);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);  // a stalled transfer (60 s without data) fails
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
  const std::string range = std::to_string(from) + "-";
  if (from > 0) curl_easy_setopt(c, CURLOPT_RANGE, range.c_str());
  t.code = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &t.status);
  if (t.code != CURLE_OK) t.error = errbuf[0] ? errbuf : curl_easy_strerror(t.code);
  return t;
}

[[noreturn]] void http_error(const std::string& what, const std::string& url, long status) {
  std::string hint;
  if (status == 401 || status == 403) hint = " (a gated or private model? set HF_TOKEN)";
  if (status == 404) hint = " (check the repository id and HF_ENDPOINT)";
  throw Error(what + ": HTTP " + std::to_string(status) + " from " + url + hint);
}

bool safe_name(const std::string& p) {
  return !p.empty() && p != "." && p != ".." && p.find('/') == std::string::npos &&
         p.find('\\') == std::string::npos && p.find('\0') == std::string::npos;
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

void note(const PullOptions& o, const std::string& line) {
  if (o.on_note) o.on_note(line);
}

// Fetches one file into dest (through dest.part), resuming and retrying. Returns bytes received.
int64_t fetch(const std::string& url, const RemoteFile& f, const std::string& dest,
              const PullOptions& o) {
  const std::string part = dest + ".part";
  int64_t received = 0;
  double delay = o.retry_delay_s;
  for (int attempt = 1;; ++attempt) {
    int64_t have = file_size_or(part, 0);
    if (have > f.size) {
      fs::remove(part);
      have = 0;
    }
    if (have < f.size || f.size == 0) {
      if (have > 0 && attempt == 1)
        note(o, "resuming " + f.path + " at " + std::to_string(have) + " bytes");
      std::unique_ptr<FILE, int (*)(FILE*)> out(std::fopen(part.c_str(), have > 0 ? "ab" : "wb"),
                                                &std::fclose);
      if (!out) throw Error("cannot write '" + part + "'");
      int64_t at = have;
      bool first = true;
      const Sink sink = [&](const char* data, size_t size, long status) {
        if (first && status == 200 && at > 0) {  // the server ignored the Range: start over
          out.reset(std::fopen(part.c_str(), "wb"));
          if (!out) return false;
          at = 0;
        }
        first = false;
        if (std::fwrite(data, 1, size, out.get()) != size) return false;
        at += static_cast<int64_t>(size);
        if (o.on_progress) o.on_progress(f, at);
        return true;
      };
      const Transfer t = get(url, o, sink, have);
      received += t.received;
      if (std::fflush(out.get()) != 0) throw Error("cannot write '" + part + "' (disk full?)");
      out.reset();
      if (t.code == CURLE_OK && t.status == 416) {
        fs::remove(part);  // our part does not fit the remote file: start again
      } else if (t.code == CURLE_OK && t.status != 200 && t.status != 206) {
        http_error("cannot download " + f.path, url, t.status);
      } else if (t.code == CURLE_WRITE_ERROR) {
        throw Error("cannot write '" + part + "' (disk full?)");
      } else if (t.code != CURLE_OK && attempt >= o.attempts) {
        throw Error("cannot download " + f.path + " from " + url + ": " + t.error + " (after " +
                    std::to_string(attempt) + " tries; run pull again to resume)");
      } else if (t.code != CURLE_OK) {
        note(o, "connection lost in " + f.path + " at " + std::to_string(file_size_or(part, 0)) +
                    " of " + std::to_string(f.size) + " bytes (" + t.error + "); resuming");
        std::this_thread::sleep_for(std::chrono::duration<double>(delay));
        delay *= 2;
        continue;
      }
    }
    const int64_t got = file_size_or(part, 0);
    if (got < f.size && attempt < o.attempts) continue;  // the server closed early: resume
    if (got != f.size) {
      throw Error(f.path + " has " + std::to_string(got) + " bytes, the hub says " +
                  std::to_string(f.size) + " (run pull again to resume)");
    }
    if (!f.sha256.empty() && sha256_file(part) != f.sha256) {
      fs::remove(part);
      throw Error(f.path + " does not match the hub's sha256 (" + f.sha256 +
                  "): the download was corrupt and has been removed; run pull again");
    }
    fs::rename(part, dest);
    return received;
  }
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
        "'" + repo +
        "' is not a repository id (owner/name, e.g. HuggingFaceTB/SmolVLM2-256M-Video-Instruct)");
  }
}

std::vector<RemoteFile> list_files(const std::string& repo, const PullOptions& o) {
  check_repo_id(repo);
  const std::string url =
      trim_slash(o.endpoint) + "/api/models/" + repo + "/tree/" + url_path(o.revision);
  const Transfer t = get(url, o, nullptr);
  if (t.code != CURLE_OK) {
    throw Error("cannot reach " + trim_slash(o.endpoint) + ": " + t.error +
                " (is the network closed? HF_ENDPOINT can name a mirror)");
  }
  if (t.status != 200) http_error("cannot list " + repo, url, t.status);
  const nlohmann::json j = parse_json_bounded(t.body, "the file list from " + url);
  if (!j.is_array()) throw Error("the file list from " + url + " is not a JSON list");
  std::vector<RemoteFile> files;
  for (const auto& e : j) {
    const std::string type = e.value("type", ""), path = e.value("path", "");
    if (type == "directory") {
      note(o, "skipping the folder " + path + "/ (not needed)");
      continue;
    }
    if (type != "file" || !e.contains("size") || !e["size"].is_number_integer() ||
        e["size"].get<int64_t>() < 0) {
      throw Error("unexpected entry in the file list from " + url + ": " + brief_json(e));
    }
    if (!safe_name(path)) throw Error("refusing the file name '" + path + "' from " + url);
    RemoteFile f{path, e["size"].get<int64_t>(), {}};
    if (e.contains("lfs") && e["lfs"].is_object()) {
      const auto& lfs = e["lfs"];
      f.sha256 = lfs.value("oid", lfs.value("sha256", ""));
      if (f.sha256.rfind("sha256:", 0) == 0) f.sha256.erase(0, 7);
      if (lfs.contains("size") && lfs["size"].is_number_integer())
        f.size = lfs["size"].get<int64_t>();
      if (f.sha256.size() != 64) f.sha256.clear();
    }
    files.push_back(std::move(f));
  }
  if (files.empty()) throw Error(repo + " has no files at its root");
  return files;
}

PullSummary pull(const std::string& repo, const std::string& dir, const PullOptions& o) {
  const std::vector<RemoteFile> files = list_files(repo, o);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!fs::is_directory(dir, ec)) throw Error("cannot create the folder '" + dir + "'");
  PullSummary s;
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
