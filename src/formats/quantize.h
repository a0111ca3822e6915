// Weight quantisation to the GGUF block types, with llama.cpp's rounding so converted files
// are byte-identical to its own.
#pragma once

#include <cstdint>
#include <vector>

#include "formats/tensor.h"

namespace smolvlm {

// Q8_0: per block of 32, d = max|x| / 127 (stored as f16), q = round-half-away(x / d) using the
// float32 d (not the rounded f16). `cols` must be a multiple of 32.
void quantize_row_q8_0(const float* x, int cols, uint8_t* out);
std::vector<uint8_t> quantize_q8_0(const std::vector<float>& x, int rows, int cols);

// Q4_0: per block of 32, m = the value of largest magnitude (with its sign), d = m / −8
// (stored as f16), q = min(15, trunc(x / d + 8.5)) — llama.cpp's reference rounding.
void quantize_row_q4_0(const float* x, int cols, uint8_t* out);
std::vector<uint8_t> quantize_q4_0(const std::vector<float>& x, int rows, int cols);

// Q4_K and Q6_K (formats/kquants.h), a plain one-pass rounding (not llama.cpp's iterative
// search, so not byte-identical to llama-quantize's, but the same layout). Q4_K: per 32, scale =
// (max − min(0, min)) / 15 and min = −min(0, min), both as 6-bit multiples of the block's f16 d
// and dmin (the largest / 63); q = round((x + min) / scale). Q6_K: per 16, scale = the value of
// largest magnitude / −32, as int8 multiples of d = largest |scale| / 127; q = round(x / scale)
// in [−32, 31]. `cols` must be a multiple of 256.
// Q5_K as Q4_K with 31 levels. Q3_K: per 16, scale = the value of largest magnitude / −4, as
// 6-bit signed multiples of d = largest |scale| / 31; q = round(x / scale) in [−4, 3]. Q2_K: per
// 16, scale = (max − min(0, min)) / 3 and min as Q4_K's, as 4-bit multiples of d and dmin (the
// largest / 15); q in [0, 3].
void quantize_row_q4_k(const float* x, int cols, uint8_t* out);
void quantize_row_q5_k(const float* x, int cols, uint8_t* out);
void quantize_row_q6_k(const float* x, int cols, uint8_t* out);
void quantize_row_q3_k(const float* x, int cols, uint8_t* out);
void quantize_row_q2_k(const float* x, int cols, uint8_t* out);
// Rows of Q2_K, Q3_K, Q4_K, Q5_K or Q6_K.
std::vector<uint8_t> quantize_rows(DType t, const std::vector<float>& x, int rows, int cols);

}  // namespace smolvlm
