//===- FlashAttention.cuh - tiled attention on tensor cores: fwd and B ------===//
//
// The fast attention of issue 19 for head sizes 64 and 128 (GPT-2's and
// Llama's), which --nn-lower-to-kernels{target=cuda} chooses at compile
// time (flash_attention_forward, flash_attention_backward_b); other head
// sizes keep Attention.cuh's kernels. Layouts as Attention.cuh: q, out
// [batch, seqQ, heads * D], k, v [batch, seqKV, kvHeads * D] bf16, lse
// [batch, heads, seqQ] fp32; query head h reads kv head h / (heads /
// kvHeads); causal: query t sees keys s <= t + (seqKV - seqQ).
//
// Flash attention 2's tiling (Dao, 2023): a block of 4 warps owns 64 rows
// (queries; keys for dk and dv) and walks tiles of 64 columns through
// shared memory; each warp multiplies its 16 rows on the tensor cores
// (WMMA, bf16 in, fp32 accumulate). The forward keeps a running maximum
// and sum per row (online softmax) and never stores the scores; the
// backward recomputes p = exp(score - lse) and, without atomics, makes dq
// in one kernel (a block per query tile, over the key tiles) and dk, dv
// in another (a block per key tile, over the group's heads, then the
// query tiles), after D = dout . out per query row. Every sum runs in an
// order fixed by the shape, so a run repeats bit for bit. p and
// p (dp - D) are rounded to bf16 before they meet v, dout, k or q on the
// tensor cores (as flash attention does); the forward's row sums add p in
// fp32, so lse keeps fp32's accuracy.
//
// Shared memory: up to 121 KiB a block at head size 128 (88 KiB at 64),
// which sm_80 and sm_90 allow and sm_86 and sm_89 (99 KiB) do not: the
// call layer says so and names `pipec compile --attention rows`.
//
// The scores live in shared memory between the two products of a tile
// (WMMA fragments hide which lane holds which element), which costs
// shared-memory traffic that a hand-scheduled mma.sync kernel avoids: the
// next step when the profile says so. Included by Kernels.cu only.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CUDA_FLASHATTENTION_CUH
#define PIPERT_KERNELS_CUDA_FLASHATTENTION_CUH

#include "kernels/cuda/Kernels.h"
#include "kernels/cuda/Launch.cuh"

#include <mma.h>

#include <cstdint>

