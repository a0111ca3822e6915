// picture_change: what `smolvlm watch` uses to skip a frame that shows nothing new.
#include <cmath>

#include "video/live_source.h"

namespace smolvlm {

namespace {
constexpr int kThumb = 16;

// Mean grey level of each of kThumb×kThumb blocks: averaging removes most sensor noise.
std::vector<double> thumbnail(const Image& img) {
  std::vector<double> sum(kThumb * kThumb, 0.0), count(kThumb * kThumb, 0.0);
  for (int y = 0; y < img.height; ++y) {
    const int by = y * kThumb / img.height;
    for (int x = 0; x < img.width; ++x) {
      const uint8_t* p = img.pixel(x, y);
      const size_t b = static_cast<size_t>(by * kThumb + x * kThumb / img.width);
      sum[b] += 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
      count[b] += 1;
    }
  }
  for (size_t i = 0; i < sum.size(); ++i) sum[i] = count[i] > 0 ? sum[i] / count[i] : 0.0;
  return sum;
}
}  // namespace

double picture_change(const Image& a, const Image& b) {
  if (a.width <= 0 || a.height <= 0 || b.width <= 0 || b.height <= 0) return 255.0;
  const std::vector<double> ta = thumbnail(a), tb = thumbnail(b);
  double diff = 0;
  for (size_t i = 0; i < ta.size(); ++i) diff += std::fabs(ta[i] - tb[i]);
  return diff / static_cast<double>(ta.size());
}

}  // namespace smolvlm
