#include "formats/kquants.h"

#include <smolvlm/error.h>

#include <cstring>
#include <string>

namespace smolvlm {

const int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                 1,    13,   25,  38,  53,  69,  89,  113};

bool is_kquant_type(DType t) { return is_block_type(t) && t != DType::Q8_0 && t != DType::Q4_0; }

bool kquant_scales_per_32(DType t) {
  switch (t) {
    case DType::Q4_1:
    case DType::Q5_0:
    case DType::Q5_1:
    case DType::IQ4_NL:
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::IQ4_XS:
      return true;
    default:
      return false;
  }
}

bool kquant_has_min(DType t) {
  return t == DType::Q4_1 || t == DType::Q5_1 || t == DType::Q2_K || t == DType::Q4_K ||
         t == DType::Q5_K;
}

KquantCodes kquant_codes(DType t) {
  switch (t) {
    case DType::Q2_K:
      return {0, 4};
    case DType::Q3_K:
      return {-4, 8};
    case DType::Q4_1:
    case DType::Q4_K:
      return {0, 16};
    case DType::Q5_0:
      return {-16, 32};
    case DType::Q5_1:
    case DType::Q5_K:
      return {0, 32};
    case DType::Q6_K:
      return {-32, 64};
    default:  // IQ4_NL, IQ4_XS
      return {-127, 0};
  }
}

namespace {

float half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

// Scale and min of a 32-value sub-block s, written to both of its 16-value halves.
void set32(UnpackedBlock& out, int s, float scale, float min) {
  out.scale[2 * s] = out.scale[2 * s + 1] = scale;
  out.min[2 * s] = out.min[2 * s + 1] = min;
}

// "Nibbles of 32": byte j holds value j (low) and value j + 16 (high).
void nibbles32(const uint8_t* qs, int8_t* q) {
  for (int j = 0; j < 16; ++j) {
    q[j] = static_cast<int8_t>(qs[j] & 0x0F);
    q[j + 16] = static_cast<int8_t>(qs[j] >> 4);
  }
}

}  // namespace

