// The GGUF K-quant, legacy and IQ4 block types (formats/kquants.h): blocks packed by hand here
// from the layouts (ggml-common.h's structs, written as encoders: logical codes and scales in,
// bytes out) dequantise to the values the layout defines, in the plain twin and, through
// one-hot activations, in every kernel path's decode kernel; and the fast products follow
// their twins on random blocks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "formats/kquants.h"
#include "formats/quantize.h"
#include "formats/tensor.h"
#include "kernels/kernel_path.h"
#include "kernels/kernels.h"
#include "kernels/q4k_panels.h"

namespace smolvlm {
namespace {

void put_half(uint8_t* p, float v) {
  const uint16_t h = f32_to_f16(v);
  std::memcpy(p, &h, 2);
}
float as_half(float v) { return f16_to_f32(f32_to_f16(v)); }

// One block's logical content: the stored codes (unsigned, as the bits hold them), the f16
// super-scales and the sub-block scales / mins.
struct Logical {
  std::vector<int> code;
  float d = 0, dmin = 0;
  std::vector<int> sc, mn;
};

// "Nibbles of 32": byte j = code j | code j+16 << 4.
void pack_nibbles32(const int* c, uint8_t* out) {
  for (int j = 0; j < 16; ++j) out[j] = static_cast<uint8_t>(c[j] | c[j + 16] << 4);
}

// The bytes of one block of type t holding `l`.
std::vector<uint8_t> encode(DType t, const Logical& l) {
  std::vector<uint8_t> b(block_bytes(t), 0);
  const int* c = l.code.data();
  switch (t) {
    case DType::Q4_1:
      put_half(b.data(), l.d);
      put_half(b.data() + 2, l.dmin);
      pack_nibbles32(c, b.data() + 4);
      break;
    case DType::Q5_0:
    case DType::Q5_1: {
      const size_t o = t == DType::Q5_1 ? 4 : 2;
      put_half(b.data(), l.d);
      if (t == DType::Q5_1) put_half(b.data() + 2, l.dmin);
      uint32_t qh = 0;
      int low[32];
      for (int j = 0; j < 32; ++j) {
        qh |= static_cast<uint32_t>(c[j] >> 4) << j;
        low[j] = c[j] & 15;
      }
      std::memcpy(b.data() + o, &qh, 4);
      pack_nibbles32(low, b.data() + o + 4);
      break;
    }
    case DType::IQ4_NL:
      put_half(b.data(), l.d);
      pack_nibbles32(c, b.data() + 2);
      break;
    case DType::IQ4_XS: {
      put_half(b.data(), l.d);
      uint16_t sh = 0;
      for (int s = 0; s < 8; ++s) {
        sh = static_cast<uint16_t>(sh | (l.sc[s] >> 4) << (2 * s));
        b[4 + s / 2] = static_cast<uint8_t>(b[4 + s / 2] | (l.sc[s] & 15) << (4 * (s % 2)));
        pack_nibbles32(c + 32 * s, b.data() + 8 + 16 * s);
      }
      std::memcpy(b.data() + 2, &sh, 2);
      break;
    }
    case DType::Q4_K:
    case DType::Q5_K: {
      put_half(b.data(), l.d);
      put_half(b.data() + 2, l.dmin);
      uint8_t* s = b.data() + 4;
      for (int j = 0; j < 4; ++j) {
        s[j] = static_cast<uint8_t>((l.sc[j] & 63) | (l.sc[j + 4] >> 4) << 6);
        s[j + 4] = static_cast<uint8_t>((l.mn[j] & 63) | (l.mn[j + 4] >> 4) << 6);
        s[j + 8] = static_cast<uint8_t>((l.sc[j + 4] & 15) | (l.mn[j + 4] & 15) << 4);
      }
      const bool five = t == DType::Q5_K;
      uint8_t* qs = b.data() + (five ? 48 : 16);
      for (int ch = 0; ch < 4; ++ch) {
        for (int j = 0; j < 32; ++j) {
          const int lo = c[64 * ch + j], hi = c[64 * ch + 32 + j];
          qs[32 * ch + j] = static_cast<uint8_t>((lo & 15) | (hi & 15) << 4);
          if (five)
            b[16 + j] =
                static_cast<uint8_t>(b[16 + j] | (lo >> 4) << (2 * ch) | (hi >> 4) << (2 * ch + 1));
        }
      }
      break;
    }
    case DType::Q6_K:
      for (int h = 0; h < 2; ++h) {
        for (int j = 0; j < 32; ++j) {
          const int* v = c + 128 * h + j;  // v[32k] is value 128h + 32k + j
          b[64 * h + j] = static_cast<uint8_t>((v[0] & 15) | (v[64] & 15) << 4);
          b[64 * h + 32 + j] = static_cast<uint8_t>((v[32] & 15) | (v[96] & 15) << 4);
          b[128 + 32 * h + j] = static_cast<uint8_t>(v[0] >> 4 | (v[32] >> 4) << 2 |
                                                     (v[64] >> 4) << 4 | (v[96] >> 4) << 6);
        }
      }
      for (int g = 0; g < 16; ++g) b[192 + g] = static_cast<uint8_t>(static_cast<int8_t>(l.sc[g]));
      put_half(b.data() + 208, l.d);
      break;
    case DType::Q3_K:
      for (int h = 0; h < 2; ++h) {
        for (int k = 0; k < 4; ++k) {
          for (int j = 0; j < 32; ++j) {
            const int v = c[128 * h + 32 * k + j];
            b[32 + 32 * h + j] = static_cast<uint8_t>(b[32 + 32 * h + j] | (v & 3) << (2 * k));
            b[j] = static_cast<uint8_t>(b[j] | (v >> 2) << (4 * h + k));
          }
        }
      }
      for (int g = 0; g < 16; ++g) {
        uint8_t* s = b.data() + 96;
        if (g < 8) {
          s[g] = static_cast<uint8_t>(s[g] | (l.sc[g] & 15));
        } else {
          s[g - 8] = static_cast<uint8_t>(s[g - 8] | (l.sc[g] & 15) << 4);
        }
        s[8 + g % 4] = static_cast<uint8_t>(s[8 + g % 4] | (l.sc[g] >> 4) << (2 * (g / 4)));
      }
      put_half(b.data() + 108, l.d);
      break;
    case DType::Q2_K:
      for (int g = 0; g < 16; ++g) b[g] = static_cast<uint8_t>(l.sc[g] | l.mn[g] << 4);
      for (int h = 0; h < 2; ++h) {
        for (int k = 0; k < 4; ++k) {
          for (int j = 0; j < 32; ++j)
            b[16 + 32 * h + j] =
                static_cast<uint8_t>(b[16 + 32 * h + j] | c[128 * h + 32 * k + j] << (2 * k));
        }
      }
      put_half(b.data() + 80, l.d);
      put_half(b.data() + 82, l.dmin);
      break;
    default:
      ADD_FAILURE() << "no encoder for " << dtype_name(t);
  }
  return b;
}

// Value i of the block as the layout defines it.
float expected(DType t, const Logical& l, int i) {
  const int c = l.code[static_cast<size_t>(i)];
  const auto f = [](int v) { return static_cast<float>(v); };
  switch (t) {
    case DType::Q4_1:
    case DType::Q5_1:
      return l.d * f(c) + l.dmin;
    case DType::Q5_0:
      return l.d * f(c - 16);
    case DType::IQ4_NL:
      return l.d * f(kIq4nlValues[c]);
    case DType::IQ4_XS:
      return l.d * f(l.sc[i / 32] - 32) * f(kIq4nlValues[c]);
    case DType::Q4_K:
    case DType::Q5_K:
      return l.d * f(l.sc[i / 32]) * f(c) - l.dmin * f(l.mn[i / 32]);
    case DType::Q6_K:
      return l.d * f(l.sc[i / 16]) * f(c - 32);
    case DType::Q3_K:
      return l.d * f(l.sc[i / 16] - 32) * f(c - 4);
    case DType::Q2_K:
      return l.d * f(l.sc[i / 16]) * f(c) - l.dmin * f(l.mn[i / 16]);
    default:
      return NAN;
  }
}

// Random logical content within each field's range.
Logical random_logical(DType t, std::mt19937& rng) {
  const auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  Logical l;
  const int n = block_elems(t);
  int code_max = 15, sc_n = 0, sc_lo = 0, sc_hi = 0, mn_n = 0, mn_hi = 0;
  switch (t) {
    case DType::Q5_0:
    case DType::Q5_1:
    case DType::Q5_K:
      code_max = 31;
      break;
    case DType::Q6_K:
      code_max = 63;
      break;
    case DType::Q3_K:
      code_max = 7;
      break;
    case DType::Q2_K:
      code_max = 3;
      break;
    default:
      break;
  }
  switch (t) {
    case DType::IQ4_XS:
      sc_n = 8, sc_hi = 63;
      break;
    case DType::Q4_K:
    case DType::Q5_K:
      sc_n = 8, sc_hi = 63, mn_n = 8, mn_hi = 63;
      break;
    case DType::Q6_K:
      sc_n = 16, sc_lo = -128, sc_hi = 127;
      break;
    case DType::Q3_K:
      sc_n = 16, sc_hi = 63;
      break;
    case DType::Q2_K:
      sc_n = 16, sc_hi = 15, mn_n = 16, mn_hi = 15;
      break;
    default:
      break;
  }
  for (int i = 0; i < n; ++i) l.code.push_back(pick(0, code_max));
  for (int i = 0; i < sc_n; ++i) l.sc.push_back(pick(sc_lo, sc_hi));
  for (int i = 0; i < mn_n; ++i) l.mn.push_back(pick(0, mn_hi));
  // f16-exact super-scales of either sign for d (dmin too where the type has one).
  l.d = as_half(static_cast<float>(pick(-64, 64)) / 1024.0f);
  l.dmin = as_half(static_cast<float>(pick(-64, 64)) / 2048.0f);
  if (l.d == 0.0f) l.d = 0.0625f;
  // The extremes of each range in the first block values.
  l.code[0] = 0;
  l.code[1] = code_max;
  return l;
}

constexpr DType kTypes[] = {DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::IQ4_NL, DType::Q2_K,
                            DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K,   DType::IQ4_XS};

// A matrix of `rows` rows, `per_row` hand-made blocks each; `want` gets its values.
struct HandMatrix {
  std::vector<uint8_t> bytes;
  std::vector<float> want;
  kernels::Matrix m;
};
HandMatrix hand_matrix(DType t, int rows, int per_row, uint32_t seed) {
  std::mt19937 rng(seed);
  HandMatrix h;
  const int n = block_elems(t);
  for (int r = 0; r < rows; ++r) {
    for (int b = 0; b < per_row; ++b) {
      const Logical l = random_logical(t, rng);
      const std::vector<uint8_t> bytes = encode(t, l);
      h.bytes.insert(h.bytes.end(), bytes.begin(), bytes.end());
      for (int i = 0; i < n; ++i) h.want.push_back(expected(t, l, i));
    }
  }
  h.m = {t, h.bytes.data(), rows, n * per_row};
  return h;
}

TEST(KQuants, BlockSizesAreGgmls) {
  // (values, bytes) per block, as ggml's type traits state them.
  const std::pair<DType, std::pair<int, size_t>> sizes[] = {
      {DType::Q4_1, {32, 20}},    {DType::Q5_0, {32, 22}},   {DType::Q5_1, {32, 24}},
      {DType::IQ4_NL, {32, 18}},  {DType::Q2_K, {256, 84}},  {DType::Q3_K, {256, 110}},
      {DType::Q4_K, {256, 144}},  {DType::Q5_K, {256, 176}}, {DType::Q6_K, {256, 210}},
      {DType::IQ4_XS, {256, 136}}};
  for (const auto& [t, s] : sizes) {
    EXPECT_EQ(block_elems(t), s.first) << dtype_name(t);
    EXPECT_EQ(block_bytes(t), s.second) << dtype_name(t);
    EXPECT_EQ(row_bytes(t, 2 * s.first), 2 * s.second) << dtype_name(t);
    EXPECT_TRUE(is_kquant_type(t));
  }
  EXPECT_FALSE(is_kquant_type(DType::Q8_0));
  EXPECT_FALSE(is_kquant_type(DType::F16));
}

// The plain twin dequantises hand-made blocks to the values the layout defines.
TEST(KQuants, HandMadeBlocksDequantiseToTheLayoutsValues) {
  for (DType t : kTypes) {
    const HandMatrix h = hand_matrix(t, 3, 2, 11);
    std::vector<float> row(static_cast<size_t>(h.m.cols));
    for (int r = 0; r < h.m.rows; ++r) {
      kernels::ref::dequantize_row(h.m, r, row.data());
      for (int i = 0; i < h.m.cols; ++i) {
        ASSERT_FLOAT_EQ(row[static_cast<size_t>(i)],
                        h.want[static_cast<size_t>(r) * h.m.cols + static_cast<size_t>(i)])
            << dtype_name(t) << " row " << r << " value " << i;
      }
    }
  }
}

// Every path's decode kernel gives each hand-made value back for a one-hot activation (the
// activation quantises to 127 · (1/127), so each product is the weight within a few ulps).
TEST(KQuants, EveryPathsDecodeKernelReadsHandMadeBlocks) {
  for (const kernels::KernelPath* p : kernels::available_paths()) {
    const kernels::Compute cx(1, p->name);
    for (DType t : kTypes) {
      const HandMatrix h = hand_matrix(t, 19, 2, 23);
      std::vector<float> x(static_cast<size_t>(h.m.cols), 0.0f), y(static_cast<size_t>(h.m.rows));
      for (int i = 0; i < h.m.cols; ++i) {
        x[static_cast<size_t>(i)] = 1.0f;
        kernels::matmul(cx, x.data(), 1, h.m, nullptr, y.data());
        x[static_cast<size_t>(i)] = 0.0f;
        for (int r = 0; r < h.m.rows; ++r) {
          const float* wr = h.want.data() + static_cast<size_t>(r) * h.m.cols;
          float big = 0;
          for (int k = 0; k < h.m.cols; ++k) big = std::max(big, std::fabs(wr[k]));
          const float want = wr[i];
          ASSERT_NEAR(y[static_cast<size_t>(r)], want, 1e-6f + 2e-6f * big)
              << p->name << " " << dtype_name(t) << " row " << r << " value " << i;
        }
      }
    }
  }
}

// Every SIMD path brings its own decode kernel: none runs the generic path's plain twin in its
// place (the filled entry a path gets when its table leaves one out).
TEST(KQuants, EverySimdPathHasItsOwnDecodeKernel) {
  for (const kernels::KernelPath* p : kernels::available_paths()) {
    if (p == &kernels::generic_path()) continue;
    EXPECT_NE(p->gemv_kquant, kernels::generic_path().gemv_kquant) << p->name;
  }
}

// And its own integer prefill: no SIMD path widens K-quant rows to float for several activation
// rows any more (x86: the int8 panels; ARM: kquant_gemm_neon.h).
TEST(KQuants, EverySimdPathHasIntegerPrefill) {
  for (const kernels::KernelPath* p : kernels::available_paths()) {
    if (p == &kernels::generic_path()) continue;
    EXPECT_NE(p->gemm_kquant, nullptr) << p->name;
  }
}

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& f : v) f = d(rng);
  return v;
}

