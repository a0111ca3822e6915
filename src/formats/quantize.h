// Weight quantisation to the GGUF block types, with llama.cpp's rounding so converted files
// are byte-identical to its own.
#pragma once

#include <cstdint>
#include <vector>

namespace smolvlm {

// Q8_0: per block of 32, d = max|x| / 127 (stored as f16), q = round-half-away(x / d) using the
// float32 d (not the rounded f16). `cols` must be a multiple of 32.
void quantize_row_q8_0(const float* x, int cols, uint8_t* out);
std::vector<uint8_t> quantize_q8_0(const std::vector<float>& x, int rows, int cols);

// Q4_0: per block of 32, m = the value of largest magnitude (with its sign), d = m / −8
// (stored as f16), q = min(15, trunc(x / d + 8.5)) — llama.cpp's reference rounding.
void quantize_row_q4_0(const float* x, int cols, uint8_t* out);
std::vector<uint8_t> quantize_q4_0(const std::vector<float>& x, int rows, int cols);

}  // namespace smolvlm