void kquant_scale_min(const uint8_t* s, int j, int& scale, int& min) {
  if (j < 4) {
    scale = s[j] & 63;
    min = s[j + 4] & 63;
  } else {
    scale = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
    min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

void q3k_scales(const uint8_t* s, int8_t* out) {
  for (int j = 0; j < 16; ++j) {
    const int low = j < 8 ? s[j] & 0x0F : s[j - 8] >> 4;
    const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    out[j] = static_cast<int8_t>(low | high << 4);
  }
}

void unpack_block(DType t, const uint8_t* b, UnpackedBlock& out) {
  switch (t) {
    case DType::Q4_1: {
      nibbles32(b + 4, out.q);
      set32(out, 0, half_at(b), half_at(b + 2));
      return;
    }
    case DType::Q5_0:
    case DType::Q5_1: {
      const bool has_min = t == DType::Q5_1;
      const uint8_t* qhp = b + (has_min ? 4 : 2);
      uint32_t qh;
      std::memcpy(&qh, qhp, 4);
      nibbles32(qhp + 4, out.q);
      for (int j = 0; j < 32; ++j) {
        const int v = out.q[j] | static_cast<int>((qh >> j) & 1u) << 4;
        out.q[j] = static_cast<int8_t>(has_min ? v : v - 16);
      }
      set32(out, 0, half_at(b), has_min ? half_at(b + 2) : 0.0f);
      return;
    }
    case DType::IQ4_NL: {
      nibbles32(b + 2, out.q);
      for (int j = 0; j < 32; ++j) out.q[j] = kIq4nlValues[out.q[j]];
      set32(out, 0, half_at(b), 0.0f);
      return;
    }
    case DType::IQ4_XS: {
      const float d = half_at(b);
      uint16_t scales_h;
      std::memcpy(&scales_h, b + 2, 2);
      for (int s = 0; s < 8; ++s) {
        const int ls =
            ((b[4 + s / 2] >> (4 * (s % 2))) & 0x0F) | (((scales_h >> (2 * s)) & 3) << 4);
        nibbles32(b + 8 + 16 * s, out.q + 32 * s);
        for (int j = 0; j < 32; ++j) out.q[32 * s + j] = kIq4nlValues[out.q[32 * s + j]];
        set32(out, s, d * static_cast<float>(ls - 32), 0.0f);
      }
      return;
    }
    case DType::Q4_K:
    case DType::Q5_K: {
      const float d = half_at(b), dmin = half_at(b + 2);
      const uint8_t* scales = b + 4;
      const bool five = t == DType::Q5_K;
      const uint8_t* qh = b + 16;
      const uint8_t* qs = b + (five ? 48 : 16);
      for (int c = 0; c < 4; ++c) {
        for (int j = 0; j < 32; ++j) {
          int lo = qs[32 * c + j] & 0x0F, hi = qs[32 * c + j] >> 4;
          if (five) {
            lo |= ((qh[j] >> (2 * c)) & 1) << 4;
            hi |= ((qh[j] >> (2 * c + 1)) & 1) << 4;
          }
          out.q[64 * c + j] = static_cast<int8_t>(lo);
          out.q[64 * c + 32 + j] = static_cast<int8_t>(hi);
        }
      }
      for (int s = 0; s < 8; ++s) {
        int sc, m;
        kquant_scale_min(scales, s, sc, m);
        set32(out, s, d * static_cast<float>(sc), -(dmin * static_cast<float>(m)));
      }
      return;
    }
    case DType::Q6_K: {
      const uint8_t* ql = b;
      const uint8_t* qh = b + 128;
      const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
      const float d = half_at(b + 208);
      for (int h = 0; h < 2; ++h) {
        for (int k = 0; k < 4; ++k) {
          for (int j = 0; j < 32; ++j) {
            const uint8_t l = ql[64 * h + 32 * (k & 1) + j];
            const int low = k >= 2 ? l >> 4 : l & 0x0F;
            const int high = (qh[32 * h + j] >> (2 * k)) & 3;
            out.q[128 * h + 32 * k + j] = static_cast<int8_t>((low | high << 4) - 32);
          }
        }
      }
      for (int g = 0; g < 16; ++g) {
        out.scale[g] = d * static_cast<float>(sc[g]);
        out.min[g] = 0.0f;
      }
      return;
    }
    case DType::Q3_K: {
      const uint8_t* hmask = b;
      const uint8_t* qs = b + 32;
      int8_t sc[16];
      q3k_scales(b + 96, sc);
      const float d = half_at(b + 108);
      for (int h = 0; h < 2; ++h) {
        for (int k = 0; k < 4; ++k) {
          for (int j = 0; j < 32; ++j) {
            const int v = (qs[32 * h + j] >> (2 * k)) & 3;
            const bool high = (hmask[j] >> (4 * h + k)) & 1;
            out.q[128 * h + 32 * k + j] = static_cast<int8_t>(high ? v : v - 4);
          }
        }
      }
      for (int g = 0; g < 16; ++g) {
        out.scale[g] = d * static_cast<float>(sc[g] - 32);
        out.min[g] = 0.0f;
      }
      return;
    }
    case DType::Q2_K: {
      const uint8_t* scales = b;
      const uint8_t* qs = b + 16;
      const float d = half_at(b + 80), dmin = half_at(b + 82);
      for (int h = 0; h < 2; ++h) {
        for (int k = 0; k < 4; ++k) {
          for (int j = 0; j < 32; ++j)
            out.q[128 * h + 32 * k + j] = static_cast<int8_t>((qs[32 * h + j] >> (2 * k)) & 3);
        }
      }
      for (int g = 0; g < 16; ++g) {
        out.scale[g] = d * static_cast<float>(scales[g] & 0x0F);
        out.min[g] = -(dmin * static_cast<float>(scales[g] >> 4));
      }
      return;
    }
    default:
      throw Error(std::string("no block decoder for type ") + dtype_name(t));
  }
}

}  // namespace smolvlm