// Decode (w·a8 integer sums) follows the twin ref::matmul within float summation order, and
// prefill (rows widened to float) follows the float product of the dequantised rows.
TEST(KQuants, FastProductsFollowTheirTwins) {
  for (const kernels::KernelPath* p : kernels::available_paths()) {
    for (int threads : {1, 3}) {
      const kernels::Compute cx(threads, p->name);
      for (DType t : kTypes) {
        const int per_row = block_elems(t) == 32 ? 24 : 3;
        const HandMatrix h = hand_matrix(t, 37, per_row, 5);
        const int rows = h.m.rows, cols = h.m.cols;
        const std::vector<float> x = random_floats(static_cast<size_t>(cols) * 3, 9);
        const std::vector<float> bias = random_floats(static_cast<size_t>(rows), 10);
        std::vector<float> got(static_cast<size_t>(rows) * 3), want(got.size());
        // Decode.
        kernels::matmul(cx, x.data(), 1, h.m, bias.data(), got.data());
        kernels::ref::matmul(x.data(), 1, h.m, bias.data(), want.data());
        double scale = 0;
        for (int r = 0; r < rows; ++r) scale = std::max(scale, std::fabs(double(want[r])));
        for (int r = 0; r < rows; ++r) {
          ASSERT_NEAR(got[static_cast<size_t>(r)], want[static_cast<size_t>(r)], 1e-5 * scale)
              << p->name << " " << dtype_name(t) << " decode row " << r;
        }
        // Prefill: where the path has int8 panels for it, the twin's w·a8 sums for every row;
        // else float sums of the dequantised rows (the values of the test above).
        kernels::matmul(cx, x.data(), 3, h.m, bias.data(), got.data());
        if (p->gemm_kquant) {
          std::vector<float> want3(got.size());
          kernels::ref::matmul(x.data(), 3, h.m, bias.data(), want3.data());
          for (size_t i = 0; i < got.size(); ++i) {
            double row_scale = 0;
            const size_t r0 = i / static_cast<size_t>(rows) * static_cast<size_t>(rows);
            for (int r = 0; r < rows; ++r)
              row_scale =
                  std::max(row_scale, std::fabs(double(want3[r0 + static_cast<size_t>(r)])));
            ASSERT_NEAR(got[i], want3[i], 1e-5 * row_scale)
                << p->name << " " << dtype_name(t) << " int8 prefill value " << i;
          }
        }
        for (int n = 0; n < 3 && !p->gemm_kquant; ++n) {
          for (int r = 0; r < rows; ++r) {
            double acc = bias[static_cast<size_t>(r)], l1 = std::fabs(acc);
            for (int i = 0; i < cols; ++i) {
              const double term = double(x[static_cast<size_t>(n) * cols + i]) *
                                  h.want[static_cast<size_t>(r) * cols + static_cast<size_t>(i)];
              acc += term;
              l1 += std::fabs(term);
            }
            // Float sums in another order: a few ulps of the summed magnitudes.
            ASSERT_NEAR(got[static_cast<size_t>(n) * rows + r], acc, 1e-6 * l1 + 1e-6)
                << p->name << " " << dtype_name(t) << " prefill row " << n << "," << r;
          }
        }
        // The decode's activation rounding (int8 per 32) keeps it near the float product.
        for (int r = 0; r < rows; ++r) {
          double acc = bias[static_cast<size_t>(r)];
          for (int i = 0; i < cols; ++i)
            acc += double(x[static_cast<size_t>(i)]) * h.want[static_cast<size_t>(r) * cols + i];
          EXPECT_NEAR(want[static_cast<size_t>(r)], acc, 0.02 * scale + 1e-3)
              << dtype_name(t) << " row " << r;
        }
      }
    }
  }
}

