// Inside the kernel layer: one "path" is a set of inner kernels built for one instruction set
// (generic C++, AVX2, AVX-512, NEON, ...). kernels.cpp threads the work and calls the active
// path; dispatch.cpp picks the path from the CPU at start-up (SMOLVLM_KERNELS overrides).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/workspace.h"

namespace smolvlm::kernels {

// One block of 32 activations quantised to int8 at run time (w8a8): x ≈ d · q.
// The scale is kept in float32 (not f16 as in llama.cpp): free accuracy, same integer work.
struct ActBlockQ8 {
  float d;
  int8_t q[kQ8BlockSize];
};

// The products below that need temporaries (packed panels, prepared activations) take them from
// the `scratch` they are given: the calling participant's own (Workspace::Participant::path),
// never a buffer of their own.
//
// Two kinds of entry. *Filled* entries are never null in a path from available_paths(): where a
// path's table leaves one out, dispatch puts the generic path's there (one rule, in one place,
// instead of a null test at each call). *Capabilities* may be null, and null says the path has
// no such kernel: each says what the kernels do then (usually a different, faster-here route than
// the generic twin would be).
struct KernelPath {
  const char* name;
  // y[r·ldy + o] = x[r] · W[o] (+ bias[o]) for every row r < n and o in [o_begin, o_end):
  // float weights (F32 / F16 / BF16), float activations.
  void (*gemm_float)(const float* x, int n, const Matrix& w, int o_begin, int o_end,
                     const float* bias, float* y, int ldy, Scratch& scratch);
  // Q8_0 weights against activations already quantised per row (cols/32 blocks a row).
  void (*gemm_q8)(const ActBlockQ8* xq, int n, const Matrix& w, int o_begin, int o_end,
                  const float* bias, float* y, int ldy, Scratch& scratch);
  // Capability: Q4_0 weights against one quantised activation row (decode), rows [o_begin,
  // o_end) of y (null widens the nibbles to Q8_0 blocks and runs gemm_q8).
  void (*gemv_q4)(const ActBlockQ8* xq, const Matrix& w, int o_begin, int o_end, const float* bias,
                  float* y, Scratch& scratch);
  // Quantises `cols` floats (a multiple of 32) into cols/32 blocks, round to nearest.
  void (*quantize_row_q8)(const float* x, int cols, ActBlockQ8* out);
  // y += a · x
  void (*axpy)(float a, const float* x, float* y, int n);
  // Filled: element-wise transcendental steps.
  // x[i] = exp(x[i] − shift), returns Σ x[i] (softmax numerators).
  float (*exp_shift_sum)(float* x, int n, float shift);
  void (*gelu_tanh)(float* x, size_t n);
  void (*silu_mul)(const float* gate, const float* up, float* out, size_t n);
  // Filled: max of x[0..n). n ≥ 1.
  float (*row_max)(const float* x, int n);
  // Capability: out[0..d) = Σ_j w[j] · rows[j·stride + 0..d) for j < n: attention's weighted
  // sum of V rows for one query (null: one axpy per row).
  void (*weighted_rows)(const float* w, int n, const float* rows, size_t stride, int d, float* out);
  // y[r·ldy + o] = Σ_k x[r·ldx + k] · b[k·ldb + o] for r < n, o < N: B stored K-major, as
  // attention's V rows are (capability: null makes attention transpose V for gemm_float).
  void (*gemm_kn)(const float* x, int n, int ldx, int K, const float* b, size_t ldb, int N,
                  float* y, int ldy, Scratch& scratch);
  // Capability: bf16 arithmetic (null where the CPU has no bf16 dot products). to_bf16 rounds to
  // nearest even; gemm_bf16 is gemm_float with x already bf16 (row r at xb + r·ldx, K padded
  // to even with zeros) and W rounded to bf16, products summed in float32.
  void (*to_bf16)(const float* x, size_t n, uint16_t* out);
  void (*gemm_bf16)(const uint16_t* xb, int n, int ldx, const Matrix& w, int o_begin, int o_end,
                    const float* bias, float* y, int ldy, Scratch& scratch);
  // A matrix packed once into the path's bf16 panels for many products (attention's K and V per
  // KV head), then y = x · B from the panels: B = Wᵀ from W's rows (pack_bf16_rows) or B [K × N]
  // K-major, ldb apart (pack_bf16_kn). The panels hold bf16_panels_size(K, N) values; the
  // product uses B's first K ≤ packed_k rows (a causal block's visible keys). Optional with the
  // bf16 entries above (null: no bf16 attention).
  size_t (*bf16_panels_size)(int K, int N);
  void (*pack_bf16_rows)(const Matrix& w, uint32_t* panels);
  void (*pack_bf16_kn)(const float* b, size_t ldb, int K, int N, uint32_t* panels);
  void (*gemm_bf16_panels)(const uint16_t* xb, int n, int ldx, const uint32_t* panels, int packed_k,
                           int K, int N, float* y, int ldy, Scratch& scratch);
  // scores[r·lds + j] = Σ_d q[r·hd + d] · k[j·stride + d] for r < m, j < n: a decode step's
  // query·key products (m query heads on one KV head's n keys, read in place). The generic
  // path's is the plain twin; a capability elsewhere (null uses gemm_float).
  void (*dot_rows)(const float* q, int m, int hd, const float* k, size_t stride, int n,
                   float* scores, int lds);
  // Filled: LayerNorm / RMSNorm of n rows of d values, as kernels::ref's (which sums in double;
  // the generic path's are ref's).
  void (*layer_norm)(const float* x, int n, int d, const float* weight, const float* bias,
                     float eps, float* y);
  void (*rms_norm)(const float* x, int n, int d, const float* weight, float eps, float* y);
  // gemv_q4 from w.panels (kernels/q4_panels.h); o_begin a multiple of 16. The generic
  // path's is the plain twin; a capability elsewhere (null: the file's rows, gemv_q4).
  void (*gemv_q4_panels)(const ActBlockQ8* xq, const Matrix& w, int o_begin, int o_end,
                         const float* bias, float* y, Scratch& scratch);
  // gemv_kquant for Q4_K from w.panels (kernels/q4k_panels.h); o_begin a multiple of 16. The
  // generic path's is its gemv_kquant, the plain twin (it reads the panels through
  // unpack_stored_block); a capability elsewhere (null: the file's rows, gemv_kquant).
  void (*gemv_q4k_panels)(const ActBlockQ8* xq, const Matrix& w, int o_begin, int o_end,
                          const float* bias, float* y, Scratch& scratch);
  // Filled: the formats/kquants.h types (Q4_K, Q6_K, IQ4_NL, ...) against one quantised
  // activation row (decode), rows [o_begin, o_end) of y, as ref::kquant_row_dot. The generic
  // path's is the plain twin.
  void (*gemv_kquant)(const ActBlockQ8* xq, const Matrix& w, int o_begin, int o_end,
                      const float* bias, float* y, Scratch& scratch);
  // Capability: the same types against n quantised activation rows (prefill), rows [o_begin,
  // o_end) of y, ldy apart, as ref::matmul's w·a8 sums (null: each thread widens a slice of
  // rows to float and runs gemm_float, float activations).
  void (*gemm_kquant)(const ActBlockQ8* xq, int n, const Matrix& w, int o_begin, int o_end,
                      const float* bias, float* y, int ldy, Scratch& scratch);
  // Capability: gemm_q8 for one activation row (decode), rows [o_begin, o_end), whose software
  // prefetch runs on into [then, then_end): the bytes the same thread reads next (null: none),
  // so that they are on their way when it gets there (null: gemm_q8 with n = 1).
  void (*gemv_q8)(const ActBlockQ8* xq, const Matrix& w, int o_begin, int o_end, const float* bias,
                  float* y, const uint8_t* then, const uint8_t* then_end);
};

// The paths compiled into this binary that the running CPU supports, best last, with their filled
// entries filled.
std::vector<const KernelPath*> available_paths();
// The names of every path this architecture knows, whether or not compiled in or supported here
// (tests run each that is available and say which they skip).
std::vector<std::string> known_path_names();
// The path of that name; throws smolvlm::Error when it is unknown or the CPU lacks it.
const KernelPath& find_path(const std::string& name);
// $SMOLVLM_KERNELS when set (find_path), else the best available path.
const KernelPath& default_path();

const KernelPath& generic_path();
#if defined(__x86_64__)
const KernelPath* avx2_path();  // nullptr when not compiled in
const KernelPath* avxvnni_path();
const KernelPath* avx512_path();
const KernelPath* avx512vnni_path();
const KernelPath* avx512bf16_path();
#endif
#if defined(__aarch64__)
const KernelPath* neon_path();
const KernelPath* dotprod_path();
const KernelPath* i8mm_path();
#endif

}  // namespace smolvlm::kernels
