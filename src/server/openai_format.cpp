#include "server/openai_format.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>

namespace smolvlm::server {

using nlohmann::json;

json error_body(const std::string& message, const std::string& type, const std::string& param,
                const std::string& code) {
  return {{"error",
           {{"message", message},
            {"type", type},
            {"param", param.empty() ? json(nullptr) : json(param)},
            {"code", code.empty() ? json(nullptr) : json(code)}}}};
}

std::string finish_reason(const Result& r, bool stopped_by_string) {
  return r.stopped_by_eos || stopped_by_string ? "stop" : "length";
}

json usage_json(const Result& r) {
  const Metrics& m = r.metrics;
  return {{"prompt_tokens", m.prompt_tokens},
          {"completion_tokens", m.generated_tokens},
          {"total_tokens", m.prompt_tokens + m.generated_tokens},
          {"prompt_tokens_details", {{"cached_tokens", m.cached_tokens}}}};
}

json timings_json(const Result& r) {
  const Metrics& m = r.metrics;
  return {{"vision_ms", m.vision_ms},
          {"prefill_ms", m.prefill_ms},
          {"decode_ms", m.decode_ms},
          {"prompt_tokens", m.prompt_tokens},
          {"cached_tokens", m.cached_tokens},
          {"prefill_tokens_per_s", m.prefill_tokens_per_s()},
          {"decode_tokens_per_s", m.decode_tokens_per_s()},
          {"image_tiles", m.image_tiles},
          {"image_cache_hits", m.media_cache_hits}};  // the wire keeps its first name
}

CompletionId new_completion_id(const std::string& model) {
  // Unique within the process (counter) and across restarts (random start).
  static std::atomic<uint64_t> counter{std::random_device{}() * 0x100000000ull};
  char buf[40];
  std::snprintf(buf, sizeof buf, "chatcmpl-%016llx",
                static_cast<unsigned long long>(counter.fetch_add(1)));
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return {buf, std::chrono::duration_cast<std::chrono::seconds>(now).count(), model};
}

json completion_json(const CompletionId& id, const std::string& text, const Result& r,
                     bool stopped_by_string) {
  return {{"id", id.id},
          {"object", "chat.completion"},
          {"created", id.created},
          {"model", id.model},
          {"choices", json::array({{{"index", 0},
                                    {"message", {{"role", "assistant"}, {"content", text}}},
                                    {"logprobs", nullptr},
                                    {"finish_reason", finish_reason(r, stopped_by_string)}}})},
          {"usage", usage_json(r)},
          {"timings", timings_json(r)}};
}

json chunk_json(const CompletionId& id, json delta, const std::string& finish_reason,
                bool null_usage) {
  json j = {
      {"id", id.id},
      {"object", "chat.completion.chunk"},
      {"created", id.created},
      {"model", id.model},
      {"choices", json::array({{{"index", 0},
                                {"delta", std::move(delta)},
                                {"logprobs", nullptr},
                                {"finish_reason",
                                 finish_reason.empty() ? json(nullptr) : json(finish_reason)}}})}};
  if (null_usage) j["usage"] = nullptr;
  return j;
}

json usage_chunk_json(const CompletionId& id, const Result& r) {
  return {{"id", id.id},       {"object", "chat.completion.chunk"}, {"created", id.created},
          {"model", id.model}, {"choices", json::array()},          {"usage", usage_json(r)}};
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string sse_event(const json& j) { return "data: " + dump(j) + "\n\n"; }

}  // namespace smolvlm::server