// The int8 prefill panels (paths with gemm_kquant) over activation row counts that fill the
// micro-tile (4 rows) whole, ragged and not at all, weight rows that end inside a panel, K over
// several slices, with and without bias: the twin's w·a8 sums within float summation order.
TEST(KQuants, PrefillPanelsFollowTheTwin) {
  int paths = 0;
  for (const kernels::KernelPath* p : kernels::available_paths()) {
    if (!p->gemm_kquant) continue;
    ++paths;
    for (int threads : {1, 3}) {
      const kernels::Compute cx(threads, p->name);
      for (DType t : kTypes) {
        const int per_row = block_elems(t) == 32 ? 40 : 5;  // 1280 values: 5 slices of 8 blocks
        const HandMatrix h = hand_matrix(t, 53, per_row, 21);
        const int rows = h.m.rows, cols = h.m.cols;
        for (int n : {2, 5, 9, 17}) {
          const std::vector<float> x = random_floats(static_cast<size_t>(cols) * n, 22 + n);
          const std::vector<float> bias = random_floats(static_cast<size_t>(rows), 23);
          for (const float* b : {static_cast<const float*>(nullptr), bias.data()}) {
            std::vector<float> got(static_cast<size_t>(rows) * n), want(got.size());
            kernels::matmul(cx, x.data(), n, h.m, b, got.data());
            kernels::ref::matmul(x.data(), n, h.m, b, want.data());
            for (int r = 0; r < n; ++r) {
              const float* wr = want.data() + static_cast<size_t>(r) * rows;
              double scale = 0;
              for (int o = 0; o < rows; ++o) scale = std::max(scale, std::fabs(double(wr[o])));
              for (int o = 0; o < rows; ++o) {
                ASSERT_NEAR(got[static_cast<size_t>(r) * rows + o], wr[o], 1e-5 * scale)
                    << p->name << " " << dtype_name(t) << " n=" << n << " row " << r << " col " << o
                    << (b ? " bias" : "");
              }
            }
          }
        }
      }
    }
  }
  if (paths == 0) GTEST_SKIP() << "no kernel path here has int8 K-quant prefill panels";
}

