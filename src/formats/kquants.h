// GGUF's K-quant, legacy and IQ4 block types (llama.cpp's byte layouts, from ggml's public
// ggml-common.h), decoded one block at a time into one common form, so that every kernel sees
// the same thing:
//
//   w[i] = scale[i / 16] · q[i] + min[i / 16]        q: int8, scale and min: float
//
// for the block's 32 (Q4_1, Q5_0, Q5_1, IQ4_NL) or 256 values (Q2_K ... Q6_K, IQ4_XS). The scales
// and mins are products the layout defines (d · sub-block scale, −dmin · sub-block min), exact in
// float for every type; w is then one float rounding of scale·q + min, as ggml dequantises.
//
// Layouts (d, dmin, m: f16; "nibbles of 32": byte j holds value j low, value j + 16 high):
//   Q4_1  d, m, 16 bytes: nibbles of 32;                 w = d·q + m
//   Q5_0  d, qh (u32), 16 bytes: nibbles + bit j of qh;  w = d·(q − 16)
//   Q5_1  d, m, qh, 16 bytes;                            w = d·q + m
//   IQ4_NL d, 16 bytes: nibbles index kIq4nlValues;      w = d·table[q]
//   Q4_K  d, dmin, 12 bytes of 8 6-bit scales and mins, 128 bytes: value 64c + j (j < 32) is the
//         low nibble of byte 32c + j, 64c + 32 + j its high nibble; w = d·sc·q − dmin·m per 32
//   Q5_K  as Q4_K plus 32 bytes qh between scales and nibbles: bit 2c (low) / 2c+1 (high) of
//         qh[j] is the fifth bit
//   Q6_K  ql[128], qh[64], int8 scales[16], d; per half h of 128 values, value 32k + j
//         (k < 4) is nibble (k&1 ? ql[64h+32+j] : ql[64h+j], high for k ≥ 2) | bits 2k..2k+1 of
//         qh[32h+j] << 4, minus 32; w = d·scales[value / 16]·q
//   Q3_K  hmask[32], qs[64], 12 bytes of 16 6-bit scales, d; per half h, value 128h + 32k + j
//         is bits 2k..2k+1 of qs[32h+j], minus 4 where bit 4h+k of hmask[j] is clear;
//         w = d·(scale − 32)·q
//   Q2_K  scales[16] (low nibble scale, high nibble min), qs[64], d, dmin; value 128h + 32k + j
//         is bits 2k..2k+1 of qs[32h+j]; w = d·sc·q − dmin·m per 16
//   IQ4_XS d, scales_h (u16), scales_l[4], qs[128]; sub-block s of 32: 6-bit scale
//         (nibble s of scales_l) | (bits 2s..2s+1 of scales_h) << 4, minus 32; nibbles of 32 at
//         qs + 16s index kIq4nlValues
#pragma once

#include <cstdint>

#include "formats/tensor.h"

namespace smolvlm {

// The 16 values IQ4_NL and IQ4_XS index (ggml's kvalues_iq4nl).
extern const int8_t kIq4nlValues[16];

// True for the types decoded here (not Q8_0 / Q4_0, which have their own kernels).
bool is_kquant_type(DType t);

// True for the types whose scale and min change only every 32 values (Q4_1, Q5_0, Q5_1, IQ4_NL,
// Q4_K, Q5_K, IQ4_XS): the two 16-value halves of each 32 share them in the common form.
bool kquant_scales_per_32(DType t);
// The codes of t in the common form: the least, and one more than the largest stored unsigned,
// u = q − least: 4 (Q2_K), 8 (Q3_K), 16 (Q4_1, Q4_K), 32 (Q5_0, Q5_1, Q5_K), 64 (Q6_K); 0 for
// the IQ4 types, whose table values span −127..113.
struct KquantCodes {
  int least;
  int unsigned_bound;
};
KquantCodes kquant_codes(DType t);
// True for the types with a min (an offset) per scale: Q4_1, Q5_1, Q2_K, Q4_K, Q5_K. The others'
// mins are all 0.
bool kquant_has_min(DType t);

// The common form of one block of t: q[block_elems(t)], scale[n/16], min[n/16].
struct UnpackedBlock {
  int8_t q[256];
  float scale[16];
  float min[16];
};
// Plain (reference) decoding of one block of a kquant type.
void unpack_block(DType t, const uint8_t* block, UnpackedBlock& out);
// The scale and min bytes of Q4_K / Q5_K: sub-block j's (6-bit scale, 6-bit min).
void kquant_scale_min(const uint8_t* scales12, int j, int& scale, int& min);
// The 16 scales of Q3_K, each still offset by 32 (0..63).
void q3k_scales(const uint8_t* scales12, int8_t* out16);

}  // namespace smolvlm
