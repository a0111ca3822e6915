// OpenAI chat-completions body -> ChatRequest (see request.h).
#include "server/request.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <system_error>

#include "net/remote_fetch.h"
#include "server/response_format.h"
#include "util/input_text.h"
#include "vision/picture_format.h"

namespace smolvlm::server {

namespace {

using nlohmann::json;

RequestError bad(const std::string& param, const std::string& what) {
  return RequestError(400, param + ": " + what, "invalid_request_error", param);
}

const json* field(const json& object, const char* key) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

double number(const json& v, const std::string& param, double lo, double hi) {
  if (!v.is_number()) throw bad(param, "must be a number");
  const double x = v.get<double>();
  if (!(x >= lo && x <= hi)) {
    throw bad(param, "must be from " + json(lo).dump() + " to " + json(hi).dump());
  }
  return x;
}

int64_t integer(const json& v, const std::string& param, int64_t lo, int64_t hi) {
  if (!v.is_number_integer()) throw bad(param, "must be a whole number");
  int64_t x = 0;
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(hi)) throw bad(param, "must be at most " + std::to_string(hi));
    x = static_cast<int64_t>(u);
  } else {
    x = v.get<int64_t>();
  }
  if (x < lo || x > hi) {
    throw bad(param, "must be from " + std::to_string(lo) + " to " + std::to_string(hi));
  }
  return x;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// A data: URI's media type and decoded bytes; `kind` is "image" or "video".
std::string decode_data_uri(const std::string& url, const std::string& kind,
                            const std::string& param, std::string& media_type) {
  const size_t comma = url.find(',');
  if (comma == std::string::npos) throw bad(param, "the data: URI has no ','");
  const std::string header = url.substr(5, comma - 5);  // after "data:"
  const std::string suffix = ";base64";
  if (header.size() < suffix.size() ||
      header.compare(header.size() - suffix.size(), suffix.size(), suffix) != 0) {
    throw bad(param, "the data: URI must be base64 (data:" + kind + "/...;base64,...)");
  }
  media_type = header.substr(0, header.size() - suffix.size());
  if (!media_type.empty() && !starts_with(media_type, kind + "/") &&
      media_type != "application/octet-stream") {
    throw bad(param, "a " + kind + " data: URI cannot have the media type '" + media_type + "'");
  }
  std::string bytes;
  if (!decode_base64(std::string_view(url).substr(comma + 1), bytes)) {
    throw bad(param, "the data: URI holds malformed base64");
  }
  if (bytes.empty()) throw bad(param, "the data: URI is empty");
  return bytes;
}

// The format by the bytes' magic (the media type is not trusted); decoding comes later.
void check_picture_bytes(const std::string& bytes, const std::string& param) {
  if (!picture_format(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size())) {
    throw bad(param, std::string("the bytes are not a picture in a known format (") +
                         kPictureFormats + ")");
  }
}

std::string local_path(const std::string& url, const RequestPolicy& policy,
                       const std::string& param) {
  std::string path = starts_with(url, "file://") ? url.substr(7) : url;
  if (policy.local_media_dir.empty()) {
    throw bad(param,
              "only data: URIs are accepted (local files need --allow-local-images DIR, "
              "http(s) URLs --allow-remote-images)");
  }
  if (path.empty()) throw bad(param, "the path is empty");
  if (path.front() != '/') path = policy.local_media_dir + "/" + path;
  return resolve_inside(policy.local_media_dir, path, param);
}

Content image_part(const json& part, const RequestPolicy& policy, const std::string& param) {
  const json* image = field(part, "image_url");
  if (!image) throw bad(param, "an image_url part needs \"image_url\"");
  const json* url = image->is_object() ? field(*image, "url") : image;
  if (!url || !url->is_string()) throw bad(param + ".image_url.url", "must be a string");
  const std::string& u = url->get_ref<const std::string&>();
  const std::string p = param + ".image_url.url";
  if (starts_with(u, "data:")) {
    std::string media_type;
    std::string bytes = decode_data_uri(u, "image", p, media_type);
    check_picture_bytes(bytes, p);
    return Content::image_bytes(std::move(bytes));
  }
  if (starts_with(u, "http://") || starts_with(u, "https://")) {
    if (!policy.allow_remote_images) {
      throw bad(p, "http(s) picture URLs are off (start the server with --allow-remote-images)");
    }
    std::string bytes;
    try {
      bytes = policy.fetch ? policy.fetch(u, policy.max_remote_bytes)
                           : fetch_remote(u, policy.max_remote_bytes);
    } catch (const RequestError& e) {
      if (e.status() != 400) throw;
      throw bad(p, e.what());
    }
    check_picture_bytes(bytes, p);
    return Content::image_bytes(std::move(bytes));
  }
  return Content::image_file(local_path(u, policy, p));
}

Content video_part(const json& part, const RequestPolicy& policy, const std::string& param,
                   TempFiles& temp_files) {
  const json* video = field(part, "video_url");
  if (!video) throw bad(param, "a video_url part needs \"video_url\"");
  const json* url = video->is_object() ? field(*video, "url") : video;
  if (!url || !url->is_string()) throw bad(param + ".video_url.url", "must be a string");
  const std::string& u = url->get_ref<const std::string&>();
  const std::string p = param + ".video_url.url";
  if (starts_with(u, "data:")) {
    std::string media_type;
    const std::string bytes = decode_data_uri(u, "video", p, media_type);
    // The decoder goes by the bytes; the suffix only helps a human reading the temp folder.
    std::string suffix = ".video";
    if (starts_with(media_type, "video/")) {
      const std::string sub = media_type.substr(6);
      if (!sub.empty() && sub.size() <= 8 &&
          sub.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789") == std::string::npos) {
        suffix = "." + sub;
      }
    }
    const std::string dir =
        policy.temp_dir.empty() ? std::filesystem::temp_directory_path().string() : policy.temp_dir;
    return Content::video_file(temp_files.write(dir, bytes, suffix));
  }
  if (starts_with(u, "http://") || starts_with(u, "https://")) {
    throw bad(p, "videos must be data: URIs or allowed local paths");
  }
  return Content::video_file(local_path(u, policy, p));
}

Message parse_message(const json& m, size_t index, const RequestPolicy& policy,
                      TempFiles& temp_files, int& pictures) {
  const std::string param = "messages[" + std::to_string(index) + "]";
  if (!m.is_object()) throw bad(param, "must be an object");
  const json* role = field(m, "role");
  if (!role || !role->is_string()) throw bad(param + ".role", "must be a string");
  Message msg;
  msg.role = role->get<std::string>();
  if (msg.role == "developer") msg.role = "system";  // OpenAI's newer name for it
  if (msg.role != "system" && msg.role != "user" && msg.role != "assistant") {
    throw bad(param + ".role", "must be system, user or assistant, not '" + msg.role + "'");
  }
  const json* content = field(m, "content");
  if (!content) {
    if (msg.role == "assistant") return msg;  // an assistant turn may carry no text
    throw bad(param + ".content", "is missing");
  }
  if (content->is_string()) {
    msg.content.push_back(Content::plain_text(content->get<std::string>()));
    return msg;
  }
  if (!content->is_array()) throw bad(param + ".content", "must be a string or a list of parts");
  for (size_t j = 0; j < content->size(); ++j) {
    const json& part = (*content)[j];
    const std::string p = param + ".content[" + std::to_string(j) + "]";
    if (!part.is_object()) throw bad(p, "must be an object");
    const json* type = field(part, "type");
    if (!type || !type->is_string()) throw bad(p + ".type", "must be a string");
    const std::string& t = type->get_ref<const std::string&>();
    if (t == "text") {
      const json* text = field(part, "text");
      if (!text || !text->is_string()) throw bad(p + ".text", "must be a string");
      msg.content.push_back(Content::plain_text(text->get<std::string>()));
    } else if (t == "image_url") {
      if (msg.role == "system") throw bad(p, "a system message cannot hold a picture");
      if (++pictures > policy.max_pictures) {
        throw bad(p, "more than " + std::to_string(policy.max_pictures) +
                         " pictures in one request (the server's limit)");
      }
      msg.content.push_back(image_part(part, policy, p));
    } else if (t == "video_url") {
      if (msg.role == "system") throw bad(p, "a system message cannot hold a video");
      msg.content.push_back(video_part(part, policy, p, temp_files));
    } else {
      throw bad(p + ".type", "unsupported part type '" + t + "' (text, image_url or video_url)");
    }
  }
  return msg;
}

// OpenAI parameters this server does not implement: a request that asks for them gets a 400
// naming the parameter rather than an answer that silently ignores them. The values that ask
// for nothing (an empty tool list, logprobs false, a penalty of 0, plain text) are accepted.
void refuse_unsupported(const json& j) {
  for (const char* key : {"tools", "functions"}) {
    if (const json* v = field(j, key)) {
      if (!v->is_array()) throw bad(key, "must be a list");
      if (!v->empty()) throw bad(key, "tool and function calls are not supported by this server");
    }
  }
  for (const char* key : {"tool_choice", "function_call"}) {
    if (const json* v = field(j, key)) {
      // With no tools, "none" and "auto" both mean a text answer.
      if (!v->is_string() || (*v != "none" && *v != "auto")) {
        throw bad(key, "tool and function calls are not supported by this server");
      }
    }
  }
  if (const json* v = field(j, "logprobs")) {
    if (!v->is_boolean()) throw bad("logprobs", "must be true or false");
    if (v->get<bool>()) throw bad("logprobs", "log probabilities are not supported by this server");
  }
  if (const json* v = field(j, "top_logprobs")) {
    if (integer(*v, "top_logprobs", 0, 20) != 0) {
      throw bad("top_logprobs", "log probabilities are not supported by this server");
    }
  }
  for (const char* key : {"presence_penalty", "frequency_penalty"}) {
    if (const json* v = field(j, key); v && number(*v, key, -2, 2) != 0) {
      throw bad(key, "is not supported by this server (repeat_penalty is)");
    }
  }
  if (const json* v = field(j, "logit_bias")) {
    if (!v->is_object()) throw bad("logit_bias", "must be an object");
    if (!v->empty()) throw bad("logit_bias", "is not supported by this server");
  }
  // response_format is structured outputs (server/response_format.h), applied with the options.
}

}  // namespace