// The twin's dot products of W's rows with one activation row quantised by path p.
struct QuantisedRow {
  std::vector<kernels::ActBlockQ8> blocks;
  std::vector<float> d;
  std::vector<int8_t> q;
};
QuantisedRow quantise_row(const kernels::KernelPath& p, const std::vector<float>& x) {
  QuantisedRow out;
  const int cols = static_cast<int>(x.size());
  out.blocks.resize(static_cast<size_t>(cols / kQ8BlockSize));
  p.quantize_row_q8(x.data(), cols, out.blocks.data());
  for (const kernels::ActBlockQ8& b : out.blocks) {
    out.d.push_back(b.d);
    out.q.insert(out.q.end(), b.q, b.q + kQ8BlockSize);
  }
  return out;
}

// Each path's decode kernel, called directly on row ranges that are not whole multiples of the
// row tiles its kernels take (odd starts, odd ends, one row, none), writes exactly those rows,
// each the twin's dot product (+ bias).
TEST(KQuants, DecodeKernelsTakeAnyRowRange) {
  constexpr int kRows = 11;
  constexpr float kUntouched = 12345.0f;
  const std::pair<int, int> ranges[] = {{0, kRows}, {1, 10}, {3, 4}, {2, 7}, {5, 5}, {0, 3}};
  for (const kernels::KernelPath* p : kernels::available_paths()) {
    for (DType t : kTypes) {
      const int per_row = block_elems(t) == 32 ? 16 : 2;
      const HandMatrix h = hand_matrix(t, kRows, per_row, 31);
      const QuantisedRow x = quantise_row(*p, random_floats(static_cast<size_t>(h.m.cols), 12));
      const std::vector<float> bias = random_floats(kRows, 13);
      std::vector<float> want(kRows);
      float scale = 0;
      for (int r = 0; r < kRows; ++r) {
        want[static_cast<size_t>(r)] = kernels::ref::kquant_row_dot(h.m, r, x.d.data(), x.q.data());
        scale = std::max(scale, std::fabs(want[static_cast<size_t>(r)]));
      }
      for (const auto& [ob, oe] : ranges) {
        for (const bool with_bias : {true, false}) {
          std::vector<float> y(kRows, kUntouched);
          kernels::Scratch scratch;
          p->gemv_kquant(x.blocks.data(), h.m, ob, oe, with_bias ? bias.data() : nullptr, y.data(),
                         scratch);
          for (int r = 0; r < kRows; ++r) {
            const auto i = static_cast<size_t>(r);
            if (r < ob || r >= oe) {
              EXPECT_EQ(y[i], kUntouched) << p->name << " " << dtype_name(t) << " row " << r;
              continue;
            }
            const float b = with_bias ? bias[i] : 0.0f;
            EXPECT_NEAR(y[i], want[i] + b, 1e-5f * scale + 1e-6f)
                << p->name << " " << dtype_name(t) << " rows [" << ob << ", " << oe << ") row "
                << r;
          }
        }
      }
    }
  }
}

