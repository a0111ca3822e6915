// Kernel micro-benchmark: GFLOP/s of matmul (and attention) per kernel path and weight type, on
// the shapes SmolVLM2-256M runs (K-quant weights: SmolVLM2-2.2B's decode shapes). Prints a table,
// or JSON with --json. Medians of --repeat runs.
// --roofline instead measures what the hardware allows: DRAM read bandwidth and, on x86 with
// AVX512_BF16, the bf16 dot-product peak, the ceilings that bench/compare_llamacpp.py sets the
// decode and vision figures against.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "formats/kquants.h"
#include "formats/quantize.h"
#include "kernels/compute.h"
#include "kernels/kernel_path.h"
#include "kernels/kernels.h"
#include "kernels/q4k_panels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

using namespace smolvlm;

namespace {

// DRAM read bandwidth with the pool's threads: each pass sums a 512 MB buffer (16× this
// machine's L3, so nothing is served from cache), split like a GEMV's rows; GB/s per pass.
std::vector<double> dram_read_gb_s(const kernels::Compute& cx, int passes) {
  constexpr size_t kBytes = size_t{512} << 20;
  std::vector<uint64_t> buf(kBytes / sizeof(uint64_t));
  cx.pool().parallel_for(buf.size() / 4096, [&](size_t b, size_t e) {  // touch: real pages
    for (size_t i = b * 4096; i < e * 4096; ++i) buf[i] = i;
  });
  std::vector<double> out;
  std::atomic<uint64_t> sink{0};
  for (int p = 0; p < passes + 1; ++p) {
    const auto t0 = std::chrono::steady_clock::now();
    cx.pool().parallel_for(buf.size() / 4096, [&](size_t b, size_t e) {
      // Eight independent sums: the compiler vectorises it into full-width loads.
      uint64_t acc[8] = {};
      for (size_t i = b * 4096; i < e * 4096; i += 8)
        for (int j = 0; j < 8; ++j) acc[j] += buf[i + static_cast<size_t>(j)];
      uint64_t total = 0;
      for (uint64_t a : acc) total += a;
      sink += total;
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (p > 0) out.push_back(static_cast<double>(kBytes) / s / 1e9);  // the first warms the pool
  }
  if (sink.load() == 1) std::puts("");  // keeps the sums
  return out;
}

#if defined(__x86_64__)
// The AVX512_BF16 dot-product peak of one core: 20 independent vdpbf16ps chains in registers
// (more than latency × throughput), 64 FLOP each (16 lanes × 2 pairs × multiply-add).
__attribute__((target("avx512f,avx512bf16"))) double bf16_peak_one_thread(long iterations) {
  const __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80), y = (__m512bh)_mm512_set1_epi16(0x3c00);
  // clang-format off
#define SMOLVLM_ACC(i) __m512 a##i = _mm512_set1_ps(static_cast<float>(i));  // distinct chains
#define SMOLVLM_ACCS(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) \
  M(10) M(11) M(12) M(13) M(14) M(15) M(16) M(17) M(18) M(19)
  SMOLVLM_ACCS(SMOLVLM_ACC)
  // clang-format on
  const auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < iterations; ++i) {
#define SMOLVLM_DOT(i) a##i = _mm512_dpbf16_ps(a##i, x, y);
    SMOLVLM_ACCS(SMOLVLM_DOT)
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  __m512 sum = _mm512_setzero_ps();
#define SMOLVLM_SUM(i) sum = _mm512_add_ps(sum, a##i);
  SMOLVLM_ACCS(SMOLVLM_SUM)
#undef SMOLVLM_SUM
#undef SMOLVLM_DOT
#undef SMOLVLM_ACCS
#undef SMOLVLM_ACC
  float lanes[16];
  _mm512_storeu_ps(lanes, sum);
  if (lanes[0] == 1.0f) std::puts("");  // keeps the chains
  return 20.0 * 64.0 * static_cast<double>(iterations) / s / 1e9;
}
#endif

// All threads at once (the cores share power and clocks): total GFLOP/s per pass, or empty
// where the CPU has no AVX512_BF16.
std::vector<double> bf16_peak_gflops(const kernels::Compute& cx, int passes) {
  std::vector<double> out;
#if defined(__x86_64__)
  if (!__builtin_cpu_supports("avx512bf16")) return out;
  for (int p = 0; p < passes + 1; ++p) {
    std::atomic<double> total{0};
    cx.pool().parallel_for(static_cast<size_t>(cx.threads()), [&](size_t b, size_t e) {
      for (size_t i = b; i < e; ++i) total += bf16_peak_one_thread(4'000'000);
    });
    if (p > 0) out.push_back(total.load());
  }
#else
  (void)cx;
  (void)passes;
#endif
  return out;
}

struct Shape {
  const char* what;
  int n, in, out;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::vector<uint8_t> weights(const std::vector<float>& w, DType t, int rows, int cols) {
  if (t == DType::Q8_0) return quantize_q8_0(w, rows, cols);
  if (t == DType::Q4_0) return quantize_q4_0(w, rows, cols);
  if (is_kquant_type(t)) return quantize_rows(t, w, rows, cols);
  std::vector<uint8_t> out;
  for (float f : w) {
    if (t == DType::F32) {
      const auto* b = reinterpret_cast<const uint8_t*>(&f);
      out.insert(out.end(), b, b + 4);
    } else {
      const uint16_t h = t == DType::F16 ? f32_to_f16(f) : f32_to_bf16(f);
      out.push_back(static_cast<uint8_t>(h));
      out.push_back(static_cast<uint8_t>(h >> 8));
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0, repeat = 5;
  bool json = false, roofline = false;
  std::string only_path, only_shape;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc)
      threads = std::atoi(argv[++i]);
    else if (a == "--repeat" && i + 1 < argc)
      repeat = std::atoi(argv[++i]);
    else if (a == "--path" && i + 1 < argc)
      only_path = argv[++i];
    else if (a == "--shape" && i + 1 < argc)
      only_shape = argv[++i];
    else if (a == "--json")
      json = true;
    else if (a == "--roofline")
      roofline = true;
    else {
      std::fprintf(
          stderr,
          "usage: smolvlm_kernel_bench [--threads N] [--repeat N] [--path NAME] [--shape TEXT] "
          "[--json] [--roofline]\n"
          "  --shape TEXT  only the shapes whose name holds TEXT (e.g. decode)\n"
          "  --roofline    the hardware's ceilings instead: DRAM read GB/s, bf16 peak GFLOP/s\n");
      return 2;
    }
  }
  if (roofline) {
    const kernels::Compute cx(threads);
    const std::vector<double> bw = dram_read_gb_s(cx, repeat), bf16 = bf16_peak_gflops(cx, repeat);
    nlohmann::json r = {
        {"threads", cx.threads()}, {"dram_read_gb_s", median(bw)}, {"dram_read_gb_s_runs", bw}};
    r["bf16_peak_gflops"] = bf16.empty() ? nlohmann::json() : nlohmann::json(median(bf16));
    r["bf16_peak_gflops_runs"] = bf16;
    if (json) {
      std::puts(r.dump(2).c_str());
    } else {
      std::printf("%d threads: DRAM read %.1f GB/s (median of %d)", cx.threads(), median(bw),
                  repeat);
      if (!bf16.empty()) std::printf(", bf16 dot-product peak %.0f GFLOP/s", median(bf16));
      std::printf("\n");
    }
    return 0;
  }
  const Shape shapes[] = {
      {"vision qkv/o (1 tile)", 1024, 768, 768}, {"vision fc1", 1024, 768, 3072},
      {"vision fc2", 1024, 3072, 768},           {"prefill gate/up", 512, 576, 1536},
      {"decode gate/up", 1, 576, 1536},          {"decode lm_head", 1, 576, 49280}};
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0, 1);
  nlohmann::json out = nlohmann::json::array();
  if (!json)
    std::printf("%-10s %-9s %-24s %10s %10s %10s\n", "path", "type", "shape", "ms", "GFLOP/s",
                "weight GB/s");
  // K-quant weights on SmolVLM2-2.2B's decode shapes and a 128-token prefill (the types of its
  // Q4_K_M file; the 256M's 576 columns are not whole 256-value blocks).
  const Shape kquant_shapes[] = {{"decode 2.2B q/o", 1, 2048, 2048},
                                 {"decode 2.2B gate/up", 1, 2048, 8192},
                                 {"decode 2.2B down", 1, 8192, 2048},
                                 {"prefill 2.2B gate/up", 128, 2048, 8192}};
  const DType kquant_types[] = {DType::Q4_K, DType::Q6_K, DType::Q5_K};
  std::map<std::string, std::vector<uint8_t>> kquant_weights;
  for (const auto* path : kernels::available_paths()) {
    if (!only_path.empty() && only_path != path->name) continue;
    const kernels::Compute cx(threads, path->name);
    const auto measure = [&](const Shape& s, DType t, bool bf16_math, bool panels = false) {
      if (!only_shape.empty() && std::string(s.what).find(only_shape) == std::string::npos) return;
      const char* type_name = bf16_math ? "F16·bf16" : panels ? "Q4_K·pnl" : dtype_name(t);
      std::vector<float> x(static_cast<size_t>(s.n) * s.in), wf(static_cast<size_t>(s.out) * s.in),
          y(static_cast<size_t>(s.n) * s.out);
      for (auto& v : x) v = nd(rng);
      for (auto& v : wf) v = 0.02f * nd(rng);
      // K-quant writers search scales: quantised once, shared by every path.
      const bool cached = is_kquant_type(t);
      std::vector<uint8_t> fresh;
      if (!cached) fresh = weights(wf, t, s.out, s.in);
      std::vector<uint8_t>& wb =
          cached ? kquant_weights[std::string(dtype_name(t)) + s.what] : fresh;
      if (wb.empty()) wb = weights(wf, t, s.out, s.in);
      kernels::Matrix w{t, wb.data(), s.out, s.in};
      // Decode panels (kernels/q4k_panels.h), as the loader attaches them.
      std::vector<uint8_t> packed;
      if (panels) {
        packed.resize(kernels::decode_panel_bytes(w));
        kernels::pack_decode_panels(w, packed.data());
        w.panels = packed.data();
      }
      std::vector<double> ms;
      for (int r = 0; r < repeat + 1; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        if (bf16_math) {
          kernels::matmul_bf16(cx, x.data(), s.n, w, nullptr, y.data());
        } else {
          kernels::matmul(cx, x.data(), s.n, w, nullptr, y.data());
        }
        const double e =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                .count();
        if (r > 0) ms.push_back(e);  // the first run warms caches and the pool
      }
      const double m = median(ms), gflops = 2.0 * s.n * s.in * s.out / (m * 1e6),
                   gb_s = static_cast<double>(wb.size()) / (m * 1e6);  // weights read
      if (json) {
        out.push_back({{"path", path->name},
                       {"type", type_name},
                       {"shape", s.what},
                       {"ms", m},
                       {"gflops", gflops},
                       {"weight_gb_s", gb_s}});
      } else {
        std::printf("%-10s %-9s %-24s %10.3f %10.1f %10.1f\n", path->name, type_name, s.what, m,
                    gflops, gb_s);
      }
    };
    // The last pass: F16 weights with bf16 arithmetic, where the path has it (vision shapes).
    // Then Q4_0 weights (w4a8, the decode and prefill shapes).
    for (int variant = 0; variant < 5; ++variant) {
      const bool bf16_math = variant == 3;
      if (bf16_math && !kernels::has_bf16_matmul(cx)) continue;
      const DType t = variant == 0   ? DType::F32
                      : variant == 2 ? DType::Q8_0
                      : variant == 4 ? DType::Q4_0
                                     : DType::F16;
      for (const Shape& s : shapes) {
        if (bf16_math && s.n == 1) continue;
        if (t == DType::Q4_0 && std::string(s.what).rfind("vision", 0) == 0) continue;
        measure(s, t, bf16_math);
      }
    }
    for (const DType t : kquant_types)
      for (const Shape& s : kquant_shapes) measure(s, t, false);
    if (path->gemv_q4k_panels)
      for (const Shape& s : kquant_shapes) measure(s, DType::Q4_K, false, true);
  }
  // Attention: one vision layer (1024 patches, 12 heads, bidirectional) and one decode step of
  // the 256M text model after a 1024-token prompt (9 query heads on 3 KV heads).
  struct AttnCase {
    const char* what;
    int nq, nk, heads, kv_heads;
    bool causal;
    bool bf16 = false;  // bf16 products (the vision encoder's bf16 mode)
    bool cold = false;  // K and V evicted from the caches first, as in a real decode step
                        // (the layer's ~MB of weights have streamed through since)
  };
  std::vector<char> evict(64u << 20, 1);
  unsigned evict_sum = 0;
  for (const auto* path : kernels::available_paths()) {
    if (!only_path.empty() && only_path != path->name) continue;
    const kernels::Compute cx(threads, path->name);
    for (const AttnCase& c :
         {AttnCase{"attention vision layer", 1024, 1024, 12, 12, false},
          AttnCase{"attention vision layer", 1024, 1024, 12, 12, false, true},
          AttnCase{"attention decode 1/1024", 1, 1024, 9, 3, true},
          AttnCase{"attention decode 1/128", 1, 128, 9, 3, true},
          AttnCase{"attention decode 1/1024 cold", 1, 1024, 9, 3, true, false, true},
          AttnCase{"attention decode 1/128 cold", 1, 128, 9, 3, true, false, true}}) {
      if (c.bf16 && !path->gemm_bf16_panels) continue;
      if (!only_shape.empty() && std::string(c.what).find(only_shape) == std::string::npos)
        continue;
      const int hd = 64, qw = c.heads * hd, kvw = c.kv_heads * hd;
      std::vector<float> q(static_cast<size_t>(c.nq) * qw), k(static_cast<size_t>(c.nk) * kvw),
          v(k.size()), o(q.size());
      for (auto* vec : {&q, &k, &v})
        for (auto& x : *vec) x = nd(rng);
      const kernels::AttentionShape shape{.nq = c.nq,
                                          .nk = c.nk,
                                          .heads = c.heads,
                                          .kv_heads = c.kv_heads,
                                          .head_dim = hd,
                                          .q_stride = qw,
                                          // decode: the KV cache's layout, each KV head's
                                          // keys together; vision: heads side by side
                                          .kv_stride = c.causal ? hd : kvw,
                                          .out_stride = qw,
                                          .scale = 0.125f,
                                          .causal = c.causal,
                                          .q_pos0 = c.nk - c.nq,
                                          .kv_head_stride = c.causal ? c.nk * hd : 0};
      std::vector<double> ms;
      for (int r = 0; r < repeat + 1; ++r) {
        if (c.cold) {  // read on the pool, so its workers are awake (spinning) afterwards
          std::atomic<unsigned> sum{0};
          cx.pool().parallel_for(evict.size() / 64, [&](size_t b, size_t e) {
            unsigned local = 0;
            for (size_t i = b; i < e; ++i) local += static_cast<unsigned char>(evict[i * 64]);
            sum += local;
          });
          evict_sum += sum.load();
        }
        const auto t0 = std::chrono::steady_clock::now();
        kernels::attention(cx, shape, q.data(), k.data(), v.data(), nullptr, o.data(), c.bf16);
        const double e =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                .count();
        if (r > 0) ms.push_back(e);
      }
      const double m = median(ms), gflops = 4.0 * c.nq * c.nk * c.heads * hd / (m * 1e6);
      if (json) {
        out.push_back({{"path", path->name},
                       {"type", c.bf16 ? "F32·bf16" : "F32"},
                       {"shape", c.what},
                       {"ms", m},
                       {"gflops", gflops}});
      } else {
        std::printf("%-10s %-9s %-24s %10.3f %10.1f\n", path->name, c.bf16 ? "F32·bf16" : "F32",
                    c.what, m, gflops);
      }
    }
  }
  if (json) std::puts(out.dump(2).c_str());
  return evict_sum == 0xffffffffu ? 1 : 0;  // keeps the eviction reads
}