namespace pipert::cuda {
namespace flash {

using namespace nvcuda;

/// Rows a block owns (queries, or keys for dk and dv), columns of a tile,
/// warps (16 rows each).
constexpr int kRows = 64, kCols = 64, kWarps = 4, kThreads = 32 * kWarps;

using FragA = wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major>;
using FragBRow =
    wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major>;
using FragBCol =
    wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major>;
using FragC = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;

/// Shared-memory strides (elements) and region sizes (bytes) for head size
/// D. Rows are padded (WMMA wants strides in multiples of 8 bf16 or 4
/// fp32; the padding also spreads a column over the banks); every region
/// and every warp's part of one is a multiple of 128 bytes, so every
/// fragment pointer is 32-byte aligned as WMMA requires.
template <int D> struct Layout {
  static constexpr int kLd = D + 8;      ///< a [64][D] bf16 tile
  static constexpr int kSLd = kCols + 4; ///< a warp's [16][64] fp32 scores
  static constexpr int kPLd = kCols + 8; ///< a warp's [16][64] bf16 p
  static constexpr int kOLd = D + 4;     ///< a warp's [16][D] fp32 output
  static constexpr size_t kTile = size_t(kRows) * kLd * 2;
  static constexpr size_t kS = size_t(kWarps) * 16 * kSLd * 4;
  static constexpr size_t kP = size_t(kWarps) * 16 * kPLd * 2;
  static constexpr size_t kO = size_t(kWarps) * 16 * kOLd * 4;
  static_assert(kTile % 128 == 0 && kS % 128 == 0 && kP % 128 == 0 &&
                    kO % 128 == 0,
                "regions must keep 128-byte alignment");
  /// The forward's shared memory: q, k, v tiles, scores, p, output.
  static constexpr size_t kForward = 3 * kTile + kS + kP + kO;
  /// dq's: q, dout, k, v tiles, scores, dp, ds.
  static constexpr size_t kBackwardQ = 4 * kTile + 2 * kS + kP;
  /// dk and dv's: k, v, q, dout tiles, scores, dp, p, ds, and the query
  /// tile's lse and D.
  static constexpr size_t kBackwardKV = 4 * kTile + 2 * kS + 2 * kP + 512;
};

/// A kernel's dynamic shared memory, carved in the order its Layout sums
/// it: whole tiles, then each warp's slice of the warps' regions.
template <int D> class Carve {
public:
  __device__ explicit Carve(unsigned char *base) : at(base) {}
  /// A [64][D] bf16 tile.
  __device__ bf16 *tile() { return take<bf16>(L::kTile); }
  /// This warp's [16][64] fp32 scores (a kS region).
  __device__ float *scores(int warp) {
    return take<float>(L::kS) + warp * 16 * L::kSLd;
  }
  /// This warp's [16][64] bf16 p (a kP region).
  __device__ bf16 *probs(int warp) {
    return take<bf16>(L::kP) + warp * 16 * L::kPLd;
  }
  /// This warp's [16][D] fp32 output (a kO region).
  __device__ float *outputs(int warp) {
    return take<float>(L::kO) + warp * 16 * L::kOLd;
  }
  /// `n` floats of the block.
  __device__ float *floats(int n) { return take<float>(size_t(n) * 4); }

private:
  using L = Layout<D>;
  template <typename T> __device__ T *take(size_t bytes) {
    T *p = reinterpret_cast<T *>(at);
    at += bytes;
    return p;
  }
  unsigned char *at;
};

/// Keys query t sees.
__device__ inline int64_t visible(const AttentionShape &s, int64_t t) {
  if (!s.causal)
    return s.seqKV;
  int64_t n = t + 1 + (s.seqKV - s.seqQ);
  return n < 0 ? 0 : (n > s.seqKV ? s.seqKV : n);
}

/// Rows [row0, row0 + 64) of a matrix whose rows are `stride` elements
/// apart (`src` at column 0 of the head), D columns, into a padded tile;
/// rows at or past `rows` are zero. 16-byte accesses (the launchers check
/// the alignment).
template <int D>
__device__ inline void loadTile(bf16 *tile, const bf16 *src, int64_t row0,
                                int64_t rows, int64_t stride) {
  constexpr int kPerRow = D / 8;
  for (int i = int(threadIdx.x); i < kRows * kPerRow; i += kThreads) {
    const int r = i / kPerRow, c = (i % kPerRow) * 8;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (row0 + r < rows)
      v = *reinterpret_cast<const uint4 *>(src + (row0 + r) * stride + c);
    *reinterpret_cast<uint4 *>(tile + r * Layout<D>::kLd + c) = v;
  }
}

/// acc (16 x 64) = A (16 rows at `a`, D columns) times B^T, where B's 64
/// rows at `b` hold D columns each (q k^T, dout v^T, k q^T, v dout^T),
/// stored into the warp's scores at `out`.
template <int D>
__device__ inline void productT(float *out, const bf16 *a, const bf16 *b) {
  using L = Layout<D>;
#pragma unroll
  for (int n = 0; n < kCols / 16; ++n) {
    FragC acc;
    wmma::fill_fragment(acc, 0.0f);
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      FragA fa;
      FragBCol fb;
      wmma::load_matrix_sync(fa, a + kk * 16, L::kLd);
      wmma::load_matrix_sync(fb, b + (n * 16) * L::kLd + kk * 16, L::kLd);
      wmma::mma_sync(acc, fa, fb, acc);
    }
    wmma::store_matrix_sync(out + n * 16, acc, L::kSLd, wmma::mem_row_major);
  }
}

/// acc[n] (16 x D) += P (the warp's 16 x 64 bf16 at `p`) times the 64 x D
/// tile at `b` (p v, p^T dout, ds k, ds^T q).
template <int D>
__device__ inline void accumulate(FragC (&acc)[D / 16], const bf16 *p,
                                  const bf16 *b) {
  using L = Layout<D>;
#pragma unroll
  for (int kk = 0; kk < kCols / 16; ++kk) {
    FragA fa;
    wmma::load_matrix_sync(fa, p + kk * 16, L::kPLd);
#pragma unroll
    for (int n = 0; n < D / 16; ++n) {
      FragBRow fb;
      wmma::load_matrix_sync(fb, b + (kk * 16) * L::kLd + n * 16, L::kLd);
      wmma::mma_sync(acc[n], fa, fb, acc[n]);
    }
  }
}

/// Writes the warp's 16 x D accumulators as bf16 rows of a matrix whose
/// rows are `stride` apart (`dst` at the warp's first row), rows at or
/// past `rows - row0` skipped; `scratch` is the warp's 16 x 16 fp32.
template <int D>
__device__ inline void storeRows(bf16 *dst, FragC (&acc)[D / 16],
                                 float *scratch, int64_t row0, int64_t rows,
                                 int64_t stride) {
  const int lane = int(threadIdx.x % 32);
#pragma unroll
  for (int n = 0; n < D / 16; ++n) {
    wmma::store_matrix_sync(scratch, acc[n], 16, wmma::mem_row_major);
    __syncwarp();
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int e = lane * 8 + i, r = e / 16, c = e % 16;
      if (row0 + r < rows)
        dst[r * stride + n * 16 + c] = __float2bfloat16_rn(scratch[e]);
    }
    __syncwarp();
  }
}

