// Pillow-exact LANCZOS / BICUBIC resizing.
//
// Resizing follows the algorithm of Pillow's Resample.c as described in the spec (§7.6): separable,
// horizontal pass first (over the source rows the vertical pass uses), uint8 between the passes, a
// pass skipped when its dimension is unchanged, 22-bit fixed-point weights.
#include "vision/resize.h"

#include <smolvlm/error.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>
#include <vector>

#include "vision/image.h"

// The filter arithmetic must not be contracted into fused multiply-adds (aarch64, -march=native),
// or the weights differ from Pillow's in the last bit and pixels move by one level.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace smolvlm {
namespace {

constexpr int kPrecisionBits = 22;  // 32 - 8 - 2, as in Pillow's 8-bit path

double sinc(double x) {
  if (x == 0.0) return 1.0;
  x = x * std::numbers::pi;
  return std::sin(x) / x;
}

double lanczos3(double x) {
  if (-3.0 <= x && x < 3.0) return sinc(x) * sinc(x / 3.0);
  return 0.0;
}

double bicubic(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

struct Filter {
  double (*fn)(double);
  double support;
};

// Per output index: the first input index and the number of taps, and `ksize` fixed-point weights.
struct Coeffs {
  int ksize = 0;
  std::vector<int> first;
  std::vector<int> count;
  std::vector<int32_t> k;
  int64_t max_abs_sum = 0;  // the largest Σ|k| of one output, to choose the accumulator width
};

Coeffs make_coeffs(int in_size, int out_size, const Filter& f) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = f.support * filterscale;
  Coeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.first.resize(out_size);
  c.count.resize(out_size);
  c.k.assign(static_cast<size_t>(out_size) * c.ksize, 0);
  std::vector<double> w(c.ksize);
  const double inv_fs = 1.0 / filterscale;
  for (int o = 0; o < out_size; ++o) {
    const double center = (o + 0.5) * scale;
    const int lo = std::max(0, static_cast<int>(center - support + 0.5));
    const int hi = std::min(in_size, static_cast<int>(center + support + 0.5));
    const int n = std::max(0, std::min(hi - lo, c.ksize));
    double total = 0.0;
    for (int j = 0; j < n; ++j) {
      w[j] = f.fn((j + lo - center + 0.5) * inv_fs);
      total += w[j];
    }
    int64_t abs_sum = 0;
    int32_t* kk = &c.k[static_cast<size_t>(o) * c.ksize];
    for (int j = 0; j < n; ++j) {
      const double v = total != 0.0 ? w[j] / total : w[j];
      const double fixed = v * (1 << kPrecisionBits);
      kk[j] = static_cast<int32_t>(v < 0 ? fixed - 0.5 : fixed + 0.5);
      abs_sum += std::abs(static_cast<int64_t>(kk[j]));
    }
    c.first[o] = lo;
    c.count[o] = n;
    c.max_abs_sum = std::max(c.max_abs_sum, abs_sum);
  }
  return c;
}

inline uint8_t clip8(int64_t acc) {
  const int64_t v = acc >> kPrecisionBits;
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// int32 accumulators (as Pillow) whenever they cannot overflow; int64 otherwise.
bool fits_int32(const Coeffs& c) {
  return (int64_t{1} << (kPrecisionBits - 1)) + 255 * c.max_abs_sum < (int64_t{1} << 31) - 1;
}

// Horizontal pass over source rows [y0, y0 + rows).
template <typename Acc>
void horizontal_pass(const Image& src, int y0, int rows, const Coeffs& c, Image& dst) {
  const int out_w = dst.width;
  for (int y = 0; y < rows; ++y) {
    const uint8_t* in = src.pixel(0, y0 + y);
    uint8_t* out = dst.pixel(0, y);
    for (int x = 0; x < out_w; ++x) {
      const int32_t* kk = &c.k[static_cast<size_t>(x) * c.ksize];
      const uint8_t* p = in + 3 * static_cast<size_t>(c.first[x]);
      Acc s0 = Acc{1} << (kPrecisionBits - 1), s1 = s0, s2 = s0;
      for (int j = 0, n = c.count[x]; j < n; ++j) {
        s0 += p[3 * j] * static_cast<Acc>(kk[j]);
        s1 += p[3 * j + 1] * static_cast<Acc>(kk[j]);
        s2 += p[3 * j + 2] * static_cast<Acc>(kk[j]);
      }
      out[3 * x] = clip8(s0);
      out[3 * x + 1] = clip8(s1);
      out[3 * x + 2] = clip8(s2);
    }
  }
}

template <typename Acc>
void vertical_pass(const Image& src, int row_shift, const Coeffs& c, Image& dst) {
  const size_t n = static_cast<size_t>(dst.width) * 3;
  std::vector<Acc> acc(n);
  for (int y = 0; y < dst.height; ++y) {
    std::fill(acc.begin(), acc.end(), Acc{1} << (kPrecisionBits - 1));
    const int32_t* kk = &c.k[static_cast<size_t>(y) * c.ksize];
    for (int j = 0, cnt = c.count[y]; j < cnt; ++j) {
      const uint8_t* in = src.pixel(0, c.first[y] - row_shift + j);
      const Acc k = kk[j];
      for (size_t i = 0; i < n; ++i) acc[i] += in[i] * k;
    }
    uint8_t* out = dst.pixel(0, y);
    for (size_t i = 0; i < n; ++i) out[i] = clip8(acc[i]);
  }
}

Image resample(const Image& src, int width, int height, const Filter& f, const char* what) {
  if (src.width <= 0 || src.height <= 0 ||
      src.rgb.size() != static_cast<size_t>(src.width) * static_cast<size_t>(src.height) * 3) {
    throw Error(std::string(what) + ": invalid source image");
  }
  const std::string bad = check_image_dims(width, height);
  if (!bad.empty()) throw Error(std::string(what) + ": target " + bad);
  if (width == src.width && height == src.height) return src;

  const bool need_h = width != src.width;
  const bool need_v = height != src.height;
  const Coeffs ch = make_coeffs(src.width, width, f);
  const Coeffs cv = make_coeffs(src.height, height, f);

  // Source rows the vertical pass reads.
  const int row_first = cv.first[0];
  const int row_last = cv.first[height - 1] + cv.count[height - 1];

  Image tmp;
  const Image* vin = &src;
  int row_shift = 0;
  if (need_h) {
    tmp.width = width;
    tmp.height = row_last - row_first;
    tmp.rgb.resize(static_cast<size_t>(tmp.width) * static_cast<size_t>(tmp.height) * 3);
    if (fits_int32(ch)) {
      horizontal_pass<int32_t>(src, row_first, tmp.height, ch, tmp);
    } else {
      horizontal_pass<int64_t>(src, row_first, tmp.height, ch, tmp);
    }
    if (!need_v) return tmp;
    vin = &tmp;
    row_shift = row_first;
  }
  Image out;
  out.width = width;
  out.height = height;
  out.rgb.resize(static_cast<size_t>(width) * static_cast<size_t>(height) * 3);
  if (fits_int32(cv)) {
    vertical_pass<int32_t>(*vin, row_shift, cv, out);
  } else {
    vertical_pass<int64_t>(*vin, row_shift, cv, out);
  }
  return out;
}

}  // namespace

Image resize_lanczos(const Image& src, int width, int height) {
  return resample(src, width, height, Filter{lanczos3, 3.0}, "LANCZOS resize");
}

Image resize_bicubic(const Image& src, int width, int height) {
  return resample(src, width, height, Filter{bicubic, 2.0}, "BICUBIC resize");
}

}  // namespace smolvlm