// The largest codes, scales and mins each type holds, against activations that all quantise
// to ±127: the integer sums at their widest (no overflow, no saturation in any path).
// `rows` rows of the widest blocks of t: every code its largest (odd rows) or its least (even
// rows; Q6_K's least is −32), every scale and min its largest (Q6_K's scales −128 in the first
// half of the rows).
HandMatrix widest_matrix(DType t, int rows, uint32_t seed) {
  std::mt19937 rng(seed);
  HandMatrix h;
  const int n = block_elems(t), per_row = n == 32 ? 8 : 2;
  for (int r = 0; r < rows; ++r) {
    for (int b = 0; b < per_row; ++b) {
      Logical l = random_logical(t, rng);
      const int code_max = l.code[1];
      for (auto& c : l.code) c = r % 2 ? code_max : 0;
      for (auto& s : l.sc)
        s = t == DType::Q6_K ? (r < rows / 2 ? -128 : 127) : (t == DType::Q2_K ? 15 : 63);
      for (auto& m : l.mn) m = t == DType::Q2_K ? 15 : 63;
      const std::vector<uint8_t> bytes = encode(t, l);
      h.bytes.insert(h.bytes.end(), bytes.begin(), bytes.end());
    }
  }
  h.m = {t, h.bytes.data(), rows, n * per_row};
  return h;
}

TEST(KQuants, DecodeKernelsHoldTheWidestSums) {
  for (const kernels::KernelPath* p : kernels::available_paths()) {
    for (DType t : kTypes) {
      constexpr int rows = 5;
      const HandMatrix h = widest_matrix(t, rows, 3);
      for (const float sign : {1.0f, -1.0f}) {
        std::vector<float> xf(static_cast<size_t>(h.m.cols), sign);
        const QuantisedRow x = quantise_row(*p, xf);
        std::vector<float> y(rows);
        kernels::Scratch scratch;
        p->gemv_kquant(x.blocks.data(), h.m, 0, rows, nullptr, y.data(), scratch);
        for (int r = 0; r < rows; ++r) {
          const float want = kernels::ref::kquant_row_dot(h.m, r, x.d.data(), x.q.data());
          EXPECT_NEAR(y[static_cast<size_t>(r)], want, 1e-5f * std::fabs(want) + 1e-6f)
              << p->name << " " << dtype_name(t) << " row " << r << " sign " << sign;
        }
      }
    }
  }
}

