// The arithmetic of the vision encoder's matrix products (see LoadOptions::vision_precision).
#pragma once

namespace smolvlm {

//  Auto (default): follows the file — Bf16 when the vision matrices are stored in 16 bits (F16 or
//        BF16: the weights already carry bf16-sized errors), F32 when they are float32 (or Q8_0).
//  F32: float32 throughout; matches transformers' float32 reference (golden tests). Every
//        choice runs float32 on a CPU without bf16 dot products: int8 (a Q8_0 file's w8a8
//        products, kept whatever is asked) is faster there but changes greedy answers on the
//        golden pictures (README, "Vision precision").
//  Bf16: inputs rounded to bf16, sums in float32 — the precision transformers runs SmolVLM2 in
//        with torch_dtype=bfloat16 — about twice as fast where the CPU has bf16 dot products
//        (AVX512_BF16: Zen 4, Sapphire Rapids); float32 elsewhere. Answers can differ from the
//        float32 reference where two tokens are nearly tied.
enum class VisionPrecision { Auto, F32, Bf16 };

}  // namespace smolvlm
