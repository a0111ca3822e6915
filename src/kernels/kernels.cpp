// The kernel entry points: split the work over the thread pool and run the active path's
// inner kernels on each share. Cheap element-wise steps run the reference code directly.
#include "kernels/kernels.h"

#include <smolvlm/error.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "formats/kquants.h"
#include "kernels/kernel_path.h"
#include "kernels/q4k_panels.h"

namespace smolvlm::kernels {

void dequantize_row(const Matrix& w, int r, float* out) { ref::dequantize_row(w, r, out); }

namespace {

// The numbered buffers of the entry points below (kernels/workspace.h). Shared: filled by the
// calling thread, read by every participant of the loops that follow.
enum SharedSlot : int {
  kActQ8 = 0,     // quantised activation rows
  kTargetUnits,   // split_target_rows' first unit per target
  kActBf16,       // activation rows rounded to bf16
  kHeadPartials,  // attention_one_row's per-chunk softmax partials
  kKeyPanels,     // attention: each KV head's K packed
  kValuePanels,   // attention: each KV head's V packed or transposed
};
// A participant's own (Workspace::Participant::op); the path kernel it calls has `path`.
enum OpSlot : int { kWidened = 0, kScores = 0, kQueries, kInvSum, kQueriesBf16, kProbsBf16 };

// Decode (one activation row) on quantised weights: rows [ob, oe) of y = xq · Wᵀ (+ bias), from
// a Q4_0 matrix's panels where it has them and the path a kernel for them. False when the path
// has no single-row kernel for W (Q4_0 without gemv_q4 or panels, float weights).
bool decode_rows_supported(const KernelPath& path, const Matrix& w) {
  return w.type == DType::Q8_0 || is_kquant_type(w.type) ||
         (w.type == DType::Q4_0 && (path.gemv_q4 || (w.panels && path.gemv_q4_panels)));
}
// The bytes of W's rows [ob, oe) as the single-row kernels read them (one range: rows back to
// back), for the prefetch of the piece a thread reads next; empty where W is not Q8_0.
struct ByteRange {
  const uint8_t* begin = nullptr;
  const uint8_t* end = nullptr;
};
ByteRange decode_bytes(const Matrix& w, int ob, int oe) {
  if (w.type != DType::Q8_0 || ob >= oe) return {};
  return {w.row(ob), w.row(oe - 1) + row_bytes(w.type, w.cols)};
}
// `then`: what the calling thread reads after this (decode_bytes), where the kernel takes it.
void decode_rows(const KernelPath& path, const ActBlockQ8* xq, const Matrix& w, int ob, int oe,
                 const float* bias, float* y, Scratch& scratch, ByteRange then = {}) {
  if (w.type == DType::Q8_0 && path.gemv_q8) {
    path.gemv_q8(xq, w, ob, oe, bias, y, then.begin, then.end);
  } else if (w.type == DType::Q8_0) {
    path.gemm_q8(xq, 1, w, ob, oe, bias, y, w.rows, scratch);
  } else if (w.type == DType::Q4_K && w.panels && path.gemv_q4k_panels) {
    path.gemv_q4k_panels(xq, w, ob, oe, bias, y, scratch);
  } else if (is_kquant_type(w.type)) {
    path.gemv_kquant(xq, w, ob, oe, bias, y, scratch);
  } else if (w.panels && path.gemv_q4_panels) {
    path.gemv_q4_panels(xq, w, ob, oe, bias, y, scratch);
  } else {
    path.gemv_q4(xq, w, ob, oe, bias, y, scratch);
  }
}

void matmul_in_turn(const Compute& cx, Workspace& ws, const float* x, int n, const Matrix& w,
                    const float* bias, float* y) {
  const KernelPath& path = cx.path();
  ThreadPool& pool = cx.pool();
  // Threads split the output features, so each streams only its slice of W (decode is bound
  // by reading W); slices are whole multiples of 16 rows for the SIMD paths.
  const size_t units = static_cast<size_t>((w.rows + 15) / 16);
  auto rows_of = [&](size_t b, size_t e) {
    return std::pair<int, int>(static_cast<int>(b * 16),
                               std::min(w.rows, static_cast<int>(e * 16)));
  };
  if (is_kquant_type(w.type) && n > 1 && !path.gemm_kquant) {
    // Prefill: each worker widens a slice of rows to float and runs the float GEMM on it. The
    // slice is a whole number of the widest packed panel (64 columns, AVX-512): a narrower
    // slice would run every panel ragged, half its multiplies on zero padding.
    pool.parallel_for(units, [&](size_t b, size_t e, int p) {
      const auto [ob, oe] = rows_of(b, e);
      constexpr int kSlice = 64;
      Workspace::Participant& mine = ws.participant(p);
      float* widened = mine.op.get<float>(kWidened, static_cast<size_t>(w.cols) * kSlice);
      for (int s0 = ob; s0 < oe; s0 += kSlice) {
        const int rows = std::min(kSlice, oe - s0);
        for (int r = 0; r < rows; ++r)
          ref::dequantize_row(w, s0 + r, widened + static_cast<size_t>(r) * w.cols);
        const Matrix slice = f32_matrix(widened, rows, w.cols);
        path.gemm_float(x, n, slice, 0, rows, bias ? bias + s0 : nullptr, y + s0, w.rows,
                        mine.path);
      }
    });
    return;
  }
  if (w.type == DType::Q8_0 || w.type == DType::Q4_0 || is_kquant_type(w.type)) {
    // w8a8: quantise each activation row once, then integer dot products.
    const size_t blocks = static_cast<size_t>(w.cols / kQ8BlockSize);
    ActBlockQ8* xqp = ws.shared().get<ActBlockQ8>(kActQ8, blocks * static_cast<size_t>(n));
    pool.parallel_for(static_cast<size_t>(n), [&](size_t b, size_t e) {
      for (size_t r = b; r < e; ++r) path.quantize_row_q8(x + r * w.cols, w.cols, xqp + r * blocks);
    });
    if (w.type == DType::Q8_0 && n > 1) {
      pool.parallel_for(units, [&](size_t b, size_t e, int p) {
        const auto [ob, oe] = rows_of(b, e);
        path.gemm_q8(xqp, n, w, ob, oe, bias, y, w.rows, ws.participant(p).path);
      });
      return;
    }
    if (is_kquant_type(w.type) && n > 1) {  // prefill: int8 panels (path.gemm_kquant)
      pool.parallel_for(units, [&](size_t b, size_t e, int p) {
        const auto [ob, oe] = rows_of(b, e);
        path.gemm_kquant(xqp, n, w, ob, oe, bias, y, w.rows, ws.participant(p).path);
      });
      return;
    }
    if (n == 1 && decode_rows_supported(path, w)) {  // decode: nibbles into the integer products
      pool.parallel_for(units, [&](size_t b, size_t e, int p) {
        const auto [ob, oe] = rows_of(b, e);
        decode_rows(path, xqp, w, ob, oe, bias, y, ws.participant(p).path);
      });
      return;
    }
    // Q4_0: each worker widens a slice of rows into Q8_0 blocks (same scales, nibble − 8
    // as int8), then runs the Q8 kernel on it: w4a8 with exactly the reference's integers.
    pool.parallel_for(units, [&](size_t b, size_t e, int p) {
      const auto [ob, oe] = rows_of(b, e);
      constexpr int kSlice = 64;
      Workspace::Participant& mine = ws.participant(p);
      const size_t q8_row = row_bytes(DType::Q8_0, w.cols);
      uint8_t* widened = mine.op.get<uint8_t>(kWidened, q8_row * kSlice);
      for (int s0 = ob; s0 < oe; s0 += kSlice) {
        const int rows = std::min(kSlice, oe - s0);
        for (int r = 0; r < rows; ++r) {
          uint8_t* dst = widened + q8_row * r;
          for (size_t blk = 0; blk < blocks; ++blk) {
            // From the panels where there are some: the file's copy stays unread.
            uint8_t from_panel[kQ4BlockBytes];
            const uint8_t* block = stored_block(w, s0 + r, static_cast<int>(blk), from_panel);
            int8_t q[kQ8BlockSize];
            ref::q4_block_to_int8(block, q);
            std::memcpy(dst + blk * kQ8BlockBytes, block, 2);  // f16 scale
            std::memcpy(dst + blk * kQ8BlockBytes + 2, q, kQ8BlockSize);
          }
        }
        const Matrix slice{DType::Q8_0, widened, rows, w.cols};
        path.gemm_q8(xqp, n, slice, 0, rows, bias ? bias + s0 : nullptr, y + s0, w.rows, mine.path);
      }
    });
    return;
  }
  pool.parallel_for(units, [&](size_t b, size_t e, int p) {
    const auto [ob, oe] = rows_of(b, e);
    path.gemm_float(x, n, w, ob, oe, bias, y, w.rows, ws.participant(p).path);
  });
}

}  // namespace

void matmul(const Compute& cx, const float* x, int n, const Matrix& w, const float* bias,
            float* y) {
  const Compute::Turn turn = cx.take_turn();
  matmul_in_turn(cx, turn.workspace, x, n, w, bias, y);
}

namespace {
const ActBlockQ8* quantize_one_row(const KernelPath& path, Workspace& ws, const float* x,
                                   int cols) {
  ActBlockQ8* xq = ws.shared().get<ActBlockQ8>(kActQ8, static_cast<size_t>(cols / kQ8BlockSize));
  path.quantize_row_q8(x, cols, xq);
  return xq;
}

// The rows of several targets in one parallel loop: units of 16 output rows, target after
// target, so a worker's share may span two or more; fn(i, ob, oe, participant, next) for each
// target's piece, `next` the participant's next piece {target, ob, oe} (target −1: none).
struct TargetPiece {
  int target = -1, ob = 0, oe = 0;
};
template <typename Fn>
void split_target_rows(ThreadPool& pool, Workspace& ws, const MatmulTarget* targets, int count,
                       const Fn& fn) {
  size_t* first_unit = ws.shared().get<size_t>(kTargetUnits, static_cast<size_t>(count) + 1);
  first_unit[0] = 0;
  for (int i = 0; i < count; ++i)
    first_unit[i + 1] = first_unit[i] + static_cast<size_t>((targets[i].w->rows + 15) / 16);
  pool.parallel_for(first_unit[count], [&](size_t b, size_t e, int p) {
    const auto piece = [&](int i) {
      const size_t lo = std::max(b, first_unit[i]), hi = std::min(e, first_unit[i + 1]);
      if (lo >= hi) return TargetPiece{};
      return TargetPiece{i, static_cast<int>((lo - first_unit[i]) * 16),
                         std::min(targets[i].w->rows, static_cast<int>((hi - first_unit[i]) * 16))};
    };
    for (int i = 0; i < count; ++i) {
      const TargetPiece mine = piece(i);
      if (mine.target < 0) continue;
      const TargetPiece next = i + 1 < count ? piece(i + 1) : TargetPiece{};
      fn(i, mine.ob, mine.oe, p, next);
    }
  });
}

}  // namespace

void matmul_same_input(const Compute& cx, const float* x, int n, const MatmulTarget* targets,
                       int count) {
  const KernelPath& path = cx.path();
  const Compute::Turn turn = cx.take_turn();
  Workspace& ws = turn.workspace;
  bool fused = n == 1 && count > 0;
  for (int i = 0; i < count && fused; ++i) {
    fused = decode_rows_supported(path, *targets[i].w) &&
            targets[i].w->cols == targets[0].w->cols && !targets[i].bias;
  }
  if (!fused) {
    for (int i = 0; i < count; ++i)
      matmul_in_turn(cx, ws, x, n, *targets[i].w, targets[i].bias, targets[i].y);
    return;
  }
  const ActBlockQ8* xq = quantize_one_row(path, ws, x, targets[0].w->cols);
  split_target_rows(
      cx.pool(), ws, targets, count, [&](int i, int ob, int oe, int p, const TargetPiece& next) {
        const ByteRange then =
            next.target < 0 ? ByteRange{} : decode_bytes(*targets[next.target].w, next.ob, next.oe);
        decode_rows(path, xq, *targets[i].w, ob, oe, nullptr, targets[i].y, ws.participant(p).path,
                    then);
      });
}

void matmul_gate_up_silu(const Compute& cx, const float* x, int n, const Matrix& gate,
                         const Matrix& up, float* out, float* up_scratch) {
  const KernelPath& path = cx.path();
  const Compute::Turn turn = cx.take_turn();
  Workspace& ws = turn.workspace;
  if (n != 1 || gate.rows != up.rows || gate.cols != up.cols ||
      !decode_rows_supported(path, gate) || !decode_rows_supported(path, up)) {
    matmul_in_turn(cx, ws, x, n, gate, nullptr, out);
    matmul_in_turn(cx, ws, x, n, up, nullptr, up_scratch);
    silu_mul(cx, out, up_scratch, out, static_cast<size_t>(n) * gate.rows);
    return;
  }
  const ActBlockQ8* xq = quantize_one_row(path, ws, x, gate.cols);
  const auto silu = path.silu_mul;
  cx.pool().parallel_for(
      static_cast<size_t>((gate.rows + 15) / 16), [&](size_t b, size_t e, int p) {
        const int ob = static_cast<int>(b * 16), oe = std::min(gate.rows, static_cast<int>(e * 16));
        Scratch& scratch = ws.participant(p).path;
        decode_rows(path, xq, gate, ob, oe, nullptr, out, scratch, decode_bytes(up, ob, oe));
        decode_rows(path, xq, up, ob, oe, nullptr, up_scratch, scratch);
        silu(out + ob, up_scratch + ob, out + ob, static_cast<size_t>(oe - ob));
      });
}

namespace {

// Rows [r_begin, r_end) of x (n floats, ldx apart) rounded to bf16, as rows of bf16_stride(n)
// values (odd lengths padded with a zero: the bf16 kernels take values in pairs).
int bf16_stride(int n) { return (n + 1) & ~1; }
void rows_to_bf16(const KernelPath& path, const float* x, size_t ldx, int n, size_t r_begin,
                  size_t r_end, uint16_t* out) {
  const size_t ld = static_cast<size_t>(bf16_stride(n));
  for (size_t r = r_begin; r < r_end; ++r) {
    path.to_bf16(x + r * ldx, static_cast<size_t>(n), out + r * ld);
    if (ld != static_cast<size_t>(n)) out[r * ld + static_cast<size_t>(n)] = 0;
  }
}

}  // namespace

bool has_bf16_matmul(const Compute& cx) { return cx.path().gemm_bf16 != nullptr; }

void matmul_bf16(const Compute& cx, const float* x, int n, const Matrix& w, const float* bias,
                 float* y) {
  const MatmulTarget target{&w, y, bias};
  matmul_bf16_same_input(cx, x, n, &target, 1);
}

void matmul_bf16_same_input(const Compute& cx, const float* x, int n, const MatmulTarget* targets,
                            int count) {
  const KernelPath& path = cx.path();
  if (count <= 0) return;
  const int cols = targets[0].w->cols;
  for (int i = 0; i < count; ++i) {
    const Matrix& w = *targets[i].w;
    if (!path.gemm_bf16 || !(w.type == DType::F32 || w.type == DType::F16 || w.type == DType::BF16))
      throw Error(std::string("bf16 matmul is not available on the '") + path.name +
                  "' kernel path");
    if (w.cols != cols) throw Error("bf16 matmuls of one input need one width");
  }
  ThreadPool& pool = cx.pool();
  const Compute::Turn turn = cx.take_turn();
  Workspace& ws = turn.workspace;
  // Round x once, shared by the workers like the Q8 case, and by every target.
  const int ldx = bf16_stride(cols);
  uint16_t* xbp = ws.shared().get<uint16_t>(kActBf16, static_cast<size_t>(n) * ldx);
  pool.parallel_for(static_cast<size_t>(n), [&](size_t b, size_t e) {
    rows_to_bf16(path, x, static_cast<size_t>(cols), cols, b, e, xbp);
  });
  split_target_rows(pool, ws, targets, count,
                    [&](int i, int ob, int oe, int p, const TargetPiece&) {
                      const Matrix& w = *targets[i].w;
                      path.gemm_bf16(xbp, n, ldx, w, ob, oe, targets[i].bias, targets[i].y, w.rows,
                                     ws.participant(p).path);
                    });
}

void layer_norm(const Compute& cx, const float* x, int n, int d, const float* weight,
                const float* bias, float eps, float* y) {
  const auto norm = cx.path().layer_norm;
  cx.pool().parallel_for(static_cast<size_t>(n), [&](size_t b, size_t e) {
    norm(x + b * d, static_cast<int>(e - b), d, weight, bias, eps, y + b * d);
  });
}

// On the calling thread: the decoder's rows are one (decode) or a few hundred of 576 values,
// too little to hand to the workers.
void rms_norm(const Compute& cx, const float* x, int n, int d, const float* weight, float eps,
              float* y) {
  const auto norm = cx.path().rms_norm;
  norm(x, n, d, weight, eps, y);
}

void gelu_tanh_inplace(const Compute& cx, float* x, size_t n) {
  const auto gelu = cx.path().gelu_tanh;
  cx.pool().parallel_for((n + 255) / 256, [&](size_t b, size_t e) {
    gelu(x + b * 256, std::min(n, e * 256) - b * 256);
  });
}

void silu_mul(const Compute& cx, const float* gate, const float* up, float* out, size_t n) {
  const auto silu = cx.path().silu_mul;
  cx.pool().parallel_for((n + 255) / 256, [&](size_t b, size_t e) {
    silu(gate + b * 256, up + b * 256, out + b * 256, std::min(n, e * 256) - b * 256);
  });
}

void add_inplace(const Compute& cx, float* x, const float* y, size_t n) {
  cx.pool().parallel_for((n + 4095) / 4096, [&](size_t b, size_t e) {
    const size_t lo = b * 4096, hi = std::min(n, e * 4096);
    add_inplace(x + lo, y + lo, hi - lo);
  });
}

void add_inplace(float* x, const float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] += y[i];
}