// The same widest blocks through the int8 prefill panels (paths with gemm_kquant), 5 activation
// rows at ±127: the panels add a whole span's vpmaddubsw pairs in int16 where the type's codes
// allow it (kq_panel8_form), and one wrong bound would wrap here.
TEST(KQuants, PrefillPanelsHoldTheWidestSums) {
  int paths = 0;
  for (const kernels::KernelPath* p : kernels::available_paths()) {
    if (!p->gemm_kquant) continue;
    ++paths;
    const kernels::Compute cx(1, p->name);
    for (DType t : kTypes) {
      constexpr int rows = 9;
      const HandMatrix h = widest_matrix(t, rows, 4);
      constexpr int kActRows = 5;
      for (const float sign : {1.0f, -1.0f}) {
        std::vector<float> x(static_cast<size_t>(h.m.cols) * kActRows, sign);
        std::vector<float> got(static_cast<size_t>(rows) * kActRows), want(got.size());
        kernels::matmul(cx, x.data(), kActRows, h.m, nullptr, got.data());
        kernels::ref::matmul(x.data(), kActRows, h.m, nullptr, want.data());
        for (size_t i = 0; i < got.size(); ++i) {
          EXPECT_NEAR(got[i], want[i], 1e-5f * std::fabs(want[i]) + 1e-6f)
              << p->name << " " << dtype_name(t) << " value " << i << " sign " << sign;
        }
      }
    }
  }
  if (paths == 0) GTEST_SKIP() << "no kernel path here has int8 K-quant prefill panels";
}

// What formats/kquants.h says of each type, which the prefill panels rely on, holds for every
// block: scales per 32 where it says so, no mins where it says none, codes within the least code
// and the unsigned bound. And the per-16 types do change scale within 32 values.
TEST(KQuants, TypeTraitsHoldForEveryBlock) {
  for (DType t : kTypes) {
    const HandMatrix h = hand_matrix(t, 16, block_elems(t) == 32 ? 16 : 2, 41);
    const size_t blocks = h.bytes.size() / block_bytes(t);
    const int n = block_elems(t), least = kquant_codes(t).least,
              bound = kquant_codes(t).unsigned_bound;
    bool halves_differ = false;
    for (size_t i = 0; i < blocks; ++i) {
      UnpackedBlock u;
      unpack_block(t, h.bytes.data() + i * block_bytes(t), u);
      for (int j = 0; j < n / 16; j += 2) {
        if (kquant_scales_per_32(t)) {
          ASSERT_EQ(u.scale[j], u.scale[j + 1]) << dtype_name(t) << " block " << i;
          ASSERT_EQ(u.min[j], u.min[j + 1]) << dtype_name(t) << " block " << i;
        }
        halves_differ = halves_differ || u.scale[j] != u.scale[j + 1];
      }
      for (int j = 0; j < n / 16 && !kquant_has_min(t); ++j)
        ASSERT_EQ(u.min[j], 0.0f) << dtype_name(t) << " block " << i;
      for (int j = 0; j < n; ++j) {
        ASSERT_GE(u.q[j], least) << dtype_name(t);
        if (bound > 0) {
          ASSERT_LT(u.q[j] - least, bound) << dtype_name(t);
        }
      }
    }
    EXPECT_EQ(halves_differ, !kquant_scales_per_32(t)) << dtype_name(t);
  }
}

// Q4_K decode panels (kernels/q4k_panels.h): 16 rows side by side, the 6-bit scales a byte each.
// Every block reads back from them as the file's 144 bytes, exactly; rows past the matrix are
// zero (d = dmin = 0, so they add nothing).
TEST(Q4kPanels, EveryBlockReadsBackAsTheFileHasIt) {
  const HandMatrix h = hand_matrix(DType::Q4_K, 37, 3, 41);
  kernels::Matrix w = h.m;
  std::vector<uint8_t> panels(kernels::decode_panel_bytes(w));
  ASSERT_EQ(panels.size(), 3u * 3u * kernels::kQ4kPanelBlockBytes);  // 3 panels of 16 rows
  kernels::pack_decode_panels(w, panels.data());
  w.panels = panels.data();
  for (int r = 0; r < w.rows; ++r) {
    for (int b = 0; b < 3; ++b) {
      uint8_t block[144];
      const uint8_t* got = kernels::stored_block(w, r, b, block);
      ASSERT_EQ(got, block);
      ASSERT_EQ(std::memcmp(got, h.m.row(r) + 144 * b, 144), 0) << "row " << r << " block " << b;
      // The common form straight from the panels, as the reference decoder gives it.
      UnpackedBlock want, direct;
      unpack_block(DType::Q4_K, h.m.row(r) + 144 * b, want);
      kernels::unpack_stored_block(w, r, b, direct);
      ASSERT_EQ(std::memcmp(&want, &direct, sizeof(want)), 0) << "row " << r << " block " << b;
    }
  }
  // Rows 37–47 of the last panel: zero codes, scales and f16 scales.
  const uint8_t* last = panels.data() + 2 * kernels::q4k_panel_stride(w.cols);
  for (int lane = 37 % 16; lane < 16; ++lane) {
    for (size_t at : {kernels::kQ4kPanelD + 2 * lane, kernels::kQ4kPanelDmin + 2 * lane})
      EXPECT_EQ(last[at] | last[at + 1], 0) << "lane " << lane;
  }
  // Types without decode panels have none.
  for (DType t : kTypes) {
    if (t == DType::Q4_K) continue;
    EXPECT_EQ(kernels::decode_panel_bytes(hand_matrix(t, 2, 1, 1).m), 0u) << dtype_name(t);
  }
}

