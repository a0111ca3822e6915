// A typed, shaped, non-owning view of tensor bytes inside a mapped model file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace smolvlm {

enum class DType {
  F32,
  F16,
  BF16,
  I32,
  I64,
  U8,
  I8,
  F64,
  Q8_0,
  Q4_0,
  // GGUF's other block types (llama.cpp's layouts, formats/kquants.h), read and computed in place.
  Q4_1,
  Q5_0,
  Q5_1,
  Q2_K,
  Q3_K,
  Q4_K,
  Q5_K,
  Q6_K,
  IQ4_NL,
  IQ4_XS,
};

// Q8_0 (llama.cpp's layout): blocks of 32 weights, an f16 scale then 32 int8 values.
constexpr int kQ8BlockSize = 32;
constexpr size_t kQ8BlockBytes = 2 + kQ8BlockSize;
// Q4_0 (llama.cpp's layout): blocks of 32, an f16 scale then 16 bytes; byte j holds value j in
// its low nibble and value j+16 in its high nibble; w = (nibble − 8) · d.
constexpr size_t kQ4BlockBytes = 2 + kQ8BlockSize / 2;

const char* dtype_name(DType t);
size_t dtype_size(DType t);  // bytes per element; 0 for block types
// Block types: values per block (32 or 256) and bytes per block; 0 for element types.
int block_elems(DType t);
size_t block_bytes(DType t);
bool is_block_type(DType t);  // Q8_0, Q4_0 and the formats/kquants.h types
// Bytes of one row of `cols` elements (block types need cols % block size == 0).
size_t row_bytes(DType t, int64_t cols);

struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t nbytes = 0;

  int64_t numel() const;
  std::string shape_str() const;  // "[576, 12288]"
};

// Widens any float tensor to float32 (BF16/F16 exactly); throws for non-float dtypes.
std::vector<float> to_f32(const TensorView& t);
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);  // round to nearest even
float bf16_to_f32(uint16_t b);
uint16_t f32_to_bf16(float f);  // round to nearest even

}  // namespace smolvlm
