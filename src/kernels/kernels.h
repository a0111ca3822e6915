// The compute layer. The model code calls only these functions; it never sees SIMD or threads.
// The functions that split work over threads or pick an instruction set take the caller's
// compute context (kernels/compute.h) first.
// Every function has a plain twin in kernels::ref (src/kernels/ref/) that is the truth the
// tests compare the fast versions against.
//
// Layout conventions: activations are row-major [rows, cols] float32; a Linear weight is
// PyTorch's [out, in], so y = x·Wᵀ + b.
#pragma once

#include <cstddef>

#include "formats/tensor.h"
#include "kernels/compute.h"

namespace smolvlm::kernels {

// A weight matrix [rows, cols] in its stored type (F32, F16, BF16, Q8_0 or Q4_0), row-major,
// not owned: it usually points into a mapped model file.
struct Matrix {
  DType type = DType::F32;
  const void* data = nullptr;
  int rows = 0, cols = 0;
  size_t stride = 0;  // bytes from one row to the next; 0 = rows packed back to back
  // Q4_0 and Q4_K: the same weights repacked for decoding, 16 rows side by side
  // (kernels/q4_panels.h, kernels/q4k_panels.h), or null. Paths with a panel kernel decode from
  // them, and prefill reads rows from them, so the file's pages of the matrix are not read again.
  const uint8_t* panels = nullptr;
  size_t row_stride() const { return stride ? stride : row_bytes(type, cols); }
  const uint8_t* row(int r) const {
    return static_cast<const uint8_t*>(data) + static_cast<size_t>(r) * row_stride();
  }
};

inline Matrix f32_matrix(const float* data, int rows, int cols) {
  return {DType::F32, data, rows, cols};
}

// y[n, rows] = x[n, cols] · Wᵀ (+ bias[rows] when bias != nullptr).
// Q8_0 weights run as w8a8: each activation row is quantised to int8 per block of 32 (scale =
// max|x|/127, round to nearest), blocks are dotted in integers, scales applied in float.
// Q4_0 weights run the same way (w4a8), their nibbles widened to int8 a slice at a time.
// The formats/kquants.h types (Q4_K, Q6_K, IQ4_NL, ...) decode (n = 1) the same way, each block
// as int8 values with a scale and min per 16; several rows (prefill) widen slices of W to float.
void matmul(const Compute& cx, const float* x, int n, const Matrix& w, const float* bias, float* y);
// Several products of one input, no bias: targets[i].y = x · targets[i].wᵀ. Decoding (n = 1)
// with quantised weights of one width quantises x once and splits all the rows over the threads
// in one parallel loop (the q, k, v projections: one hand-off to the workers instead of three);
// anything else runs matmul per target.
struct MatmulTarget {
  const Matrix* w;
  float* y;
  const float* bias = nullptr;  // [w.rows] or null
};
void matmul_same_input(const Compute& cx, const float* x, int n, const MatmulTarget* targets,
                       int count);
// out = silu(x · gateᵀ) ⊙ (x · upᵀ), the MLP's first half; up_scratch holds x · upᵀ (n · up.rows
// floats). Decoding with quantised weights runs both products and the silu in one parallel loop,
// each worker on the same rows of both; otherwise matmul, matmul, silu_mul.
void matmul_gate_up_silu(const Compute& cx, const float* x, int n, const Matrix& gate,
                         const Matrix& up, float* out, float* up_scratch);
// y = bf16(x) · bf16(W)ᵀ (+ bias), products summed in float32: the arithmetic Hugging Face
// runs SmolVLM2 in (torch_dtype=bfloat16), at twice the multiply rate of float32 where the CPU
// has bf16 dot products. Float weights only. Call only when has_bf16_matmul().
void matmul_bf16(const Compute& cx, const float* x, int n, const Matrix& w, const float* bias,
                 float* y);
// matmul_bf16 of one input into several targets of one width (the vision q, k, v): x rounded
// once, all the targets' rows in one parallel loop.
void matmul_bf16_same_input(const Compute& cx, const float* x, int n, const MatmulTarget* targets,
                            int count);
bool has_bf16_matmul(const Compute& cx);  // the context's path has bf16 arithmetic
// Row r of W as float32 (embedding lookups).
void dequantize_row(const Matrix& w, int r, float* out);

// LayerNorm over the last dim d (biased variance), per row.
void layer_norm(const Compute& cx, const float* x, int n, int d, const float* weight,
                const float* bias, float eps, float* y);
// RMSNorm: x / sqrt(mean(x²) + eps) · weight.
void rms_norm(const Compute& cx, const float* x, int n, int d, const float* weight, float eps,
              float* y);

void gelu_tanh_inplace(const Compute& cx, float* x, size_t n);
// out[i] = silu(gate[i]) · up[i]
void silu_mul(const Compute& cx, const float* gate, const float* up, float* out, size_t n);
void add_inplace(float* x, const float* y, size_t n);
// The same split over the threads, for a vision tile's residuals (786k values).
void add_inplace(const Compute& cx, float* x, const float* y, size_t n);

// Rotate-half RoPE (ref::rope, angle = pos·inv_freq[i]) in two steps, so that a token's cos and
// sin are computed once for all the heads of all the layers: rope_angles fills cos[i], sin[i]
// of pos·inv_freq[i] for i < head_dim/2, rope_rotate applies them to `heads` vectors of
// head_dim at x + h·head_dim.
void rope_angles(int pos, const float* inv_freq, int head_dim, float* cos, float* sin);
void rope_rotate(float* x, int heads, int head_dim, const float* cos, const float* sin);

// Scaled dot-product attention, query heads side by side in each row.
// q: [nq, heads·hd] with row stride q_stride; out: [nq, heads·hd] with row stride out_stride;
// k, v: key j of KV head h at j·kv_stride + h·kv_head_stride floats (kv_head_stride 0: head_dim,
// the heads side by side in each row, as the vision encoder's; the KV cache keeps each head's
// keys together instead, kv_stride = head_dim). Query head h reads KV head h / (heads/kv_heads).
// causal: query row i sits at absolute position q_pos0 + i and sees keys 0..q_pos0 + i.
// key_mask (optional, nk entries): 0 = padded key, excluded.
struct AttentionShape {
  int nq, nk, heads, kv_heads, head_dim;
  int q_stride, kv_stride, out_stride;
  float scale;
  bool causal;
  int q_pos0;
  int kv_head_stride = 0;
};
// Floats from the start of k (or v) to KV head kvh's first key.
inline size_t kv_head_offset(const AttentionShape& s, int kvh) {
  return static_cast<size_t>(kvh) *
         static_cast<size_t>(s.kv_head_stride ? s.kv_head_stride : s.head_dim);
}
// bf16_products: Q·Kᵀ and P·V with bf16 inputs and float32 sums (the vision encoder in bf16
// mode), where the active path has bf16 arithmetic and the rows are many; float32 otherwise.
void attention(const Compute& cx, const AttentionShape& s, const float* q, const float* k,
               const float* v, const unsigned char* key_mask, float* out,
               bool bf16_products = false);

namespace ref {
void matmul(const float* x, int n, const Matrix& w, const float* bias, float* y);
// x and W rounded to bf16 (nearest even), products summed in float32.
void matmul_bf16(const float* x, int n, const Matrix& w, const float* bias, float* y);
void dequantize_row(const Matrix& w, int r, float* out);
// One Q4_0 block as its 32 signed values (nibble − 8); returns the block scale.
float q4_block_to_int8(const uint8_t* block, int8_t* q);
// Row r of a kquant-typed W (formats/kquants.h) dotted with a quantised activation row: int8
// values xq[cols] with one scale xd per 32; integer sums per 16 values, then
// Σ scale·dx·Σq·xq + min·dx·Σxq in block order (what the decode kernels compute). W's blocks
// are read from its Q4_K decode panels where it has them (unpack_stored_block).
float kquant_row_dot(const Matrix& w, int r, const float* xd, const int8_t* xq);
void layer_norm(const float* x, int n, int d, const float* weight, const float* bias, float eps,
                float* y);
void rms_norm(const float* x, int n, int d, const float* weight, float eps, float* y);
void gelu_tanh_inplace(float* x, size_t n);
void silu_mul(const float* gate, const float* up, float* out, size_t n);
void rope(float* x, int heads, int head_dim, int pos, const float* inv_freq);
void attention(const AttentionShape& s, const float* q, const float* k, const float* v,
               const unsigned char* key_mask, float* out);
// What attention(..., bf16_products = true) computes: q·scale, K, the softmax numerators and V
// rounded to bf16 before their products, the sums and the normalisation in float32.
void attention_bf16(const AttentionShape& s, const float* q, const float* k, const float* v,
                    float* out);
}  // namespace ref

}  // namespace smolvlm::kernels