// Each path's Q4_K panel kernel (the generic path's plain twin of the layout among them), on
// panel-aligned row ranges that end inside a panel, with and without bias, on random blocks and
// on the widest sums (largest codes, scales and mins against activations all ±127): the file
// layout twin's dot products (ref::kquant_row_dot), rows outside the range untouched.
TEST(Q4kPanels, EveryPathsPanelKernelFollowsTheTwin) {
  constexpr float kUntouched = 12345.0f;
  const std::pair<int, int> ranges[] = {{0, 37}, {16, 37}, {0, 16}, {32, 33}, {16, 16}};
  std::mt19937 rng(7);
  HandMatrix widest;
  for (int r = 0; r < 37; ++r) {
    for (int b = 0; b < 2; ++b) {
      Logical l = random_logical(DType::Q4_K, rng);
      for (auto& c : l.code) c = r % 3 ? 15 : 0;
      for (auto& s : l.sc) s = 63;
      for (auto& m : l.mn) m = 63;
      const std::vector<uint8_t> bytes = encode(DType::Q4_K, l);
      widest.bytes.insert(widest.bytes.end(), bytes.begin(), bytes.end());
    }
  }
  widest.m = {DType::Q4_K, widest.bytes.data(), 37, 512};
  const HandMatrix random = hand_matrix(DType::Q4_K, 37, 4, 43);
  int kernels_seen = 0;
  for (const kernels::KernelPath* p : kernels::available_paths()) {
    if (!p->gemv_q4k_panels) continue;
    ++kernels_seen;
    for (const HandMatrix* h : {&random, static_cast<const HandMatrix*>(&widest)}) {
      kernels::Matrix w = h->m;
      std::vector<uint8_t> panels(kernels::decode_panel_bytes(w));
      kernels::pack_decode_panels(w, panels.data());
      w.panels = panels.data();
      std::vector<std::vector<float>> inputs = {random_floats(static_cast<size_t>(w.cols), 44)};
      if (h == &widest) {
        inputs = {std::vector<float>(static_cast<size_t>(w.cols), 1.0f),
                  std::vector<float>(static_cast<size_t>(w.cols), -1.0f)};
      }
      for (const std::vector<float>& xf : inputs) {
        const QuantisedRow x = quantise_row(*p, xf);
        const std::vector<float> bias = random_floats(static_cast<size_t>(w.rows), 45);
        std::vector<float> want(static_cast<size_t>(w.rows));
        float scale = 0;
        for (int r = 0; r < w.rows; ++r) {
          want[static_cast<size_t>(r)] =
              kernels::ref::kquant_row_dot(h->m, r, x.d.data(), x.q.data());
          scale = std::max(scale, std::fabs(want[static_cast<size_t>(r)]));
        }
        for (const auto& [ob, oe] : ranges) {
          for (const bool with_bias : {true, false}) {
            std::vector<float> y(static_cast<size_t>(w.rows), kUntouched);
            kernels::Scratch scratch;
            p->gemv_q4k_panels(x.blocks.data(), w, ob, oe, with_bias ? bias.data() : nullptr,
                               y.data(), scratch);
            for (int r = 0; r < w.rows; ++r) {
              const auto i = static_cast<size_t>(r);
              if (r < ob || r >= oe) {
                ASSERT_EQ(y[i], kUntouched) << p->name << " row " << r;
                continue;
              }
              const float b = with_bias ? bias[i] : 0.0f;
              ASSERT_NEAR(y[i], want[i] + b, 1e-5f * scale + 1e-6f)
                  << p->name << (h == &widest ? " widest" : " random") << " rows [" << ob << ", "
                  << oe << ") row " << r;
            }
          }
        }
      }
    }
  }
  EXPECT_GE(kernels_seen, 1);  // the generic path's twin at least
}

// A Q4_K matrix with panels is read from them alone: with the file's bytes overwritten, decode
// (each path's panel kernel) and prefill (int8 panels or rows widened to float) still give what
// the intact matrix gives.
TEST(Q4kPanels, ProductsReadOnlyThePanels) {
  const HandMatrix h = hand_matrix(DType::Q4_K, 45, 3, 47);
  std::vector<uint8_t> panels(kernels::decode_panel_bytes(h.m));
  kernels::pack_decode_panels(h.m, panels.data());
  std::vector<uint8_t> garbage(h.bytes.size());
  std::mt19937 rng(48);
  for (auto& b : garbage) b = static_cast<uint8_t>(rng());
  kernels::Matrix w = h.m;
  w.data = garbage.data();
  w.panels = panels.data();
  const int n = 5;
  const std::vector<float> x = random_floats(static_cast<size_t>(w.cols) * n, 49);
  for (const kernels::KernelPath* p : kernels::available_paths()) {
    if (!p->gemv_q4k_panels) continue;
    const kernels::Compute cx(2, p->name);
    for (int rows : {1, n}) {
      std::vector<float> got(static_cast<size_t>(w.rows) * rows), want(got.size());
      kernels::matmul(cx, x.data(), rows, h.m, nullptr, want.data());
      kernels::matmul(cx, x.data(), rows, w, nullptr, got.data());
      double scale = 0;
      for (float v : want) scale = std::max(scale, std::fabs(double(v)));
      for (size_t i = 0; i < got.size(); ++i)
        ASSERT_NEAR(got[i], want[i], 1e-5 * scale) << p->name << " rows " << rows << " value " << i;
    }
    std::vector<float> row(static_cast<size_t>(w.cols)), intact(row.size());
    kernels::dequantize_row(w, 44, row.data());
    kernels::dequantize_row(h.m, 44, intact.data());
    EXPECT_EQ(row, intact);
  }
}