// --- kernels -----------------------------------------------------------------

/// Block (query tile, head, batch): out and lse of 64 queries.
template <int D>
__global__ void __launch_bounds__(kThreads)
    forwardKernel(bf16 *out, float *lse, const bf16 *q, const bf16 *k,
                  const bf16 *v, AttentionShape s) {
  using L = Layout<D>;
  extern __shared__ __align__(128) unsigned char smem[];
  const int warp = int(threadIdx.x / 32), lane = int(threadIdx.x % 32);
  Carve<D> carve(smem); // Layout<D>::kForward
  bf16 *qs = carve.tile(), *ks = carve.tile(), *vs = carve.tile();
  float *sw = carve.scores(warp);
  bf16 *pw = carve.probs(warp);
  float *ow = carve.outputs(warp);
  const int64_t b = blockIdx.z, h = blockIdx.y, q0 = int64_t(blockIdx.x) * kRows;
  const int64_t kvh = h / (s.heads / s.kvHeads);
  const int64_t qStride = s.heads * D, kvStride = s.kvHeads * D;
  const bf16 *kb = k + b * s.seqKV * kvStride + kvh * D;
  const bf16 *vb = v + b * s.seqKV * kvStride + kvh * D;
  loadTile<D>(qs, q + b * s.seqQ * qStride + h * D, q0, s.seqQ, qStride);
  // Each lane pair holds one of the warp's rows: the even lane its first
  // half of the columns, the odd one the second.
  const int r = lane / 2, half = lane % 2;
  const int64_t t = q0 + warp * 16 + r;
  const int64_t seen = t < s.seqQ ? visible(s, t) : 0;
  for (int c = half * (D / 2); c < (half + 1) * (D / 2); ++c)
    ow[r * L::kOLd + c] = 0.0f;
  float m = -INFINITY, l = 0.0f;
  const float scale = float(s.scale);
  const int64_t last = (q0 + kRows < s.seqQ ? q0 + kRows : s.seqQ) - 1;
  const int64_t keys = visible(s, last);
  for (int64_t k0 = 0; k0 < keys; k0 += kCols) {
    __syncthreads(); // the last tile's k and v are read
    loadTile<D>(ks, kb, k0, s.seqKV, kvStride);
    loadTile<D>(vs, vb, k0, s.seqKV, kvStride);
    __syncthreads();
    productT<D>(sw, qs + warp * 16 * L::kLd, ks);
    __syncwarp();
    float mx = -INFINITY;
    for (int c = 0; c < kCols / 2; ++c) {
      const int col = half * (kCols / 2) + c;
      const float x = k0 + col < seen ? sw[r * L::kSLd + col] * scale : -INFINITY;
      sw[r * L::kSLd + col] = x;
      mx = fmaxf(mx, x);
    }
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    const float mNew = fmaxf(m, mx);
    // m = -inf (nothing seen yet) gives 0: the output is still zero.
    const float alpha = mNew == -INFINITY ? 1.0f : expf(m - mNew);
    // The row sum adds p in fp32 (lse must hold to 1e-5; the bf16 p
    // would put 2^-9 on every term), the product with v takes it in bf16.
    float sum = 0.0f;
    for (int c = 0; c < kCols / 2; ++c) {
      const int col = half * (kCols / 2) + c;
      const float x = sw[r * L::kSLd + col];
      const float p = x == -INFINITY ? 0.0f : expf(x - mNew);
      pw[r * L::kPLd + col] = __float2bfloat16_rn(p);
      sum += p;
    }
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    l = l * alpha + sum;
    m = mNew;
    for (int c = half * (D / 2); c < (half + 1) * (D / 2); ++c)
      ow[r * L::kOLd + c] *= alpha;
    __syncwarp();
    // O += p v, O through the fragments (it lives in shared memory
    // between tiles, where the rows were rescaled).
    FragC acc[D / 16];
#pragma unroll
    for (int n = 0; n < D / 16; ++n)
      wmma::load_matrix_sync(acc[n], ow + n * 16, L::kOLd, wmma::mem_row_major);
    accumulate<D>(acc, pw, vs);
#pragma unroll
    for (int n = 0; n < D / 16; ++n)
      wmma::store_matrix_sync(ow + n * 16, acc[n], L::kOLd, wmma::mem_row_major);
    __syncwarp();
  }
  if (t < s.seqQ) {
    bf16 *orow = out + (b * s.seqQ + t) * qStride + h * D;
    for (int c = half * (D / 2); c < (half + 1) * (D / 2); ++c)
      orow[c] = __float2bfloat16_rn(l > 0.0f ? ow[r * L::kOLd + c] / l : 0.0f);
    if (half == 0)
      lse[(b * s.heads + h) * s.seqQ + t] = l > 0.0f ? m + logf(l) : -INFINITY;
  }
}