TempFiles::~TempFiles() {
  for (const std::string& p : paths_) std::remove(p.c_str());
}

std::string TempFiles::write(const std::string& dir, const std::string& bytes,
                             const std::string& suffix) {
  std::string path = dir + "/smolvlm-upload-XXXXXX" + suffix;
  const int fd = mkstemps(path.data(), static_cast<int>(suffix.size()));
  if (fd < 0)
    throw RequestError(500, "cannot create a temporary file in '" + dir + "'", "server_error");
  paths_.push_back(path);
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n <= 0) {
      ::close(fd);
      throw RequestError(500, "cannot write the temporary file '" + path + "'", "server_error");
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return path;
}

std::string encode_base64(std::string_view bytes) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (const char c : bytes) {
    acc = (acc << 8) | static_cast<uint8_t>(c);
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += a[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += a[(acc << (6 - bits)) & 63];
  while (out.size() % 4 != 0) out += '=';
  return out;
}

bool decode_base64(std::string_view text, std::string& out) {
  static const std::array<int8_t, 256> table = [] {
    std::array<int8_t, 256> t{};
    t.fill(-1);
    const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) t[static_cast<uint8_t>(alphabet[i])] = static_cast<int8_t>(i);
    return t;
  }();
  size_t n = text.size();
  size_t padding = 0;
  while (n > 0 && text[n - 1] == '=' && padding < 2) {
    --n;
    ++padding;
  }
  if (padding > 0 && text.size() % 4 != 0) return false;
  if (n % 4 == 1) return false;
  out.clear();
  out.reserve(n / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; ++i) {
    const int v = table[static_cast<uint8_t>(text[i])];
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  // The leftover bits of the last group must be zero (one spelling per byte string).
  return (acc & ((1u << bits) - 1)) == 0;
}

bool json_depth_within(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

std::string resolve_inside(const std::string& dir, const std::string& path,
                           const std::string& param) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path root = fs::canonical(dir, ec);
  if (ec) throw RequestError(500, "the media folder '" + dir + "' is unusable", "server_error");
  const fs::path real = fs::canonical(path, ec);
  if (ec) throw bad(param, "no such file in the allowed folder");
  // Compared after resolving: neither ".." nor a symlink can lead outside the folder.
  const fs::path rel = real.lexically_relative(root);
  if (rel.empty() || *rel.begin() == ".." || !fs::is_regular_file(real, ec)) {
    throw bad(param, "the path is outside the allowed folder or not a file");
  }
  return real.string();
}

ChatRequest parse_chat_request(std::string_view body, const RequestPolicy& policy,
                               TempFiles& temp_files) {
  if (!json_depth_within(body, kMaxJsonDepth)) {
    throw RequestError(400,
                       "the body nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  }
  json j;
  try {
    j = parse_json_bounded(body, "the body");  // its message names the byte, not nlohmann's text
  } catch (const Error& e) {
    throw RequestError(400, e.what());
  }
  if (!j.is_object()) throw RequestError(400, "the body must be a JSON object");
  ChatRequest r;
  if (const json* model = field(j, "model")) {
    if (!model->is_string()) throw bad("model", "must be a string");
    r.model = model->get<std::string>();
  }
  if (const json* n = field(j, "n")) {
    if (integer(*n, "n", 1, 1 << 20) != 1) throw bad("n", "only 1 choice per request is supported");
  }
  refuse_unsupported(j);
  const json* messages = field(j, "messages");
  if (!messages || !messages->is_array()) throw bad("messages", "must be a list of messages");
  if (messages->empty()) throw bad("messages", "is empty");
  for (size_t i = 0; i < messages->size(); ++i) {
    r.conversation.push_back(parse_message((*messages)[i], i, policy, temp_files, r.pictures));
  }
  if (r.conversation.back().role != "user") {
    throw bad("messages", "the last message must be the user's");
  }

  GenerationOptions& o = r.options;
  o.max_new_tokens = policy.default_max_tokens;
  for (const char* key : {"max_completion_tokens", "max_tokens"}) {
    if (const json* v = field(j, key)) {
      o.max_new_tokens = static_cast<int>(integer(*v, key, 1, policy.max_tokens_limit));
      break;  // max_completion_tokens wins: max_tokens is its deprecated name
    }
  }
  if (const json* v = field(j, "temperature")) {
    o.temperature = static_cast<float>(number(*v, "temperature", 0, 2));
  }
  if (const json* v = field(j, "top_p")) o.top_p = static_cast<float>(number(*v, "top_p", 0, 1));
  if (o.top_p <= 0) throw bad("top_p", "must be above 0");
  if (const json* v = field(j, "top_k"))
    o.top_k = static_cast<int>(integer(*v, "top_k", 0, 1 << 20));
  if (const json* v = field(j, "repeat_penalty")) {
    o.repeat_penalty = static_cast<float>(number(*v, "repeat_penalty", 0.01, 100));
  }
  if (const json* v = field(j, "seed")) {
    if (!v->is_number_integer()) throw bad("seed", "must be a whole number");
    o.seed =
        v->is_number_unsigned() ? v->get<uint64_t>() : static_cast<uint64_t>(v->get<int64_t>());
    r.seeded = true;
  }
  if (const json* v = field(j, "stop")) {
    if (v->is_string()) {
      r.stop.push_back(v->get<std::string>());
    } else if (v->is_array()) {
      if (v->size() > 16) throw bad("stop", "at most 16 stop strings");
      for (const json& s : *v) {
        if (!s.is_string()) throw bad("stop", "must be a string or a list of strings");
        r.stop.push_back(s.get<std::string>());
      }
    } else {
      throw bad("stop", "must be a string or a list of strings");
    }
    for (const std::string& s : r.stop) {
      if (s.empty()) throw bad("stop", "a stop string cannot be empty");
    }
  }
  if (const json* v = field(j, "response_format")) apply_response_format(*v, o, body);
  if (const json* v = field(j, "stream")) {
    if (!v->is_boolean()) throw bad("stream", "must be true or false");
    r.stream = v->get<bool>();
  }
  if (const json* v = field(j, "stream_options")) {
    if (!v->is_object()) throw bad("stream_options", "must be an object");
    if (const json* u = field(*v, "include_usage")) {
      if (!u->is_boolean()) throw bad("stream_options.include_usage", "must be true or false");
      r.include_usage = u->get<bool>();
    }
  }
  return r;
}

std::string fetch_remote(const std::string& url, size_t max_bytes) {
  try {
    return net::fetch_url(url, max_bytes);
  } catch (const net::FetchError& e) {
    if (e.local()) throw RequestError(500, e.what(), "server_error");
    throw RequestError(400, e.what());
  }
}

}  // namespace smolvlm::server
