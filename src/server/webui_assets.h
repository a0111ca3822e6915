// The web page of `smolvlm serve` (webui/), compiled into the binary: the generated
// webui_assets.cpp (cmake/embed_webui.cmake) defines webui_assets().
#pragma once

#include <span>
#include <string_view>

namespace smolvlm::server {

struct WebAsset {
  const char* path;          // the URL path it is served at ("/", "/app.js", ...)
  const char* content_type;  // with its charset
  std::string_view body;
};

// Every file of the page, in a fixed order (the page itself first).
std::span<const WebAsset> webui_assets();

}  // namespace smolvlm::server
