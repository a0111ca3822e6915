// Each fast kernel against its plain reference twin, on random data of awkward sizes.
#include <gtest/gtest.h>
#include <smolvlm/error.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "formats/quantize.h"
#include "kernels/kernel_path.h"
#include "kernels/kernels.h"
#include "kernels/q4_panels.h"
#include "test_support.h"

namespace smolvlm {
namespace {

std::vector<float> random_vec(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// Relative to the size of the values: float sums in another order differ by a few ulps.
void expect_close(const std::vector<float>& got, const std::vector<float>& want, double tol) {
  ASSERT_EQ(got.size(), want.size());
  EXPECT_LE(test::max_abs_diff(got, want), tol);
}

// Every kernel path this CPU supports × thread counts.
class KernelThreads : public ::testing::TestWithParam<std::tuple<std::string, int>> {
 protected:
  void SetUp() override {
    const std::string& path = std::get<0>(GetParam());
    bool have = false;
    for (const auto* p : kernels::available_paths()) have |= path == p->name;
    if (!have) GTEST_SKIP() << "kernel path " << path << " not supported by this CPU";
    cx_ = std::make_unique<kernels::Compute>(std::get<1>(GetParam()), path);
  }
  // The context of this case: its path, its threads.
  const kernels::Compute& cx() const { return *cx_; }
  std::unique_ptr<kernels::Compute> cx_;
};

// Weights stored in `type` (from float32 values); returns the bytes.
std::vector<uint8_t> store_as(const std::vector<float>& w, DType type) {
  if (type == DType::Q8_0) return quantize_q8_0(w, 1, static_cast<int>(w.size()));
  if (type == DType::Q4_0) return quantize_q4_0(w, 1, static_cast<int>(w.size()));
  std::vector<uint8_t> out;
  for (float f : w) {
    if (type == DType::F32) {
      const auto* b = reinterpret_cast<const uint8_t*>(&f);
      out.insert(out.end(), b, b + 4);
    } else {
      const uint16_t h = type == DType::F16 ? f32_to_f16(f) : f32_to_bf16(f);
      out.push_back(static_cast<uint8_t>(h & 0xff));
      out.push_back(static_cast<uint8_t>(h >> 8));
    }
  }
  return out;
}

// Gives a Q4_0 matrix its 16-row panels (kernels/q4_panels.h) in the returned buffer, which
// must outlive the matrix's use. Started 16 bytes past the allocation's alignment, so that the
// kernels meet panels at no particular alignment (as every other panel of an odd block count).
std::vector<uint8_t> give_q4_panels(kernels::Matrix& w) {
  std::vector<uint8_t> buf(kernels::q4_panel_bytes(w.rows, w.cols) + 16);
  kernels::pack_q4_panels(w, buf.data() + 16);
  w.panels = buf.data() + 16;
  return buf;
}

TEST_P(KernelThreads, MatmulMatchesReference) {
  for (DType type : {DType::F32, DType::F16, DType::BF16}) {
    for (auto [n, in, out] : {std::tuple{1, 7, 5},
                              {3, 64, 33},
                              {5, 100, 129},
                              {17, 576, 64},
                              {1, 1536, 576},
                              {13, 301, 37}}) {
      const auto x = random_vec(static_cast<size_t>(n) * in, 1);
      const auto wf = random_vec(static_cast<size_t>(out) * in, 2, 0.05f);
      const auto bytes = store_as(wf, type);
      const kernels::Matrix w{type, bytes.data(), out, in};
      const auto b = random_vec(static_cast<size_t>(out), 3);
      for (const float* bias : {static_cast<const float*>(nullptr), b.data()}) {
        std::vector<float> got(static_cast<size_t>(n) * out), want(got.size());
        kernels::matmul(cx(), x.data(), n, w, bias, got.data());
        kernels::ref::matmul(x.data(), n, w, bias, want.data());
        expect_close(got, want, 1e-4);
      }
    }
  }
}

// Q8_0 and Q4_0 weights (w8a8, w4a8) through the path's quantiser and integer kernels: the
// integer block sums are exact, so only the float sums across blocks may differ from the
// reference. n = 1 takes the single-row (decode) kernels, odd block counts their half pair;
// n ≥ 8 the packed-panel GEMMs: on the AVX-512 VNNI paths 16-column panels in pairs, K in slices
// of 12 blocks; on the AVX2 and AVX-VNNI paths 8-column panels in pairs, K in slices of 24 blocks;
// tiles of 4 rows on both: partial panels, row tails and several K slices (49 blocks: a last slice
// of one) below.
TEST_P(KernelThreads, Q8MatmulMatchesReference) {
  for (DType type : {DType::Q8_0, DType::Q4_0}) {
    for (auto [n, in, out] : {std::tuple{1, 32, 1},
                              {1, 576, 37},
                              {1, 96, 19},
                              {1, 1536, 45},
                              {2, 64, 8},
                              {3, 96, 33},
                              {5, 160, 17},
                              {13, 576, 64},
                              {20, 1536, 23},
                              {8, 32, 16},
                              {9, 96, 47},
                              {11, 416, 33},
                              {34, 800, 100},
                              {64, 1536, 70},
                              {8, 64, 8},
                              {12, 1568, 25}}) {
      const auto x = random_vec(static_cast<size_t>(n) * in, 13);
      const auto wf = random_vec(static_cast<size_t>(out) * in, 14, 0.05f);
      std::vector<uint8_t> bytes;
      for (int o = 0; o < out; ++o) {  // row by row: store_as quantises one row
        const std::vector<float> row(wf.begin() + static_cast<std::ptrdiff_t>(o) * in,
                                     wf.begin() + static_cast<std::ptrdiff_t>(o + 1) * in);
        const auto r = store_as(row, type);
        bytes.insert(bytes.end(), r.begin(), r.end());
      }
      kernels::Matrix w{type, bytes.data(), out, in};
      const auto b = random_vec(static_cast<size_t>(out), 15);
      // Q4_0 also from its 16-row panels (decode on paths with a panel kernel, the generic
      // twin included; prefill widening from them on every path).
      std::vector<uint8_t> panels;
      for (const bool use_panels : {false, true}) {
        if (use_panels) {
          if (type != DType::Q4_0) continue;
          panels = give_q4_panels(w);
        }
        for (const float* bias : {static_cast<const float*>(nullptr), b.data()}) {
          std::vector<float> got(static_cast<size_t>(n) * out), want(got.size());
          kernels::matmul(cx(), x.data(), n, w, bias, got.data());
          kernels::ref::matmul(x.data(), n, w, bias, want.data());
          expect_close(got, want, 1e-4);
        }
      }
    }
  }
}

// The panel layout holds the file's bytes, reordered: every block comes back exactly, for a
// row count that leaves the last panel part empty.
TEST(Q4Panels, EveryBlockComesBackExactly) {
  const int rows = 37, cols = 96;
  const auto wf = random_vec(static_cast<size_t>(rows) * cols, 42, 0.05f);
  const std::vector<uint8_t> bytes = quantize_q4_0(wf, rows, cols);
  std::vector<uint8_t> panels(kernels::q4_panel_bytes(rows, cols));
  EXPECT_EQ(panels.size(), static_cast<size_t>(48) * (cols / 32) * kQ4BlockBytes);
  kernels::Matrix w{DType::Q4_0, bytes.data(), rows, cols};
  kernels::pack_q4_panels(w, panels.data());
  w.panels = panels.data();
  for (int r = 0; r < rows; ++r) {
    for (int blk = 0; blk < cols / 32; ++blk) {
      uint8_t got[kQ4BlockBytes];
      kernels::q4_panel_block(w, r, blk, got);
      EXPECT_EQ(0, std::memcmp(got, w.row(r) + blk * kQ4BlockBytes, kQ4BlockBytes))
          << r << "/" << blk;
    }
  }
}

// The path's panel kernel against the generic path's plain twin on the same quantised
// activations: integer block sums are exact, so only the float order of the sums may differ.
TEST_P(KernelThreads, Q4PanelGemvMatchesTheGenericTwin) {
  const kernels::KernelPath& path = cx().path();
  if (!path.gemv_q4_panels) GTEST_SKIP() << "no Q4_0 panel kernel on this path";
  for (auto [rows, cols] : {std::pair{16, 32}, {45, 576}, {64, 1536}, {19, 96}}) {
    const auto wf = random_vec(static_cast<size_t>(rows) * cols, 43, 0.05f);
    const std::vector<uint8_t> bytes = quantize_q4_0(wf, rows, cols);
    kernels::Matrix w{DType::Q4_0, bytes.data(), rows, cols};
    const std::vector<uint8_t> panels = give_q4_panels(w);
    const auto x = random_vec(static_cast<size_t>(cols), 44);
    std::vector<kernels::ActBlockQ8> xq(static_cast<size_t>(cols / 32));
    path.quantize_row_q8(x.data(), cols, xq.data());
    const auto b = random_vec(static_cast<size_t>(rows), 45);
    std::vector<float> got(static_cast<size_t>(rows), -7.0f), want(got);
    // Two calls, as two threads would split it (a multiple of 16 rows, then the rest).
    const int split = rows > 16 ? 16 : rows;
    kernels::Scratch scratch;
    path.gemv_q4_panels(xq.data(), w, 0, split, b.data(), got.data(), scratch);
    path.gemv_q4_panels(xq.data(), w, split, rows, b.data(), got.data(), scratch);
    kernels::generic_path().gemv_q4_panels(xq.data(), w, 0, rows, b.data(), want.data(), scratch);
    expect_close(got, want, 1e-4);
  }
}

// The decoder's fused calls against their plain twins: q/k/v of one input (rows of different
// counts, so that a worker's share spans two matrices) and gate/up with the silu. n = 1 with
// quantised weights takes the fused loops; n = 3 and float weights the plain calls.
TEST_P(KernelThreads, FusedProductsMatchReference) {
  for (DType type : {DType::Q8_0, DType::Q4_0, DType::F32}) {
    for (int variant = 0; variant < 4; ++variant) {
      const int n = variant % 2 ? 3 : 1;
      const bool use_panels = variant >= 2;  // Q4_0 from its panels
      if (use_panels && type != DType::Q4_0) continue;
      std::vector<std::vector<uint8_t>> panels;
      const int in = 192;
      const int rows[3] = {96, 37, 40};
      std::vector<std::vector<uint8_t>> bytes;
      std::vector<kernels::Matrix> ws;
      for (int i = 0; i < 3; ++i) {
        const auto wf = random_vec(static_cast<size_t>(rows[i]) * in, 30 + i, 0.05f);
        std::vector<uint8_t> b;
        for (int o = 0; o < rows[i]; ++o) {
          const std::vector<float> row(wf.begin() + static_cast<std::ptrdiff_t>(o) * in,
                                       wf.begin() + static_cast<std::ptrdiff_t>(o + 1) * in);
          const auto r = store_as(row, type);
          b.insert(b.end(), r.begin(), r.end());
        }
        bytes.push_back(std::move(b));
      }
      for (int i = 0; i < 3; ++i)
        ws.push_back({type, bytes[static_cast<size_t>(i)].data(), rows[i], in});
      if (use_panels)
        for (auto& w : ws) panels.push_back(give_q4_panels(w));
      const auto x = random_vec(static_cast<size_t>(n) * in, 33);
      std::vector<std::vector<float>> got(3), want(3);
      kernels::MatmulTarget targets[3];
      for (int i = 0; i < 3; ++i) {
        got[i].assign(static_cast<size_t>(n) * rows[i], -1.0f);
        want[i].resize(got[i].size());
        targets[i] = {&ws[static_cast<size_t>(i)], got[i].data()};
        kernels::ref::matmul(x.data(), n, ws[static_cast<size_t>(i)], nullptr, want[i].data());
      }
      kernels::matmul_same_input(cx(), x.data(), n, targets, 3);
      for (int i = 0; i < 3; ++i) expect_close(got[i], want[i], 1e-4);

      // gate = matrix 0, up = matrix 0's rows again from another seed: same shape.
      const auto upf = random_vec(static_cast<size_t>(rows[0]) * in, 34, 0.05f);
      std::vector<uint8_t> up_bytes;
      for (int o = 0; o < rows[0]; ++o) {
        const std::vector<float> row(upf.begin() + static_cast<std::ptrdiff_t>(o) * in,
                                     upf.begin() + static_cast<std::ptrdiff_t>(o + 1) * in);
        const auto r = store_as(row, type);
        up_bytes.insert(up_bytes.end(), r.begin(), r.end());
      }
      kernels::Matrix up{type, up_bytes.data(), rows[0], in};
      if (use_panels) panels.push_back(give_q4_panels(up));
      const size_t m = static_cast<size_t>(n) * rows[0];
      std::vector<float> out(m), scratch(m), ref_gate(m), ref_up(m), ref_out(m);
      kernels::matmul_gate_up_silu(cx(), x.data(), n, ws[0], up, out.data(), scratch.data());
      kernels::ref::matmul(x.data(), n, ws[0], nullptr, ref_gate.data());
      kernels::ref::matmul(x.data(), n, up, nullptr, ref_up.data());
      kernels::ref::silu_mul(ref_gate.data(), ref_up.data(), ref_out.data(), m);
      expect_close(out, ref_out, 1e-4);
    }
  }
}

// A file's Q8_0 quants may hold any int8, −128 included (our quantiser never writes it), and
// Q4_0 any nibble: the integer tricks (|w|, w ⊕ 0x80, nibble − 8) must stay exact over the
// whole range.
TEST_P(KernelThreads, Q8MatmulCoversFullInt8Range) {
  std::mt19937 rng(21);
  for (DType type : {DType::Q8_0, DType::Q4_0}) {
    const size_t block_bytes = type == DType::Q8_0 ? kQ8BlockBytes : kQ4BlockBytes;
    for (auto [n, in, out] : {std::tuple{1, 576, 41}, {1, 96, 9}, {4, 192, 24}, {10, 448, 40}}) {
      const size_t blocks = static_cast<size_t>(in) / kQ8BlockSize;
      std::vector<uint8_t> bytes(static_cast<size_t>(out) * blocks * block_bytes);
      for (size_t b = 0; b < bytes.size() / block_bytes; ++b) {
        uint8_t* blk = bytes.data() + b * block_bytes;
        const uint16_t scale = f32_to_f16(0.001f * static_cast<float>(1 + rng() % 50));
        std::memcpy(blk, &scale, 2);
        for (size_t i = 2; i < block_bytes; ++i) {
          // Extremes often, so that whole blocks of −128 / +127 (nibbles 0 / 15) occur.
          const uint32_t r = rng() % 8;
          const uint8_t lo = type == DType::Q8_0 ? 0x80 : 0x00,
                        hi = type == DType::Q8_0 ? 0x7f : 0xff;
          blk[i] = r == 0 ? lo : r == 1 ? hi : static_cast<uint8_t>(rng());
        }
      }
      const kernels::Matrix w{type, bytes.data(), out, in};
      const auto x = random_vec(static_cast<size_t>(n) * in, 22);
      std::vector<float> got(static_cast<size_t>(n) * out), want(got.size());
      kernels::matmul(cx(), x.data(), n, w, nullptr, got.data());
      kernels::ref::matmul(x.data(), n, w, nullptr, want.data());
      expect_close(got, want, 1e-4);
    }
  }
}

// bf16 arithmetic (paths that have it): x and W rounded to bf16 exactly as the reference twin
// rounds them, so only the float summation order differs.
TEST_P(KernelThreads, Bf16MatmulMatchesReference) {
  if (!kernels::has_bf16_matmul(cx())) GTEST_SKIP() << "no bf16 arithmetic on this path";
  for (auto [n, in, out] : {std::tuple{1, 32, 16},
                            {5, 33, 70},    // odd K: the last pair is padded
                            {13, 600, 64},  // K past one 256-wide chunk
                            {50, 96, 130},
                            {7, 768, 17}}) {
    for (DType type : {DType::F32, DType::F16, DType::BF16}) {
      const auto x = random_vec(static_cast<size_t>(n) * in, 31);
      const auto wf = random_vec(static_cast<size_t>(out) * in, 32, 0.05f);
      const auto bytes = store_as(wf, type);
      const kernels::Matrix w{type, bytes.data(), out, in};
      const auto b = random_vec(static_cast<size_t>(out), 33);
      for (const float* bias : {static_cast<const float*>(nullptr), b.data()}) {
        std::vector<float> got(static_cast<size_t>(n) * out), want(got.size());
        kernels::matmul_bf16(cx(), x.data(), n, w, bias, got.data());
        kernels::ref::matmul_bf16(x.data(), n, w, bias, want.data());
        expect_close(got, want, 1e-4);
      }
    }
  }
}

// The threaded residual add: every element once, a tail shorter than a share included.
TEST_P(KernelThreads, ThreadedAddIsThePlainAdd) {
  const size_t n = 3 * 4096 + 123;
  const auto x = random_vec(n, 70), y = random_vec(n, 71);
  std::vector<float> got(x), want(x);
  kernels::add_inplace(cx(), got.data(), y.data(), n);
  kernels::add_inplace(want.data(), y.data(), n);
  EXPECT_EQ(got, want);
}

// Several bf16 products of one input (the vision q, k, v) in one call: the same numbers as one
// matmul_bf16 each, bit for bit; row counts that make a worker's share span two targets.
TEST_P(KernelThreads, Bf16SameInputIsOneMatmulEach) {
  if (!kernels::has_bf16_matmul(cx())) GTEST_SKIP() << "no bf16 arithmetic on this path";
  const int n = 37, in = 96;
  const int rows[3] = {40, 17, 64};
  const auto x = random_vec(static_cast<size_t>(n) * in, 60);
  std::vector<std::vector<uint8_t>> bytes;
  std::vector<kernels::Matrix> ws;
  std::vector<std::vector<float>> biases, got(3), want(3);
  for (int i = 0; i < 3; ++i) {
    bytes.push_back(store_as(random_vec(static_cast<size_t>(rows[i]) * in, 61 + i, 0.05f),
                             i == 1 ? DType::F32 : DType::F16));
    biases.push_back(random_vec(static_cast<size_t>(rows[i]), 64 + i));
  }
  for (int i = 0; i < 3; ++i)
    ws.push_back(
        {i == 1 ? DType::F32 : DType::F16, bytes[static_cast<size_t>(i)].data(), rows[i], in});
  kernels::MatmulTarget targets[3];
  for (int i = 0; i < 3; ++i) {
    const size_t m = static_cast<size_t>(n) * rows[i];
    got[i].assign(m, -1.0f);
    want[i].resize(m);
    const float* bias = i == 2 ? nullptr : biases[static_cast<size_t>(i)].data();
    targets[i] = {&ws[static_cast<size_t>(i)], got[i].data(), bias};
    kernels::matmul_bf16(cx(), x.data(), n, ws[static_cast<size_t>(i)], bias, want[i].data());
  }
  kernels::matmul_bf16_same_input(cx(), x.data(), n, targets, 3);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(got[i], want[i]) << "target " << i;
}

// Decode attention's q·k products against the generic path's plain twin: head dims the fast
// kernels take (16, 64, 128) and one they hand back (20), key counts around the 16-key step.
TEST_P(KernelThreads, DotRowsMatchTheGenericTwin) {
  const kernels::KernelPath& path = cx().path();
  if (!path.dot_rows) GTEST_SKIP() << "no dot_rows on this path";
  for (const int hd : {16, 20, 64, 128}) {
    for (const int n : {1, 15, 16, 17, 33, 100}) {
      const int m = 3, stride = 3 * hd + 5;
      const auto q = random_vec(static_cast<size_t>(m) * hd, 40);
      const auto k = random_vec(static_cast<size_t>(n) * stride, 41);
      std::vector<float> got(static_cast<size_t>(m) * (n + 2), -7.0f), want(got);
      path.dot_rows(q.data(), m, hd, k.data(), static_cast<size_t>(stride), n, got.data(), n + 2);
      kernels::generic_path().dot_rows(q.data(), m, hd, k.data(), static_cast<size_t>(stride), n,
                                       want.data(), n + 2);
      expect_close(got, want, 1e-4);  // the padding between rows is left alone in both
    }
  }
}

TEST_P(KernelThreads, ToBf16RoundsAsReference) {
  const kernels::KernelPath& path = cx().path();
  if (!path.to_bf16) GTEST_SKIP() << "no bf16 arithmetic on this path";
  std::vector<float> x = random_vec(71, 34, 3.0f);
  x[0] = 1.00390625f;  // exactly halfway between two bf16 values: ties to even (down)
  x[1] = 1.01171875f;  // halfway, rounds up to even
  x[2] = -0.0f;
  std::vector<uint16_t> got(x.size());
  path.to_bf16(x.data(), x.size(), got.data());
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(got[i], f32_to_bf16(x[i])) << i;
}

// The activation quantiser rounds half away from zero, exactly as the reference's lround.
TEST_P(KernelThreads, QuantizeRowMatchesGenericExactly) {
  std::vector<float> x = random_vec(3 * kQ8BlockSize, 16, 2.0f);
  x[0] = 127.0f;  // block 0: scale exactly 1, so the halves below are ties
  for (int i = 1; i < kQ8BlockSize; ++i)
    x[i] = (i % 2 ? 0.5f : -0.5f) * static_cast<float>(2 * i - 1);
  std::fill(x.begin() + kQ8BlockSize, x.begin() + 2 * kQ8BlockSize, 0.0f);  // block 1: all zero
  std::vector<kernels::ActBlockQ8> got(3), want(3);
  cx().path().quantize_row_q8(x.data(), 3 * kQ8BlockSize, got.data());
  kernels::generic_path().quantize_row_q8(x.data(), 3 * kQ8BlockSize, want.data());
  for (int b = 0; b < 3; ++b) {
    EXPECT_EQ(got[b].d, want[b].d) << "block " << b;
    for (int i = 0; i < kQ8BlockSize; ++i) EXPECT_EQ(got[b].q[i], want[b].q[i]) << b << "/" << i;
  }
}

TEST(ReferenceKernels, DequantizeRowWidensExactly) {
  const std::vector<float> v = {1.0f, -0.5f, 3.0f, 0.125f};
  for (DType type : {DType::F32, DType::F16, DType::BF16}) {
    const auto bytes = store_as(v, type);
    std::vector<float> got(2);
    kernels::ref::dequantize_row({type, bytes.data(), 2, 2}, 1, got.data());
    EXPECT_EQ(got, (std::vector<float>{3.0f, 0.125f}));
  }
}

TEST_P(KernelThreads, AttentionMatchesReference) {
  struct Case {
    int nq, nk, heads, kv_heads, hd;
    bool causal;
  };
  for (const Case& c :
       {Case{16, 16, 4, 4, 16, false}, Case{7, 7, 3, 1, 32, true}, Case{1, 20, 9, 3, 64, true},
        Case{5, 12, 6, 2, 8, true}, Case{70, 70, 4, 4, 16, false}, Case{100, 130, 9, 3, 64, true},
        Case{17, 17, 3, 1, 32, true}, Case{1, 300, 4, 2, 20, true}, Case{3, 40, 2, 1, 160, false},
        // One query row (decode): keys cut into chunks per KV head, merged afterwards; one key,
        // a chunk and one more, many chunks, no grouping, and bidirectional.
        Case{1, 1, 9, 3, 64, true}, Case{1, 65, 9, 3, 64, true}, Case{1, 1024, 9, 3, 64, true},
        Case{1, 257, 9, 9, 64, true}, Case{1, 700, 6, 2, 32, false}}) {
    const int qw = c.heads * c.hd, kvw = c.kv_heads * c.hd;
    const auto q = random_vec(static_cast<size_t>(c.nq) * qw, 4);
    const auto k = random_vec(static_cast<size_t>(c.nk) * kvw, 5);
    const auto v = random_vec(static_cast<size_t>(c.nk) * kvw, 6);
    const kernels::AttentionShape s{.nq = c.nq,
                                    .nk = c.nk,
                                    .heads = c.heads,
                                    .kv_heads = c.kv_heads,
                                    .head_dim = c.hd,
                                    .q_stride = qw,
                                    .kv_stride = kvw,
                                    .out_stride = qw,
                                    .scale = 0.125f,
                                    .causal = c.causal,
                                    .q_pos0 = c.nk - c.nq};
    std::vector<float> got(static_cast<size_t>(c.nq) * qw), want(got.size());
    kernels::attention(cx(), s, q.data(), k.data(), v.data(), nullptr, got.data());
    kernels::ref::attention(s, q.data(), k.data(), v.data(), nullptr, want.data());
    expect_close(got, want, 1e-5);

    // The same keys and values in the KV cache's layout: each KV head's together, a head
    // `capacity` rows apart (more rows than keys, as in a cache not yet full).
    const int capacity = c.nk + 3;
    std::vector<float> kh(static_cast<size_t>(capacity) * kvw, 99.0f), vh(kh);
    for (int j = 0; j < c.nk; ++j) {
      for (int h = 0; h < c.kv_heads; ++h) {
        for (int d = 0; d < c.hd; ++d) {
          const size_t from = static_cast<size_t>(j) * kvw + h * c.hd + d,
                       to = (static_cast<size_t>(h) * capacity + j) * c.hd + d;
          kh[to] = k[from];
          vh[to] = v[from];
        }
      }
    }
    kernels::AttentionShape per_head = s;
    per_head.kv_stride = c.hd;
    per_head.kv_head_stride = capacity * c.hd;
    std::vector<float> got_ph(got.size()), want_ph(got.size());
    kernels::attention(cx(), per_head, q.data(), kh.data(), vh.data(), nullptr, got_ph.data());
    kernels::ref::attention(per_head, q.data(), kh.data(), vh.data(), nullptr, want_ph.data());
    EXPECT_EQ(want_ph, want);  // the twin reads the same numbers in either layout
    expect_close(got_ph, want, 1e-5);
  }
}

// One query row with a key mask (the decode path's chunks): masked keys anywhere, and a whole
// chunk of them, which must drop out of the merge.
TEST_P(KernelThreads, OneRowAttentionWithKeyMaskMatchesReference) {
  const int nk = 600, heads = 9, kv_heads = 3, hd = 64, qw = heads * hd, kvw = kv_heads * hd;
  const auto q = random_vec(static_cast<size_t>(qw), 7);
  const auto k = random_vec(static_cast<size_t>(nk) * kvw, 8);
  const auto v = random_vec(static_cast<size_t>(nk) * kvw, 9);
  std::vector<unsigned char> mask(nk);
  for (int j = 0; j < nk; ++j) mask[j] = j >= 128 && (j % 7 != 3);  // the first 128 all masked
  const kernels::AttentionShape s{.nq = 1,
                                  .nk = nk,
                                  .heads = heads,
                                  .kv_heads = kv_heads,
                                  .head_dim = hd,
                                  .q_stride = qw,
                                  .kv_stride = kvw,
                                  .out_stride = qw,
                                  .scale = 0.125f,
                                  .causal = false,
                                  .q_pos0 = 0};
  std::vector<float> got(qw), want(qw);
  kernels::attention(cx(), s, q.data(), k.data(), v.data(), mask.data(), got.data());
  kernels::ref::attention(s, q.data(), k.data(), v.data(), mask.data(), want.data());
  expect_close(got, want, 1e-5);
}

// The vision encoder's bf16 mode: Q·Kᵀ and P·V with bf16 inputs, against the twin that rounds
// the same values (many query rows: the blocked path; odd key counts pad a bf16 pair).
TEST_P(KernelThreads, AttentionBf16MatchesReference) {
  if (!cx().path().gemm_bf16_panels) GTEST_SKIP() << "no bf16 arithmetic on this path";
  struct Case {
    int nq, nk, heads, kv_heads, hd;
    bool causal;
  };
  for (const Case& c : {Case{64, 64, 2, 2, 64, false}, Case{37, 37, 3, 1, 64, false},
                        Case{20, 600, 2, 2, 20, false}, Case{300, 300, 4, 2, 32, true}}) {
    const int qw = c.heads * c.hd, kvw = c.kv_heads * c.hd;
    const auto q = random_vec(static_cast<size_t>(c.nq) * qw, 41);
    const auto k = random_vec(static_cast<size_t>(c.nk) * kvw, 42);
    const auto v = random_vec(static_cast<size_t>(c.nk) * kvw, 43);
    const kernels::AttentionShape s{.nq = c.nq,
                                    .nk = c.nk,
                                    .heads = c.heads,
                                    .kv_heads = c.kv_heads,
                                    .head_dim = c.hd,
                                    .q_stride = qw,
                                    .kv_stride = kvw,
                                    .out_stride = qw,
                                    .scale = 0.125f,
                                    .causal = c.causal,
                                    .q_pos0 = c.nk - c.nq};
    std::vector<float> got(static_cast<size_t>(c.nq) * qw), want(got.size()), f32(got.size());
    kernels::attention(cx(), s, q.data(), k.data(), v.data(), nullptr, got.data(), true);
    kernels::ref::attention_bf16(s, q.data(), k.data(), v.data(), want.data());
    expect_close(got, want, 1e-5);
    // and it is really the bf16 arithmetic: the float32 result differs
    kernels::attention(cx(), s, q.data(), k.data(), v.data(), nullptr, f32.data());
    EXPECT_GT(test::max_abs_diff(f32, want), 1e-4);
  }
}

// The norms at the model's widths too (768: vision, 576: text), rows offset from zero so the
// mean matters, and one width (20) that is no multiple of the lanes (the plain twin's rows).
TEST_P(KernelThreads, NormsAtModelWidthsMatchReference) {
  for (const int d : {768, 576, 20}) {
    const int n = 5;
    auto x = random_vec(static_cast<size_t>(n) * d, 17, 2.0f);
    for (auto& v : x) v += 3.0f;
    const auto w = random_vec(static_cast<size_t>(d), 18);
    const auto b = random_vec(static_cast<size_t>(d), 19);
    std::vector<float> got(x.size()), want(x.size());
    kernels::layer_norm(cx(), x.data(), n, d, w.data(), b.data(), 1e-6f, got.data());
    kernels::ref::layer_norm(x.data(), n, d, w.data(), b.data(), 1e-6f, want.data());
    expect_close(got, want, 1e-5);
    kernels::rms_norm(cx(), x.data(), n, d, w.data(), 1e-5f, got.data());
    kernels::ref::rms_norm(x.data(), n, d, w.data(), 1e-5f, want.data());
    expect_close(got, want, 1e-5);
  }
}

TEST_P(KernelThreads, NormsAndActivationsMatchReference) {
  const int n = 9, d = 96;
  const auto x = random_vec(static_cast<size_t>(n) * d, 7, 3.0f);
  const auto w = random_vec(static_cast<size_t>(d), 8);
  const auto b = random_vec(static_cast<size_t>(d), 9);
  std::vector<float> got(x.size()), want(x.size());
  kernels::layer_norm(cx(), x.data(), n, d, w.data(), b.data(), 1e-6f, got.data());
  kernels::ref::layer_norm(x.data(), n, d, w.data(), b.data(), 1e-6f, want.data());
  expect_close(got, want, 1e-6);
  kernels::rms_norm(cx(), x.data(), n, d, w.data(), 1e-5f, got.data());
  kernels::ref::rms_norm(x.data(), n, d, w.data(), 1e-5f, want.data());
  expect_close(got, want, 1e-6);
  // Element-wise steps: the SIMD paths use polynomial exp (about 1 ulp), so a small tolerance.
  got = x;
  want = x;
  kernels::gelu_tanh_inplace(cx(), got.data(), got.size());
  kernels::ref::gelu_tanh_inplace(want.data(), want.size());
  expect_close(got, want, 2e-6);
  kernels::silu_mul(cx(), x.data(), w.data(), got.data(), static_cast<size_t>(d));
  kernels::ref::silu_mul(x.data(), w.data(), want.data(), static_cast<size_t>(d));
  expect_close(got, want, 2e-6);
  // Extremes must not overflow into inf/NaN.
  std::vector<float> ext = {-200.0f, -90.0f, -10.0f, 0.0f, 10.0f, 90.0f, 200.0f, 1e-30f, -1e-30f};
  ext.resize(32, 3.0f);
  std::vector<float> g = ext, g_ref = ext;
  kernels::gelu_tanh_inplace(cx(), g.data(), g.size());
  kernels::ref::gelu_tanh_inplace(g_ref.data(), g_ref.size());
  expect_close(g, g_ref, 1e-5);
  std::vector<float> sm(ext.size()), sm_ref(ext.size());
  kernels::silu_mul(cx(), ext.data(), ext.data(), sm.data(), ext.size());
  kernels::ref::silu_mul(ext.data(), ext.data(), sm_ref.data(), ext.size());
  for (size_t i = 0; i < sm.size(); ++i)
    EXPECT_NEAR(sm[i], sm_ref[i], 1e-4 * std::max(1.0f, std::fabs(sm_ref[i]))) << ext[i];
}

std::string path_case_name(const ::testing::TestParamInfo<KernelThreads::ParamType>& info) {
  return std::get<0>(info.param) + "_" + std::to_string(std::get<1>(info.param)) + "threads";
}

INSTANTIATE_TEST_SUITE_P(Kernels, KernelThreads,
                         ::testing::Combine(::testing::ValuesIn(kernels::known_path_names()),
                                            ::testing::Values(1, 2, 3)),
                         path_case_name);

// Q8_0 weights run as w8a8: close to the float product, within what int8 rounding allows.
TEST(ReferenceKernels, W8A8IsCloseToFloat) {
  const int in = 256, out = 16;
  const auto x = random_vec(in, 11);
  const auto wf = random_vec(static_cast<size_t>(out) * in, 12, 0.05f);
  const auto q = quantize_q8_0(wf, out, in);
  std::vector<float> yq(out), yf(out);
  kernels::ref::matmul(x.data(), 1, {DType::Q8_0, q.data(), out, in}, nullptr, yq.data());
  kernels::ref::matmul(x.data(), 1, kernels::f32_matrix(wf.data(), out, in), nullptr, yf.data());
  double err = 0, norm = 0;
  for (int o = 0; o < out; ++o) {
    err += (yq[o] - yf[o]) * (yq[o] - yf[o]);
    norm += yf[o] * yf[o];
  }
  EXPECT_LT(std::sqrt(err / norm), 0.02);  // ~0.4% per int8 operand
}

// Q4_0 as llama.cpp rounds it: the largest-magnitude value maps to nibble 0 (d = m / −8).
TEST(ReferenceKernels, Q4RoundTripKnownValues) {
  std::vector<float> x(32);
  for (int i = 0; i < 32; ++i) x[static_cast<size_t>(i)] = static_cast<float>(i - 16);  // −16 … 15
  const std::vector<uint8_t> q = quantize_q4_0(x, 1, 32);
  ASSERT_EQ(q.size(), kQ4BlockBytes);
  EXPECT_EQ(f16_to_f32(static_cast<uint16_t>(q[0] | q[1] << 8)), 2.0f);  // d = −16 / −8
  EXPECT_EQ(q[2] & 0x0F, 0);                                             // −16 → nibble 0
  std::vector<float> back(32);
  kernels::ref::dequantize_row({DType::Q4_0, q.data(), 1, 32}, 0, back.data());
  EXPECT_EQ(back[0], -16.0f);
  EXPECT_EQ(back[16], 0.0f);   // 0 → 8.5 → nibble 8
  EXPECT_EQ(back[31], 14.0f);  // 15 → 16 → clamped to 15 → (15 − 8)·2
  for (int i = 0; i < 32; ++i)
    EXPECT_LE(std::fabs(back[static_cast<size_t>(i)] - x[static_cast<size_t>(i)]), 1.0f);
}

// One fallback rule: a path's filled entries are never null, wherever its table left them out,
// and each path the CPU has is among the names the tests iterate over.
TEST(KernelPaths, FilledEntriesAreNeverNull) {
  const std::vector<std::string> known = kernels::known_path_names();
  for (const kernels::KernelPath* p : kernels::available_paths()) {
    SCOPED_TRACE(p->name);
    EXPECT_NE(std::find(known.begin(), known.end(), std::string(p->name)), known.end());
    EXPECT_NE(p->exp_shift_sum, nullptr);
    EXPECT_NE(p->gelu_tanh, nullptr);
    EXPECT_NE(p->silu_mul, nullptr);
    EXPECT_NE(p->row_max, nullptr);
    EXPECT_NE(p->layer_norm, nullptr);
    EXPECT_NE(p->rms_norm, nullptr);
    EXPECT_NE(p->gemv_kquant, nullptr);
    EXPECT_EQ(&kernels::find_path(p->name), p);
  }
  EXPECT_EQ(kernels::available_paths().front(), &kernels::generic_path());
  std::vector<float> x = {1.0f, -3.0f, 7.5f, 2.0f};
  EXPECT_EQ(kernels::generic_path().row_max(x.data(), 4), 7.5f);
}

TEST(KernelPaths, GenericIsAlwaysThereAndSelectable) {
  const auto paths = kernels::available_paths();
  ASSERT_FALSE(paths.empty());
  EXPECT_STREQ(paths.front()->name, "generic");
  EXPECT_STREQ(kernels::Compute(1, "generic").path_name(), "generic");
  EXPECT_THROW(kernels::Compute(1, "no-such-path"), Error);
  EXPECT_EQ(kernels::Compute(3).threads(), 3);
}

// Names the paths this CPU offers and the one a default context picks (the qemu runs in CI
// print this to show which kernels were proven).
TEST(KernelPaths, ReportsTheDefaultPath) {
  std::string names;
  for (const auto* p : kernels::available_paths())
    names += std::string(names.empty() ? "" : ", ") + p->name;
  const kernels::Compute cx(1);
  std::printf("[ kernels  ] available: %s; active: %s\n", names.c_str(), cx.path_name());
  const char* forced = std::getenv("SMOLVLM_KERNELS");
  EXPECT_STREQ(cx.path_name(),
               forced && *forced ? forced : kernels::available_paths().back()->name);
}

// RoPE in two steps (a token's angles once, then every head of every layer) against the
// one-step twin, at positions where the angles are large. Equal on x86; where the compiler
// fuses a multiply and an add differently in the two (ARM64 always has FMA), an ulp apart.
TEST(Kernels, RopeInTwoStepsMatchesTheTwin) {
  const int heads = 9, hd = 64;
  std::vector<float> inv_freq(hd / 2);
  for (int i = 0; i < hd / 2; ++i)
    inv_freq[static_cast<size_t>(i)] = 1.0f / std::pow(100000.0f, 2.0f * i / hd);
  for (const int pos : {0, 1, 873, 8191}) {
    const auto x = random_vec(static_cast<size_t>(heads) * hd, 50);
    std::vector<float> got(x), want(x), cs(hd);
    kernels::rope_angles(pos, inv_freq.data(), hd, cs.data(), cs.data() + hd / 2);
    kernels::rope_rotate(got.data(), heads, hd, cs.data(), cs.data() + hd / 2);
    kernels::ref::rope(want.data(), heads, hd, pos, inv_freq.data());
    for (size_t i = 0; i < got.size(); ++i)
      EXPECT_NEAR(got[i], want[i], 1e-6f * std::max(1.0f, std::fabs(want[i]))) << pos << "/" << i;
  }
}

// The reference kernels themselves against values worked out by hand.
TEST(ReferenceKernels, KnownValues) {
  const float x[] = {1, 2, 3, 4};
  const float w[] = {1, 0, 0, 0, 0, 1, 1, 0};  // out0 = x0, out1 = x1 + x2
  const float b[] = {0.5f, -1};
  float y[2];
  kernels::ref::matmul(x, 1, kernels::f32_matrix(w, 2, 4), b, y);
  EXPECT_FLOAT_EQ(y[0], 1.5f);
  EXPECT_FLOAT_EQ(y[1], 4.0f);

  float r[4] = {1, 0, 0, 0};  // head_dim 4: pairs (0,2), (1,3); inv_freq {1, 1}, pos 1 → 1 rad
  const float inv_freq[] = {1.0f, 1.0f};
  kernels::ref::rope(r, 1, 4, 1, inv_freq);
  EXPECT_NEAR(r[0], std::cos(1.0f), 1e-7);
  EXPECT_NEAR(r[2], std::sin(1.0f), 1e-7);  // rotate-half: second half gets +x·sin

  float g[1] = {1.0f};
  kernels::ref::gelu_tanh_inplace(g, 1);
  EXPECT_NEAR(g[0], 0.8411920f, 1e-6);  // torch gelu(1, approximate='tanh')

  const float ones[4] = {1, 1, 1, 1};
  float out[4];
  kernels::ref::rms_norm(x, 1, 4, ones, 0.0f, out);
  EXPECT_NEAR(out[3], 4.0f / std::sqrt(7.5f), 1e-6);
}

// Causal attention at position 0 sees only itself: the output is v[0].
TEST(ReferenceKernels, CausalFirstPositionCopiesValue) {
  const float q[2] = {3, -1}, k[4] = {1, 2, 5, 5}, v[4] = {7, 8, 9, 10};
  float out[2];
  const kernels::AttentionShape s{.nq = 1,
                                  .nk = 2,
                                  .heads = 1,
                                  .kv_heads = 1,
                                  .head_dim = 2,
                                  .q_stride = 2,
                                  .kv_stride = 2,
                                  .out_stride = 2,
                                  .scale = 1.0f,
                                  .causal = true,
                                  .q_pos0 = 0};
  kernels::ref::attention(s, q, k, v, nullptr, out);
  EXPECT_FLOAT_EQ(out[0], 7);
  EXPECT_FLOAT_EQ(out[1], 8);
}

}  // namespace
}  // namespace smolvlm