// Our K-quant writers (convert --type q4_k_m, q5_k_m, q6_k, q3_k_m, q2_k, ...): the values come
// back within the rounding the layouts allow (root-mean-square error against the spread of the
// values: about a step over sqrt(12) of each sub-block's range, so each bit fewer doubles it).
TEST(KQuants, WritersRoundTrip) {
  const int cols = 512, rows = 4;
  std::vector<float> x = random_floats(static_cast<size_t>(rows) * cols, 77);
  x[3] = 9.0f;  // an outlier
  for (const auto& [t, max_rel] :
       {std::pair{DType::Q2_K, 0.45}, std::pair{DType::Q3_K, 0.25}, std::pair{DType::Q4_K, 0.12},
        std::pair{DType::Q5_K, 0.06}, std::pair{DType::Q6_K, 0.03}}) {
    const std::vector<uint8_t> bytes = quantize_rows(t, x, rows, cols);
    ASSERT_EQ(bytes.size(), rows * row_bytes(t, cols));
    const kernels::Matrix m{t, bytes.data(), rows, cols};
    std::vector<float> back(static_cast<size_t>(cols));
    for (int r = 0; r < rows; ++r) {
      kernels::ref::dequantize_row(m, r, back.data());
      double err = 0, ss = 0;
      for (int i = 0; i < cols; ++i) {
        const double v = x[static_cast<size_t>(r) * cols + i];
        err += (back[static_cast<size_t>(i)] - v) * (back[static_cast<size_t>(i)] - v);
        ss += v * v;
      }
      EXPECT_LT(std::sqrt(err / ss), max_rel) << dtype_name(t) << " row " << r;
      EXPECT_GT(std::sqrt(err / ss), 0.0) << dtype_name(t);  // lossy: not a copy
    }
    // The largest value comes back to within a step.
    kernels::ref::dequantize_row(m, 0, back.data());
    EXPECT_NEAR(back[3], 9.0f, t == DType::Q6_K ? 0.2f : 0.7f) << dtype_name(t);
  }
}

TEST(KQuants, DequantizeRowServesEmbeddings) {
  // kernels::dequantize_row (embedding lookups) is the twin's.
  const HandMatrix h = hand_matrix(DType::Q6_K, 2, 1, 3);
  std::vector<float> row(256);
  kernels::dequantize_row(h.m, 1, row.data());
  for (int i = 0; i < 256; ++i) EXPECT_FLOAT_EQ(row[static_cast<size_t>(i)], h.want[256 + i]);
}

}  // namespace
}  // namespace smolvlm

namespace smolvlm {
namespace {

// Files from llama.cpp's own tools, where $SMOLVLM_KQUANT_DIR names a folder of pairs
// NAME.gguf (llama-quantize's output) and deq-NAME.gguf (the same file requantised to F32 by
// `llama-quantize --allow-requantize NAME.gguf deq-NAME.gguf F32`, i.e. ggml's dequantisation):
// every block tensor of each file dequantises to ggml's values bit for bit.
TEST(KQuants, LlamaQuantizeFilesDequantiseAsGgmlDoes) {
  const char* dir = std::getenv("SMOLVLM_KQUANT_DIR");
  if (!dir || !*dir) GTEST_SKIP() << "set SMOLVLM_KQUANT_DIR to a folder of llama-quantize files";
  namespace fs = std::filesystem;
  int files = 0, tensors = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("deq-", 0) != 0 || e.path().extension() != ".gguf") continue;
    const fs::path quant = e.path().parent_path() / name.substr(4);
    if (!fs::exists(quant)) continue;
    const GgufFile q(quant.string()), f(e.path().string());
    ++files;
    for (const TensorView& t : q.tensors()) {
      if (!is_kquant_type(t.dtype)) continue;
      const TensorView* ref = f.find_tensor(t.name);
      ASSERT_TRUE(ref && ref->dtype == DType::F32) << t.name;
      const int cols = static_cast<int>(t.shape.back());
      const int rows = static_cast<int>(t.numel() / cols);
      const kernels::Matrix m{t.dtype, t.data, rows, cols};
      std::vector<float> row(static_cast<size_t>(cols));
      for (int r = 0; r < rows; ++r) {
        kernels::ref::dequantize_row(m, r, row.data());
        // Equal as numbers (ggml's d·sc·0 may be −0 where ours adds a zero min: +0).
        const auto* want = reinterpret_cast<const float*>(ref->data) + size_t(cols) * r;
        int i = 0;
        while (i < cols && row[static_cast<size_t>(i)] == want[i]) ++i;
        ASSERT_EQ(i, cols) << "value " << i << ": "
                           << row[static_cast<size_t>(std::min(i, cols - 1))] << " vs ggml's "
                           << want[std::min(i, cols - 1)] << ", " << quant << " " << t.name << " ("
                           << dtype_name(t.dtype) << ") row " << r;
      }
      ++tensors;
    }
  }
  std::printf("%d files, %d block tensors the same as ggml's\n", files, tensors);
  EXPECT_GT(files, 0);
}

}  // namespace
}  // namespace smolvlm