/// D = dout . out of each query row ([batch, heads, seqQ], lse's layout),
/// a warp a row, the lanes' partial sums by warpSum's fixed butterfly.
template <int D>
__global__ void rowDotKernel(float *dOut, const bf16 *dout, const bf16 *out,
                             AttentionShape s) {
  const int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = int(threadIdx.x % 32);
  if (row >= s.batch * s.heads * s.seqQ)
    return;
  const int64_t t = row % s.seqQ, h = (row / s.seqQ) % s.heads,
                b = row / (s.seqQ * s.heads);
  const int64_t at = (b * s.seqQ + t) * (s.heads * D) + h * D;
  float part = 0.0f;
#pragma unroll
  for (int e = 0; e < D / 32; ++e)
    part += __bfloat162float(dout[at + lane + 32 * e]) *
            __bfloat162float(out[at + lane + 32 * e]);
  const float sum = warpSum(part);
  if (lane == 0)
    dOut[row] = sum;
}

/// Block (query tile, head, batch): dq = scale sum_j p (dp - D) k_j over
/// the key tiles in ascending order.
template <int D>
__global__ void __launch_bounds__(kThreads)
    backwardQKernel(bf16 *dq, const bf16 *dout, const bf16 *q, const bf16 *k,
                    const bf16 *v, const float *lse, const float *dRow,
                    AttentionShape s) {
  using L = Layout<D>;
  extern __shared__ __align__(128) unsigned char smem[];
  const int warp = int(threadIdx.x / 32), lane = int(threadIdx.x % 32);
  Carve<D> carve(smem); // Layout<D>::kBackwardQ
  bf16 *qs = carve.tile(), *gs = carve.tile(), *ks = carve.tile(),
       *vs = carve.tile();
  float *sw = carve.scores(warp), *dpw = carve.scores(warp);
  bf16 *dsw = carve.probs(warp);
  const int64_t b = blockIdx.z, h = blockIdx.y, q0 = int64_t(blockIdx.x) * kRows;
  const int64_t kvh = h / (s.heads / s.kvHeads);
  const int64_t qStride = s.heads * D, kvStride = s.kvHeads * D;
  const int64_t qAt = b * s.seqQ * qStride + h * D;
  const bf16 *kb = k + b * s.seqKV * kvStride + kvh * D;
  const bf16 *vb = v + b * s.seqKV * kvStride + kvh * D;
  loadTile<D>(qs, q + qAt, q0, s.seqQ, qStride);
  loadTile<D>(gs, dout + qAt, q0, s.seqQ, qStride);
  const int r = lane / 2, half = lane % 2;
  const int64_t t = q0 + warp * 16 + r;
  const int64_t seen = t < s.seqQ ? visible(s, t) : 0;
  const int64_t row = (b * s.heads + h) * s.seqQ + t;
  const float rowLse = t < s.seqQ ? lse[row] : 0.0f;
  const float rowD = t < s.seqQ ? dRow[row] : 0.0f;
  const float scale = float(s.scale);
  FragC acc[D / 16];
#pragma unroll
  for (int n = 0; n < D / 16; ++n)
    wmma::fill_fragment(acc[n], 0.0f);
  const int64_t last = (q0 + kRows < s.seqQ ? q0 + kRows : s.seqQ) - 1;
  const int64_t keys = visible(s, last);
  for (int64_t k0 = 0; k0 < keys; k0 += kCols) {
    __syncthreads();
    loadTile<D>(ks, kb, k0, s.seqKV, kvStride);
    loadTile<D>(vs, vb, k0, s.seqKV, kvStride);
    __syncthreads();
    productT<D>(sw, qs + warp * 16 * L::kLd, ks);
    productT<D>(dpw, gs + warp * 16 * L::kLd, vs);
    __syncwarp();
    for (int c = 0; c < kCols / 2; ++c) {
      const int col = half * (kCols / 2) + c;
      float ds = 0.0f;
      if (k0 + col < seen) {
        const float p = expf(sw[r * L::kSLd + col] * scale - rowLse);
        ds = p * (dpw[r * L::kSLd + col] - rowD) * scale;
      }
      dsw[r * L::kPLd + col] = __float2bfloat16_rn(ds);
    }
    __syncwarp();
    accumulate<D>(acc, dsw, ks);
  }
  __syncwarp();
  storeRows<D>(dq + qAt + (q0 + warp * 16) * qStride, acc, sw,
               q0 + warp * 16, s.seqQ, qStride);
}

