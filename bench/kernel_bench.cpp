// Kernel micro-benchmark: GFLOP/s of matmul (and attention) per kernel path and weight type, on
// the shapes SmolVLM2-256M runs. Prints a table, or JSON with --json. Medians of --repeat runs.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "formats/quantize.h"
#include "kernels/compute.h"
#include "kernels/kernel_path.h"
#include "kernels/kernels.h"

using namespace smolvlm;

namespace {

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
  bool json = false;
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
    else {
      std::fprintf(
          stderr,
          "usage: smolvlm_kernel_bench [--threads N] [--repeat N] [--path NAME] [--shape TEXT] "
          "[--json]\n"
          "  --shape TEXT  only the shapes whose name holds TEXT (e.g. decode)\n");
      return 2;
    }
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
  for (const auto* path : kernels::available_paths()) {
    if (!only_path.empty() && only_path != path->name) continue;
    const kernels::Compute cx(threads, path->name);
    // The last pass: F16 weights with bf16 arithmetic, where the path has it (vision shapes).
    // Then Q4_0 weights (w4a8, the decode and prefill shapes).
    for (int variant = 0; variant < 5; ++variant) {
      const bool bf16_math = variant == 3;
      if (bf16_math && !kernels::has_bf16_matmul(cx)) continue;
      const DType t = variant == 0   ? DType::F32
                      : variant == 2 ? DType::Q8_0
                      : variant == 4 ? DType::Q4_0
                                     : DType::F16;
      const char* type_name = bf16_math ? "F16·bf16" : dtype_name(t);
      for (const Shape& s : shapes) {
        if (bf16_math && s.n == 1) continue;
        if (!only_shape.empty() && std::string(s.what).find(only_shape) == std::string::npos)
          continue;
        if (t == DType::Q4_0 && std::string(s.what).rfind("vision", 0) == 0) continue;
        std::vector<float> x(static_cast<size_t>(s.n) * s.in),
            wf(static_cast<size_t>(s.out) * s.in), y(static_cast<size_t>(s.n) * s.out);
        for (auto& v : x) v = nd(rng);
        for (auto& v : wf) v = 0.02f * nd(rng);
        const auto wb = weights(wf, t, s.out, s.in);
        const kernels::Matrix w{t, wb.data(), s.out, s.in};
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
      }
    }
  }
  // Attention: one vision layer (1024 patches, 12 heads, bidirectional) and one decode step of
  // the 256M text model after a 1024-token prompt (9 query heads on 3 KV heads).
  struct AttnCase {
    const char* what;
    int nq, nk, heads, kv_heads;
    bool causal;
    bool bf16 = false;  // bf16 products (the vision encoder's bf16 mode)
  };
  for (const auto* path : kernels::available_paths()) {
    if (!only_path.empty() && only_path != path->name) continue;
    const kernels::Compute cx(threads, path->name);
    for (const AttnCase& c : {AttnCase{"attention vision layer", 1024, 1024, 12, 12, false},
                              AttnCase{"attention vision layer", 1024, 1024, 12, 12, false, true},
                              AttnCase{"attention decode 1/1024", 1, 1024, 9, 3, true},
                              AttnCase{"attention decode 1/128", 1, 128, 9, 3, true}}) {
      if (c.bf16 && !path->gemm_kn_bf16) continue;
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
                                          .kv_stride = kvw,
                                          .out_stride = qw,
                                          .scale = 0.125f,
                                          .causal = c.causal,
                                          .q_pos0 = c.nk - c.nq};
      std::vector<double> ms;
      for (int r = 0; r < repeat + 1; ++r) {
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
  return 0;
}