void rope_angles(int pos, const float* inv_freq, int head_dim, float* cos, float* sin) {
  for (int i = 0; i < head_dim / 2; ++i) {
    const float angle = static_cast<float>(pos) * inv_freq[i];  // float32, as ref::rope
    cos[i] = std::cos(angle);
    sin[i] = std::sin(angle);
  }
}

void rope_rotate(float* x, int heads, int head_dim, const float* cos, const float* sin) {
  const int half = head_dim / 2;
  for (int h = 0; h < heads; ++h) {
    float* v = x + static_cast<size_t>(h) * head_dim;
    for (int i = 0; i < half; ++i) {
      const float a = v[i], b = v[i + half];
      v[i] = a * cos[i] - b * sin[i];
      v[i + half] = b * cos[i] + a * sin[i];
    }
  }
}

namespace {

// Softmax numerators of one row of (already scaled) scores in place: exp(s − max) over the keys
// key_mask lets through (the others become 0). Returns their sum; dividing is left to the
// caller, who does it on the hd outputs rather than on every score.
// s[j] = e^(s[j] − max) over the unmasked keys (0 for masked ones); returns their sum, and the
// max in *max_out when asked (−inf when every key is masked).
float softmax_numerators(const KernelPath& path, float* s, int n, const unsigned char* key_mask,
                         float* max_out = nullptr) {
  if (key_mask) {
    float maxv = -std::numeric_limits<float>::infinity();
    for (int j = 0; j < n; ++j) {
      if (key_mask[j]) maxv = std::max(maxv, s[j]);
    }
    if (max_out) *max_out = maxv;
    float sum = 0.0f;
    for (int j = 0; j < n; ++j) {
      s[j] = !key_mask[j] ? 0.0f : std::exp(s[j] - maxv);
      sum += s[j];
    }
    return sum;
  }
  const float maxv = path.row_max(s, n);
  if (max_out) *max_out = maxv;
  return path.exp_shift_sum(s, n, maxv);
}

void scale_row(float* x, int n, float a) {
  for (int i = 0; i < n; ++i) x[i] *= a;
}

// One query row at a time: for decoding (a single new token), where there is nothing to block.
// Scores are one GEMV per head against the head's K rows read in place (a strided matrix, so
// the single-row kernel streams them with prefetch); the weighted sum of V is one call per head.
void attention_rows(const Compute& cx, Workspace& ws, const AttentionShape& s, const float* q,
                    const float* k, const float* v, const unsigned char* key_mask, float* out) {
  const KernelPath& path = cx.path();
  const int hd = s.head_dim, group = s.heads / s.kv_heads;
  const size_t tasks = static_cast<size_t>(s.nq) * s.heads;
  const size_t kv_row_bytes = static_cast<size_t>(s.kv_stride) * sizeof(float);
  cx.pool().parallel_for(tasks, [&](size_t begin, size_t end, int p) {
    Workspace::Participant& mine = ws.participant(p);
    float* scores = mine.op.get<float>(kScores, static_cast<size_t>(s.nk));
    float* qs = mine.op.get<float>(kQueries, static_cast<size_t>(hd));
    for (size_t t = begin; t < end; ++t) {
      const int i = static_cast<int>(t / s.heads), h = static_cast<int>(t % s.heads);
      const int keys = s.causal ? std::min(s.q_pos0 + i, s.nk - 1) + 1 : s.nk;
      const int kvh = h / group;
      // The softmax scale goes on q (hd values) rather than on every score, as in the blocked
      // path; exact for head_dim 64, where it is 1/8.
      const float* qh = q + static_cast<size_t>(i) * s.q_stride + h * hd;
      for (int d = 0; d < hd; ++d) qs[d] = qh[d] * s.scale;
      const Matrix km{DType::F32, k + kv_head_offset(s, kvh), keys, hd, kv_row_bytes};
      path.gemm_float(qs, 1, km, 0, keys, nullptr, scores, keys, mine.path);
      const float sum = softmax_numerators(path, scores, keys, key_mask);
      float* oh = out + static_cast<size_t>(i) * s.out_stride + h * hd;
      const float* vh = v + kv_head_offset(s, kvh);
      if (path.weighted_rows) {
        path.weighted_rows(scores, keys, vh, static_cast<size_t>(s.kv_stride), hd, oh);
      } else {
        std::fill(oh, oh + hd, 0.0f);
        for (int j = 0; j < keys; ++j) {
          if (scores[j] == 0.0f) continue;
          path.axpy(scores[j], vh + static_cast<size_t>(j) * s.kv_stride, oh, hd);
        }
      }
      scale_row(oh, hd, 1.0f / sum);
    }
  });
}

// One query row (a decode step): the keys are cut into chunks and each task is one KV head ×
// one chunk, for all the query heads that share that KV head, so K and V are read once per
// step (not once per query head) and even a short context gives every thread work. Each task
// leaves its heads' partial softmax (max, sum, unnormalised output over its keys); the caller
// merges the chunks with the usual rescaling by exp(max_chunk − max).
void attention_one_row(const Compute& cx, Workspace& ws, const AttentionShape& s, const float* q,
                       const float* k, const float* v, const unsigned char* key_mask, float* out) {
  const KernelPath& path = cx.path();
  const int hd = s.head_dim, group = s.heads / s.kv_heads;
  const int keys = s.causal ? std::min(s.q_pos0, s.nk - 1) + 1 : s.nk;
  constexpr int kMinChunk = 64;
  const int threads = cx.threads();
  const int max_chunks = std::max(1, (8 * threads) / s.kv_heads);
  int chunks = std::clamp((keys + kMinChunk - 1) / kMinChunk, 1, max_chunks);
  // A task count the threads divide evenly (3 KV heads × 3 chunks on 2 threads left one
  // thread a third more work than the other): the most chunks up to here that give one.
  int even = chunks;
  while (even > 1 && (even * s.kv_heads) % threads != 0) --even;
  if ((even * s.kv_heads) % threads == 0) chunks = even;
  const int chunk = (keys + chunks - 1) / chunks;
  const size_t tasks = static_cast<size_t>(s.kv_heads) * chunks;
  const size_t kv_row_bytes = static_cast<size_t>(s.kv_stride) * sizeof(float);
  // Per (query head, chunk): max, sum, and hd output values.
  const size_t rec = static_cast<size_t>(hd) + 2;
  const size_t part_size = static_cast<size_t>(s.heads) * chunks * rec;
  float* part = ws.shared().get<float>(kHeadPartials, part_size);
  std::fill(part, part + part_size, 0.0f);
  cx.pool().parallel_for(tasks, [&](size_t begin, size_t end, int p) {
    Workspace::Participant& mine = ws.participant(p);
    float* scores = mine.op.get<float>(kScores, static_cast<size_t>(group) * chunk);
    float* qs = mine.op.get<float>(kQueries, static_cast<size_t>(group) * hd);
    for (size_t t = begin; t < end; ++t) {
      const int kvh = static_cast<int>(t / chunks), c = static_cast<int>(t % chunks);
      const int j0 = c * chunk, j1 = std::min(keys, j0 + chunk), n = j1 - j0;
      if (n <= 0) continue;
      // The group's query heads are adjacent: one call gives all their scores.
      const float* qg = q + static_cast<size_t>(kvh) * group * hd;
      for (int d = 0; d < group * hd; ++d) qs[d] = qg[d] * s.scale;
      const float* kc = k + kv_head_offset(s, kvh) + static_cast<size_t>(j0) * s.kv_stride;
      if (path.dot_rows) {
        path.dot_rows(qs, group, hd, kc, static_cast<size_t>(s.kv_stride), n, scores, n);
      } else {
        const Matrix km{DType::F32, kc, n, hd, kv_row_bytes};
        path.gemm_float(qs, group, km, 0, n, nullptr, scores, n, mine.path);
      }
      const float* vh = v + kv_head_offset(s, kvh) + static_cast<size_t>(j0) * s.kv_stride;
      const unsigned char* mask = key_mask ? key_mask + j0 : nullptr;
      for (int r = 0; r < group; ++r) {
        float* sr = scores + static_cast<size_t>(r) * n;
        float* rec_out = part + (static_cast<size_t>(kvh * group + r) * chunks + c) * rec;
        rec_out[1] = softmax_numerators(path, sr, n, mask, &rec_out[0]);
        if (rec_out[0] == -std::numeric_limits<float>::infinity()) continue;  // all keys masked
        float* o = rec_out + 2;
        if (path.weighted_rows) {
          path.weighted_rows(sr, n, vh, static_cast<size_t>(s.kv_stride), hd, o);
        } else {
          for (int j = 0; j < n; ++j) {
            if (sr[j] != 0.0f) path.axpy(sr[j], vh + static_cast<size_t>(j) * s.kv_stride, o, hd);
          }
        }
      }
    }
  });
  for (int h = 0; h < s.heads; ++h) {
    const float* recs = part + static_cast<size_t>(h) * chunks * rec;
    float m = -std::numeric_limits<float>::infinity();
    for (int c = 0; c < chunks; ++c) m = std::max(m, recs[static_cast<size_t>(c) * rec]);
    float* oh = out + h * hd;
    std::fill(oh, oh + hd, 0.0f);
    float total = 0.0f;
    for (int c = 0; c < chunks; ++c) {
      const float* r = recs + static_cast<size_t>(c) * rec;
      if (r[0] == -std::numeric_limits<float>::infinity()) continue;
      const float w = std::exp(r[0] - m);
      total += w * r[1];
      for (int d = 0; d < hd; ++d) oh[d] += w * r[2 + d];
    }
    scale_row(oh, hd, 1.0f / total);
  }
}

// The steps a block of query rows [i0, i0 + rows) of head h shares in both blocked attentions.
// Its query rows gathered into qb and pre-multiplied by the softmax scale (one pass over rows·hd
// values instead of rows·keys scores; exact for head_dim 64, where it is 1/8).
void gather_scaled_queries(const AttentionShape& s, const float* q, int h, int i0, int rows,
                           float* qb) {
  const int hd = s.head_dim;
  for (int i = 0; i < rows; ++i) {
    const float* src = q + static_cast<size_t>(i0 + i) * s.q_stride + h * hd;
    float* dst = qb + static_cast<size_t>(i) * hd;
    for (int d = 0; d < hd; ++d) dst[d] = src[d] * s.scale;
  }
}
// One task of the blocked attention loops (task t: query block t / heads of head t % heads):
// where it sits, the keys it sees, and the participant's buffers for it, its queries already
// gathered and scaled.
struct QueryBlock {
  int h, i0, rows, kvh, keys;
  float* scores;   // rows × keys
  float* queries;  // rows × head_dim
  float* inv_sum;  // rows
};
QueryBlock query_block(const AttentionShape& s, const float* q, size_t t, int block_rows,
                       Scratch& op) {
  QueryBlock b{};
  b.h = static_cast<int>(t % s.heads);
  b.i0 = static_cast<int>(t / s.heads) * block_rows;
  b.rows = std::min(block_rows, s.nq - b.i0);
  b.kvh = b.h / (s.heads / s.kv_heads);
  b.keys = s.causal ? std::min(s.nk, s.q_pos0 + b.i0 + b.rows) : s.nk;
  b.scores = op.get<float>(kScores, static_cast<size_t>(b.rows) * b.keys);
  b.queries = op.get<float>(kQueries, static_cast<size_t>(b.rows) * s.head_dim);
  b.inv_sum = op.get<float>(kInvSum, static_cast<size_t>(b.rows));
  gather_scaled_queries(s, q, b.h, b.i0, b.rows, b.queries);
  return b;
}
// Scores [rows × keys] → softmax numerators, causally hidden keys zero; 1/sum per row into
// inv_sum (applied to the output rows, not to P).
void block_softmax(const KernelPath& path, const AttentionShape& s, int i0, int rows, int keys,
                   const unsigned char* key_mask, float* sb, float* inv_sum) {
  for (int i = 0; i < rows; ++i) {
    float* sr = sb + static_cast<size_t>(i) * keys;
    const int last = s.causal ? std::min(s.q_pos0 + i0 + i, s.nk - 1) : s.nk - 1;
    inv_sum[static_cast<size_t>(i)] = 1.0f / softmax_numerators(path, sr, last + 1, key_mask);
    std::fill(sr + last + 1, sr + keys, 0.0f);
  }
}
void scale_output_rows(const AttentionShape& s, float* orows, int rows, const float* inv_sum) {
  for (int i = 0; i < rows; ++i)
    scale_row(orows + static_cast<size_t>(i) * s.out_stride, s.head_dim,
              inv_sum[static_cast<size_t>(i)]);
}

// Blocks of query rows: scores = Q_blk · Kᵀ and out = P · V run as GEMMs on the active path.
// Only a [block × keys] slice of scores exists at a time, per worker (never heads × nq × nk).
// K is read in place (a strided matrix); V too where the path multiplies by K-major B
// (gemm_kn), otherwise each KV head's V is transposed once for gemm_float.
void attention_blocked(const Compute& cx, Workspace& ws, const AttentionShape& s, const float* q,
                       const float* k, const float* v, const unsigned char* key_mask, float* out) {
  const KernelPath& path = cx.path();
  const int hd = s.head_dim, nk = s.nk;
  // Bidirectional (vision): big blocks, so each head's K is packed fewer times. Causal: small
  // ones, so fewer hidden keys are computed.
  const int kBlock = s.causal ? 64 : 256;
  const size_t kv_row_bytes = static_cast<size_t>(s.kv_stride) * sizeof(float);
  float* vt = nullptr;  // each KV head's V transposed (every value written)
  if (!path.gemm_kn) {
    vt = ws.shared().get<float>(kValuePanels, static_cast<size_t>(s.kv_heads) * nk * hd);
    cx.pool().parallel_for(static_cast<size_t>(s.kv_heads), [&](size_t b, size_t e) {
      for (size_t h = b; h < e; ++h) {
        for (int j = 0; j < nk; ++j) {
          const float* vj =
              v + kv_head_offset(s, static_cast<int>(h)) + static_cast<size_t>(j) * s.kv_stride;
          for (int d = 0; d < hd; ++d) vt[(h * hd + d) * nk + j] = vj[d];
        }
      }
    });
  }
  const int blocks = (s.nq + kBlock - 1) / kBlock;
  cx.pool().parallel_for(
      static_cast<size_t>(blocks) * s.heads, [&](size_t begin, size_t end, int p) {
        Workspace::Participant& mine = ws.participant(p);
        for (size_t t = begin; t < end; ++t) {
          // Causal: a block's work grows with its position, and the pool hands each thread a
          // contiguous run of tasks (in order, the first thread of two got 28% of the work in a
          // 512-token prefill). Blocks are taken first, last, second, second to last, ... instead.
          const size_t heads = static_cast<size_t>(s.heads), i = t / heads;
          const size_t blk = !s.causal    ? i
                             : i % 2 == 0 ? i / 2
                                          : static_cast<size_t>(blocks) - 1 - i / 2;
          const auto [h, i0, rows, kvh, keys, sb, qb, inv_sum] =
              query_block(s, q, blk * heads + t % heads, kBlock, mine.op);
          const Matrix km{DType::F32, k + kv_head_offset(s, kvh), keys, hd, kv_row_bytes};
          path.gemm_float(qb, rows, km, 0, keys, nullptr, sb, keys, mine.path);
          block_softmax(path, s, i0, rows, keys, key_mask, sb, inv_sum);
          float* orows = out + static_cast<size_t>(i0) * s.out_stride + h * hd;
          if (path.gemm_kn) {
            path.gemm_kn(sb, rows, keys, keys, v + kv_head_offset(s, kvh),
                         static_cast<size_t>(s.kv_stride), hd, orows, s.out_stride, mine.path);
          } else {
            const Matrix vm{DType::F32, vt + static_cast<size_t>(kvh) * hd * nk, hd, keys,
                            static_cast<size_t>(nk) * sizeof(float)};
            path.gemm_float(sb, rows, vm, 0, hd, nullptr, orows, s.out_stride, mine.path);
          }
          scale_output_rows(s, orows, rows, inv_sum);
        }
      });
}

// bf16 products (vision): each KV head's K and V are packed into the path's bf16 panels once
// (a head's 4 blocks of 256 rows used to pack them 4 times, ~3 MB of panels for a vision layer),
// then blocks of 96 query rows (a multiple of the 6-row micro-tile), so that a block's scores
// (384 KB for 1024 keys), its bf16 P and the head's panels stay in L2 through both products and
// the softmax.
void attention_bf16_panels(const Compute& cx, Workspace& ws, const AttentionShape& s,
                           const float* q, const float* k, const float* v, float* out) {
  const KernelPath& path = cx.path();
  const int hd = s.head_dim, nk = s.nk;
  const size_t kv_row_bytes = static_cast<size_t>(s.kv_stride) * sizeof(float);
  const size_t k_size = path.bf16_panels_size(hd, nk), v_size = path.bf16_panels_size(nk, hd);
  // Zeroed, as the packers expect (padding they do not write).
  uint32_t* kp = ws.shared().get<uint32_t>(kKeyPanels, k_size * static_cast<size_t>(s.kv_heads));
  uint32_t* vp = ws.shared().get<uint32_t>(kValuePanels, v_size * static_cast<size_t>(s.kv_heads));
  std::fill(kp, kp + k_size * static_cast<size_t>(s.kv_heads), 0u);
  std::fill(vp, vp + v_size * static_cast<size_t>(s.kv_heads), 0u);
  cx.pool().parallel_for(2 * static_cast<size_t>(s.kv_heads), [&](size_t b, size_t e) {
    for (size_t t = b; t < e; ++t) {
      const size_t h = t / 2;
      if (t % 2 == 0) {
        const Matrix km{DType::F32, k + kv_head_offset(s, static_cast<int>(h)), nk, hd,
                        kv_row_bytes};
        path.pack_bf16_rows(km, kp + h * k_size);
      } else {
        path.pack_bf16_kn(v + kv_head_offset(s, static_cast<int>(h)),
                          static_cast<size_t>(s.kv_stride), nk, hd, vp + h * v_size);
      }
    }
  });
  constexpr int kBlock = 96;
  const int blocks = (s.nq + kBlock - 1) / kBlock;
  cx.pool().parallel_for(static_cast<size_t>(blocks) * s.heads, [&](size_t begin, size_t end,
                                                                    int p) {
    Workspace::Participant& mine = ws.participant(p);
    for (size_t t = begin; t < end; ++t) {
      // The queries, then rounded to bf16, as the twin rounds them.
      const auto [h, i0, rows, kvh, keys, sb, qb, inv_sum] = query_block(s, q, t, kBlock, mine.op);
      uint16_t* q16 =
          mine.op.get<uint16_t>(kQueriesBf16, static_cast<size_t>(rows) * bf16_stride(hd));
      uint16_t* p16 =
          mine.op.get<uint16_t>(kProbsBf16, static_cast<size_t>(rows) * bf16_stride(keys));
      rows_to_bf16(path, qb, static_cast<size_t>(hd), hd, 0, static_cast<size_t>(rows), q16);
      path.gemm_bf16_panels(q16, rows, bf16_stride(hd), kp + static_cast<size_t>(kvh) * k_size, hd,
                            hd, keys, sb, keys, mine.path);
      block_softmax(path, s, i0, rows, keys, nullptr, sb, inv_sum);
      rows_to_bf16(path, sb, static_cast<size_t>(keys), keys, 0, static_cast<size_t>(rows), p16);
      float* orows = out + static_cast<size_t>(i0) * s.out_stride + h * hd;
      path.gemm_bf16_panels(p16, rows, bf16_stride(keys), vp + static_cast<size_t>(kvh) * v_size,
                            nk, keys, hd, orows, s.out_stride, mine.path);
      scale_output_rows(s, orows, rows, inv_sum);
    }
  });
}

}  // namespace

void attention(const Compute& cx, const AttentionShape& s, const float* q, const float* k,
               const float* v, const unsigned char* key_mask, float* out, bool bf16_products) {
  const Compute::Turn turn = cx.take_turn();
  Workspace& ws = turn.workspace;
  if (s.nq >= 16) {
    const KernelPath& path = cx.path();
    if (bf16_products && !key_mask && path.gemm_bf16_panels) {
      attention_bf16_panels(cx, ws, s, q, k, v, out);
    } else {
      attention_blocked(cx, ws, s, q, k, v, key_mask, out);
    }
  } else if (s.nq == 1 && s.heads % s.kv_heads == 0) {
    attention_one_row(cx, ws, s, q, k, v, key_mask, out);
  } else {
    attention_rows(cx, ws, s, q, k, v, key_mask, out);
  }
}

}  // namespace smolvlm::kernels