/// What a dk/dv launch makes: both (head size 64), or one of them (128,
/// where both sets of accumulators would not fit the registers).
enum Parts { kDv = 1, kDk = 2, kBoth = 3 };

/// Block (key tile, kv head, batch): dv = sum p dout and dk = scale sum p
/// (dp - D) q over the group's query heads, then the query tiles that see
/// the keys, in ascending order; `P` says which of the two.
template <int D, int P>
__global__ void __launch_bounds__(kThreads)
    backwardKVKernel(bf16 *dk, bf16 *dv, const bf16 *dout, const bf16 *q,
                     const bf16 *k, const bf16 *v, const float *lse,
                     const float *dRow, AttentionShape s) {
  using L = Layout<D>;
  extern __shared__ __align__(128) unsigned char smem[];
  const int warp = int(threadIdx.x / 32), lane = int(threadIdx.x % 32);
  Carve<D> carve(smem); // Layout<D>::kBackwardKV
  bf16 *ks = carve.tile(), *vs = carve.tile(), *qs = carve.tile(),
       *gs = carve.tile();
  float *sw = carve.scores(warp), *dpw = carve.scores(warp);
  bf16 *pw = carve.probs(warp), *dsw = carve.probs(warp);
  float *lseS = carve.floats(kCols), *dS = carve.floats(kCols);
  const int64_t b = blockIdx.z, kvh = blockIdx.y,
                k0 = int64_t(blockIdx.x) * kRows;
  const int64_t group = s.heads / s.kvHeads;
  const int64_t qStride = s.heads * D, kvStride = s.kvHeads * D;
  const int64_t kvAt = b * s.seqKV * kvStride + kvh * D;
  loadTile<D>(ks, k + kvAt, k0, s.seqKV, kvStride);
  loadTile<D>(vs, v + kvAt, k0, s.seqKV, kvStride);
  const int r = lane / 2, half = lane % 2;
  const int64_t j = k0 + warp * 16 + r; // this lane pair's key
  const float scale = float(s.scale);
  FragC dkAcc[D / 16], dvAcc[D / 16];
#pragma unroll
  for (int n = 0; n < D / 16; ++n) {
    wmma::fill_fragment(dkAcc[n], 0.0f);
    wmma::fill_fragment(dvAcc[n], 0.0f);
  }
  // The first query that sees key k0 (the tile's first).
  int64_t first = s.causal ? k0 - (s.seqKV - s.seqQ) : 0;
  first = first < 0 ? 0 : first;
  for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
    const int64_t qAt = b * s.seqQ * qStride + h * D;
    for (int64_t q0 = (first / kCols) * kCols; q0 < s.seqQ; q0 += kCols) {
      __syncthreads(); // the last query tile is read
      loadTile<D>(qs, q + qAt, q0, s.seqQ, qStride);
      loadTile<D>(gs, dout + qAt, q0, s.seqQ, qStride);
      if (threadIdx.x < kCols) {
        const int64_t tq = q0 + threadIdx.x;
        const int64_t row = (b * s.heads + h) * s.seqQ + tq;
        lseS[threadIdx.x] = tq < s.seqQ ? lse[row] : 0.0f;
        dS[threadIdx.x] = tq < s.seqQ ? dRow[row] : 0.0f;
      }
      __syncthreads();
      productT<D>(sw, ks + warp * 16 * L::kLd, qs);
      if constexpr ((P & kDk) != 0)
        productT<D>(dpw, vs + warp * 16 * L::kLd, gs);
      __syncwarp();
      for (int c = 0; c < kCols / 2; ++c) {
        const int col = half * (kCols / 2) + c;
        const int64_t tq = q0 + col;
        float p = 0.0f, ds = 0.0f;
        if (tq < s.seqQ && j < visible(s, tq)) {
          p = expf(sw[r * L::kSLd + col] * scale - lseS[col]);
          if constexpr ((P & kDk) != 0)
            ds = p * (dpw[r * L::kSLd + col] - dS[col]) * scale;
        }
        if constexpr ((P & kDv) != 0)
          pw[r * L::kPLd + col] = __float2bfloat16_rn(p);
        if constexpr ((P & kDk) != 0)
          dsw[r * L::kPLd + col] = __float2bfloat16_rn(ds);
      }
      __syncwarp();
      if constexpr ((P & kDv) != 0)
        accumulate<D>(dvAcc, pw, gs);
      if constexpr ((P & kDk) != 0)
        accumulate<D>(dkAcc, dsw, qs);
    }
  }
  __syncwarp();
  const int64_t rowAt = kvAt + (k0 + warp * 16) * kvStride;
  if constexpr ((P & kDk) != 0)
    storeRows<D>(dk + rowAt, dkAcc, sw, k0 + warp * 16, s.seqKV, kvStride);
  if constexpr ((P & kDv) != 0)
    storeRows<D>(dv + rowAt, dvAcc, sw, k0 + warp * 16, s.seqKV, kvStride);
}

