// One-line reports of a model and of an answer, for `smolvlm chat --verbose` and RK35llm::SetInfo.
#include <smolvlm/smolvlm.h>

#include <cstdio>
#include <cstring>

namespace smolvlm {

std::string Metrics::summary() const {
  char image[128] = "no image";
  if (image_tiles > 0 && vision_ms > 0) {
    std::snprintf(image, sizeof image, "image %d tiles, encoded in %.0f ms", image_tiles,
                  vision_ms);
  } else if (image_tiles > 0) {
    std::snprintf(image, sizeof image, "image %d tiles, cached", image_tiles);
  }
  if (video_decode_ms > 0) {  // a video's frames were decoded for this answer
    const size_t n = std::strlen(image);
    std::snprintf(image + n, sizeof image - n, " (video decoded in %.0f ms)", video_decode_ms);
  }
  char line[352];
  std::snprintf(line, sizeof line,
                "in %d tokens (%d new, %d cached), out %d tokens | %s | prefill %.1f tok/s, decode "
                "%.1f tok/s | peak RAM %.0f MB",
                prompt_tokens, prefill_tokens(), cached_tokens, generated_tokens, image,
                prefill_tokens_per_s(), decode_tokens_per_s(),
                static_cast<double>(peak_rss_bytes) / 1e6);
  return line;
}

std::string ModelInfo::summary() const {
  char line[256];
  std::snprintf(
      line, sizeof line,
      "%.0fM parameters; text %d layers x %d, vocab %d; vision %d layers x %d, %d px tiles "
      "of %d tokens; context %d; %d threads, %s kernels",
      static_cast<double>(parameters) / 1e6, text_layers, text_hidden, vocab, vision_layers,
      vision_hidden, tile_size, tokens_per_tile, context, threads, kernels.c_str());
  return "model " + path + ": " + line;
}

}  // namespace smolvlm
