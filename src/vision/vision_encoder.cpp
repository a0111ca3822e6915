#include "vision/vision_encoder.h"

#include <smolvlm/error.h>

#include <cmath>
#include <cstring>

#include "kernels/kernels.h"
#include "kernels/op_profile.h"

namespace smolvlm {

namespace k = kernels;

namespace {
// The matrices the bf16 matmul takes (float types; quantised ones keep their integer products).
bool float_weights(const Linear& l) {
  return l.w.type == DType::F32 || l.w.type == DType::F16 || l.w.type == DType::BF16;
}
const float* bias_of(const Linear& l) { return l.b.empty() ? nullptr : l.b.data(); }

// Auto: a 16-bit file already rounds every weight to ~3 significant digits, so rounding the
// activations to bf16 too costs little more (README, "Vision precision"); float32 files keep
// float32 arithmetic, Q8_0 files their integer products.
VisionPrecision resolve(VisionPrecision asked, const VisionWeights& w) {
  if (asked != VisionPrecision::Auto) return asked;
  if (w.layers.empty()) return VisionPrecision::F32;
  const DType t = w.layers.front().fc1.w.type;
  return t == DType::F16 || t == DType::BF16 ? VisionPrecision::Bf16 : VisionPrecision::F32;
}

double matmul_flops(const Linear& l, double rows) { return 2.0 * rows * l.w.rows * l.w.cols; }

// Scores and the weighted sum of V, bidirectional: two n × n × hidden products.
double attention_flops(double n, double hidden) { return 4.0 * n * n * hidden; }
}  // namespace

VisionEncoder::VisionEncoder(const ModelConfig& cfg, const VisionWeights& w,
                             VisionPrecision precision)
    : cfg_(cfg), w_(w), precision_(resolve(precision, w)) {}

double VisionEncoder::flops_per_tile() const {
  const VisionConfig& vc = cfg_.vision;
  const double patches = vc.num_patches();
  double f = matmul_flops(w_.patch, patches);
  for (const VisionLayerWeights& l : w_.layers) {
    for (const Linear* p : {&l.q, &l.k, &l.v, &l.o, &l.fc1, &l.fc2}) f += matmul_flops(*p, patches);
    f += attention_flops(patches, vc.hidden);
  }
  const double scale = cfg_.scale_factor;
  return f + matmul_flops(w_.connector, patches / (scale * scale));
}

bool VisionEncoder::uses_bf16(const k::Compute& cx) const {
  return precision_ == VisionPrecision::Bf16 && k::has_bf16_matmul(cx);
}

const char* VisionEncoder::arithmetic(const k::Compute& cx) const {
  if (!w_.layers.empty() && !float_weights(w_.layers.front().fc1)) return "int8";
  return uses_bf16(cx) ? "bf16" : "f32";
}

void VisionEncoder::linear(const k::Compute& cx, const float* x, int n, const Linear& l, float* y,
                           bool bf16) const {
  if (bf16 && float_weights(l)) {
    k::matmul_bf16(cx, x, n, l.w, bias_of(l), y);
  } else {
    k::matmul(cx, x, n, l.w, bias_of(l), y);
  }
}

void VisionEncoder::linear_qkv(const k::Compute& cx, const float* x, int n,
                               const VisionLayerWeights& l, float* q, float* k, float* v,
                               bool bf16) const {
  if (!bf16 || !float_weights(l.q) || !float_weights(l.k) || !float_weights(l.v)) {
    linear(cx, x, n, l.q, q, bf16);
    linear(cx, x, n, l.k, k, bf16);
    linear(cx, x, n, l.v, v, bf16);
    return;
  }
  const k::MatmulTarget qkv[] = {
      {&l.q.w, q, bias_of(l.q)}, {&l.k.w, k, bias_of(l.k)}, {&l.v.w, v, bias_of(l.v)}};
  k::matmul_bf16_same_input(cx, x, n, qkv, 3);
}

std::vector<float> VisionEncoder::encode_tile(const k::Compute& cx, const float* pixels) const {
  TileScratch s;
  encode_tile(cx, pixels, s);
  return std::move(s.h);
}

void VisionEncoder::encode_tile(const k::Compute& cx, const float* pixels, TileScratch& s) const {
  const VisionConfig& vc = cfg_.vision;
  const bool bf16 = uses_bf16(cx);
  const int D = vc.hidden, G = vc.patches_per_side(), N = vc.num_patches(), P = vc.patch,
            S = vc.image_size, C = vc.channels, F = vc.intermediate;

  // §3.1 Patch embedding as a matmul: row p = patch (py, px), features ordered (c, ky, kx).
  std::vector<float>& patches = s.patches;
  patches.resize(static_cast<size_t>(N) * C * P * P);
  for (int py = 0; py < G; ++py) {
    for (int px = 0; px < G; ++px) {
      float* dst = patches.data() + static_cast<size_t>(py * G + px) * C * P * P;
      for (int c = 0; c < C; ++c) {
        for (int ky = 0; ky < P; ++ky) {
          const float* src = pixels + (static_cast<size_t>(c) * S + py * P + ky) * S + px * P;
          std::memcpy(dst + (c * P + ky) * P, src, sizeof(float) * P);
        }
      }
    }
  }
  std::vector<float>& x = s.x;
  x.resize(static_cast<size_t>(N) * D);
  k::OpZones zone(cx);
  zone.enter("patch embedding", 0, matmul_flops(w_.patch, N));
  linear(cx, patches.data(), N, w_.patch, x.data(), bf16);
  // §3.3 Full tiles only (the processor never pads), so position id p is just p.
  k::add_inplace(cx, x.data(), w_.position.data(), x.size());

  // §3.4 Pre-LN encoder layers with bidirectional attention.
  std::vector<float>&h = s.h, &q = s.q, &kk = s.k, &v = s.v, &ctx = s.ctx, &mlp = s.mlp;
  for (std::vector<float>* b : {&h, &q, &kk, &v, &ctx}) b->resize(x.size());
  mlp.resize(static_cast<size_t>(N) * F);
  const k::AttentionShape shape{.nq = N,
                                .nk = N,
                                .heads = vc.heads,
                                .kv_heads = vc.heads,
                                .head_dim = vc.head_dim(),
                                .q_stride = D,
                                .kv_stride = D,
                                .out_stride = D,
                                .scale = 1.0f / std::sqrt(static_cast<float>(vc.head_dim())),
                                .causal = false,
                                .q_pos0 = 0};
  auto norm = [&](const Norm& ln) {
    zone.enter("layer norms");
    k::layer_norm(cx, x.data(), N, D, ln.w.data(), ln.b.data(), vc.layer_norm_eps, h.data());
  };
  auto residual = [&] {
    zone.enter("residual adds");
    k::add_inplace(cx, x.data(), h.data(), x.size());
  };
  for (const VisionLayerWeights& l : w_.layers) {
    norm(l.ln1);
    zone.enter("q, k, v matmuls", 0,
               matmul_flops(l.q, N) + matmul_flops(l.k, N) + matmul_flops(l.v, N));
    linear_qkv(cx, h.data(), N, l, q.data(), kk.data(), v.data(), bf16);
    zone.enter("attention", 0, attention_flops(N, D));
    k::attention(cx, shape, q.data(), kk.data(), v.data(), nullptr, ctx.data(), bf16);
    zone.enter("o matmul", 0, matmul_flops(l.o, N));
    linear(cx, ctx.data(), N, l.o, h.data(), bf16);
    residual();

    norm(l.ln2);
    zone.enter("fc1 matmul", 0, matmul_flops(l.fc1, N));
    linear(cx, h.data(), N, l.fc1, mlp.data(), bf16);
    zone.enter("gelu");
    k::gelu_tanh_inplace(cx, mlp.data(), mlp.size());
    zone.enter("fc2 matmul", 0, matmul_flops(l.fc2, N));
    linear(cx, mlp.data(), N, l.fc2, h.data(), bf16);
    residual();
  }
  // §3.5
  norm(w_.post_ln);
}

namespace {
void pixel_shuffle_into(const float* x, int grid, int dim, int scale, float* out) {
  // §4: output token (R, Cc) concatenates the s×s block of patches, row offset major, then
  // column offset, then channel.
  const int out_side = grid / scale;
  float* dst = out;
  for (int R = 0; R < out_side; ++R) {
    for (int Cc = 0; Cc < out_side; ++Cc) {
      for (int di = 0; di < scale; ++di) {
        for (int dj = 0; dj < scale; ++dj) {
          const size_t patch = static_cast<size_t>(scale * R + di) * grid + (scale * Cc + dj);
          std::memcpy(dst, x + patch * dim, sizeof(float) * dim);
          dst += dim;
        }
      }
    }
  }
}
}  // namespace

std::vector<float> VisionEncoder::connect(const k::Compute& cx,
                                          const std::vector<float>& hidden) const {
  TileScratch s;
  std::vector<float> out(static_cast<size_t>(cfg_.image_seq_len) * cfg_.text.hidden);
  connect(cx, hidden.data(), s, out.data());
  return out;
}

void VisionEncoder::connect(const k::Compute& cx, const float* hidden, TileScratch& s,
                            float* out) const {
  const int scale = cfg_.scale_factor, grid = cfg_.vision.patches_per_side(),
            dim = cfg_.vision.hidden;
  s.shuffled.resize(static_cast<size_t>(grid) * grid * dim);
  pixel_shuffle_into(hidden, grid, dim, scale, s.shuffled.data());
  const k::OpTimer t(cx, "connector matmul", 0, matmul_flops(w_.connector, cfg_.image_seq_len));
  linear(cx, s.shuffled.data(), cfg_.image_seq_len, w_.connector, out, uses_bf16(cx));
}

std::vector<float> VisionEncoder::image_features(const k::Compute& cx, const float* pixels,
                                                 int n_tiles, TileScratch* scratch) const {
  const size_t tile_floats =
      static_cast<size_t>(cfg_.vision.channels) * cfg_.vision.image_size * cfg_.vision.image_size;
  const size_t tile_out = static_cast<size_t>(cfg_.image_seq_len) * cfg_.text.hidden;
  std::vector<float> out(tile_out * n_tiles);
  TileScratch own;
  TileScratch& s = scratch ? *scratch : own;
  for (int t = 0; t < n_tiles; ++t) {
    encode_tile(cx, pixels + tile_floats * t, s);
    connect(cx, s.h.data(), s, out.data() + tile_out * t);
  }
  return out;
}

std::vector<float> VisionEncoder::image_features(const k::Compute& cx,
                                                 const PictureTiles& tiles) const {
  const size_t tile_out = static_cast<size_t>(cfg_.image_seq_len) * cfg_.text.hidden;
  if (tiles.n_tiles <= 0) return {};
  if (tiles.tile_size != cfg_.vision.image_size)
    throw Error("the picture's tiles are not the vision encoder's size");
  std::vector<float> out(tile_out * tiles.n_tiles);
  std::vector<float> pixels(static_cast<size_t>(3) * tiles.tile_size * tiles.tile_size);
  TileScratch s;
  for (int t = 0; t < tiles.n_tiles; ++t) {
    tiles.pixel_values(t, pixels.data());
    encode_tile(cx, pixels.data(), s);
    connect(cx, s.h.data(), s, out.data() + tile_out * t);
  }
  return out;
}

}  // namespace smolvlm