// --- launchers ---------------------------------------------------------------

/// What these kernels take: the generic shape rules, a head size they are
/// built for, grid dimensions in range, 16-byte aligned tensors.
inline bool shapeOk(const AttentionShape &s) {
  return s.batch >= 0 && s.seqQ >= 0 && s.seqKV >= 0 && s.heads > 0 &&
         s.kvHeads > 0 && s.heads % s.kvHeads == 0 &&
         flashAttentionSupports(s.headDim) && s.heads <= 65535 &&
         s.batch <= 65535 && (s.seqQ + kRows - 1) / kRows <= INT32_MAX &&
         (s.seqKV + kRows - 1) / kRows <= INT32_MAX;
}

template <int D>
cudaError_t forward(bf16 *out, float *lse, const bf16 *q, const bf16 *k,
                    const bf16 *v, const AttentionShape &s,
                    cudaStream_t stream) {
  const int bytes = int(Layout<D>::kForward);
  if (cudaError_t e = cudaFuncSetAttribute(
          forwardKernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
      e != cudaSuccess)
    return e;
  dim3 grid(unsigned((s.seqQ + kRows - 1) / kRows), unsigned(s.heads),
            unsigned(s.batch));
  forwardKernel<D><<<grid, kThreads, bytes, stream>>>(out, lse, q, k, v, s);
  return launched();
}

template <int D>
cudaError_t backward(bf16 *dq, bf16 *dk, bf16 *dv, float *dRow,
                     const bf16 *dout, const bf16 *q, const bf16 *k,
                     const bf16 *v, const bf16 *out, const float *lse,
                     const AttentionShape &s, cudaStream_t stream) {
  const int64_t rows = s.batch * s.heads * s.seqQ;
  if (rows > 0) {
    rowDotKernel<D><<<warpRowBlocks(rows), kBlock, 0, stream>>>(dRow, dout,
                                                                 out, s);
    if (cudaError_t e = launched(); e != cudaSuccess)
      return e;
    const int bytes = int(Layout<D>::kBackwardQ);
    if (cudaError_t e = cudaFuncSetAttribute(
            backwardQKernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
            bytes);
        e != cudaSuccess)
      return e;
    dim3 grid(unsigned((s.seqQ + kRows - 1) / kRows), unsigned(s.heads),
              unsigned(s.batch));
    backwardQKernel<D><<<grid, kThreads, bytes, stream>>>(dq, dout, q, k, v,
                                                          lse, dRow, s);
    if (cudaError_t e = launched(); e != cudaSuccess)
      return e;
  }
  if (s.batch * s.kvHeads * s.seqKV == 0)
    return cudaSuccess;
  auto launch = [&](auto kernel) {
    const int bytes = int(Layout<D>::kBackwardKV);
    if (cudaError_t e = cudaFuncSetAttribute(
            kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
        e != cudaSuccess)
      return e;
    dim3 grid(unsigned((s.seqKV + kRows - 1) / kRows), unsigned(s.kvHeads),
              unsigned(s.batch));
    kernel<<<grid, kThreads, bytes, stream>>>(dk, dv, dout, q, k, v, lse,
                                              dRow, s);
    return launched();
  };
  if constexpr (D <= 64) {
    return launch(backwardKVKernel<D, kBoth>);
  } else {
    if (cudaError_t e = launch(backwardKVKernel<D, kDv>); e != cudaSuccess)
      return e;
    return launch(backwardKVKernel<D, kDk>);
  }
}

} // namespace flash

int64_t flashAttentionSharedBytes(int64_t headDim) {
  using L64 = flash::Layout<64>;
  using L128 = flash::Layout<128>;
  auto most = [](size_t a, size_t b, size_t c) {
    return int64_t(a > b ? (a > c ? a : c) : (b > c ? b : c));
  };
  if (headDim == 64)
    return most(L64::kForward, L64::kBackwardQ, L64::kBackwardKV);
  if (headDim == 128)
    return most(L128::kForward, L128::kBackwardQ, L128::kBackwardKV);
  return 0;
}

cudaError_t flashAttentionForward(bf16 *out, float *lse, const bf16 *q,
                                  const bf16 *k, const bf16 *v,
                                  const AttentionShape &s,
                                  cudaStream_t stream) {
  if (!flash::shapeOk(s) || !aligned16(q) || !aligned16(k) ||
      !aligned16(v) || !aligned16(out))
    return cudaErrorInvalidValue;
  if (s.batch * s.heads * s.seqQ == 0)
    return cudaSuccess;
  return s.headDim == 64 ? flash::forward<64>(out, lse, q, k, v, s, stream)
                         : flash::forward<128>(out, lse, q, k, v, s, stream);
}

cudaError_t flashAttentionBackwardB(bf16 *dq, bf16 *dk, bf16 *dv,
                                    float *dRow, const bf16 *dout,
                                    const bf16 *q, const bf16 *k,
                                    const bf16 *v, const bf16 *out,
                                    const float *lse, const AttentionShape &s,
                                    cudaStream_t stream) {
  for (const void *p : {(const void *)dq, (const void *)dk, (const void *)dv,
                        (const void *)dout, (const void *)q, (const void *)k,
                        (const void *)v, (const void *)out})
    if (!aligned16(p))
      return cudaErrorInvalidValue;
  if (!flash::shapeOk(s))
    return cudaErrorInvalidValue;
  return s.headDim == 64
             ? flash::backward<64>(dq, dk, dv, dRow, dout, q, k, v, out, lse,
                                   s, stream)
             : flash::backward<128>(dq, dk, dv, dRow, dout, q, k, v, out, lse,
                                    s, stream);
}

} // namespace pipert::cuda

#endif // PIPERT_KERNELS_CUDA_FLASHATTENTION_CUH
