//===- Attention.cuh - causal attention with grouped-query heads: fwd and B --===//
//
// The layouts of runtime/kernels/cpu/Attention.h: q and out [batch, seqQ,
// heads * headDim], k and v [batch, seqKV, kvHeads * headDim], bf16; lse
// [batch, heads, seqQ] fp32; query head h reads kv head h / (heads /
// kvHeads); causal: query t sees keys s <= t + (seqKV - seqQ).
//
// Correct first (issue 12; the fast kernels are cuDNN's, issue 19): one
// warp per query row (forward, dq) or per key row (dk, dv), each lane
// holding headDim / 32 elements (headDim <= 32 * kMaxPerLane). Dot
// products are warpSum's fixed butterfly; sums over keys (forward, dq) and
// over a group's heads then queries (dk, dv) run in ascending order, so
// there are no atomics and the bits depend on the shape only. The forward
// takes the row maximum first, then the exponentials' sum and p v in one
// pass, the cpu kernel's two passes; the backward recomputes p = exp(score
// - lse) (flash-attention style) and D = dout . out per query row.
// Included by Kernels.cu only.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CUDA_ATTENTION_CUH
#define PIPERT_KERNELS_CUDA_ATTENTION_CUH

#include "kernels/cuda/Kernels.h"
#include "kernels/cuda/Launch.cuh"

namespace pipert::cuda {

/// Elements of a head row per lane: headDim <= 256.
constexpr int kMaxPerLane = 8;

/// Keys query t sees (cpu: detail::visibleKeys).
__device__ inline int64_t visibleKeys(const AttentionShape &s, int64_t t) {
  if (!s.causal)
    return s.seqKV;
  int64_t n = t + 1 + (s.seqKV - s.seqQ);
  return n < 0 ? 0 : (n > s.seqKV ? s.seqKV : n);
}

/// This lane's elements of a bf16 head row, as fp32 (zeros past headDim).
__device__ inline void loadRow(float (&r)[kMaxPerLane], const bf16 *p,
                               int64_t dim, int lane) {
#pragma unroll
  for (int e = 0; e < kMaxPerLane; ++e) {
    int64_t d = lane + 32 * e;
    r[e] = d < dim ? __bfloat162float(p[d]) : 0.0f;
  }
}

/// The dot product of this lane's elements with a bf16 row, over the warp.
__device__ inline float dotRow(const float (&r)[kMaxPerLane], const bf16 *p,
                               int64_t dim, int lane) {
  float s = 0.0f;
#pragma unroll
  for (int e = 0; e < kMaxPerLane; ++e) {
    int64_t d = lane + 32 * e;
    if (d < dim)
      s += r[e] * __bfloat162float(p[d]);
  }
  return warpSum(s);
}

__device__ inline void storeRow(bf16 *p, const float (&r)[kMaxPerLane],
                                float scale, int64_t dim, int lane) {
#pragma unroll
  for (int e = 0; e < kMaxPerLane; ++e) {
    int64_t d = lane + 32 * e;
    if (d < dim)
      p[d] = __float2bfloat16_rn(r[e] * scale);
  }
}

/// Where query row `row` (of [batch, heads, seqQ], the layout of lse) of
/// a q-shaped tensor starts (`at`), its position t, the offset of its kv
/// head's first key row in k and v (`kv`), and the stride of key rows.
struct QueryRow {
  int64_t t, at, kv, kvStride;
};
__device__ inline QueryRow queryRow(const AttentionShape &s, int64_t row) {
  const int64_t dh = s.headDim, group = s.heads / s.kvHeads;
  QueryRow r;
  r.kvStride = s.kvHeads * dh;
  r.t = row % s.seqQ;
  int64_t h = (row / s.seqQ) % s.heads, b = row / (s.seqQ * s.heads);
  r.at = (b * s.seqQ + r.t) * (s.heads * dh) + h * dh;
  r.kv = b * s.seqKV * r.kvStride + (h / group) * dh;
  return r;
}

// --- kernels -----------------------------------------------------------------

__global__ void attentionForwardKernel(bf16 *out, float *lse, const bf16 *q,
                                       const bf16 *k, const bf16 *v,
                                       AttentionShape s) {
  int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  int lane = int(threadIdx.x % 32);
  if (row >= s.batch * s.heads * s.seqQ)
    return;
  const int64_t dh = s.headDim;
  const QueryRow r = queryRow(s, row);
  const int64_t t = r.t, kvStride = r.kvStride;
  const bf16 *kb = k + r.kv, *vb = v + r.kv;
  float qr[kMaxPerLane], acc[kMaxPerLane];
  loadRow(qr, q + r.at, dh, lane);
  const float scale = float(s.scale);
  const int64_t n = visibleKeys(s, t);
  float mx = -INFINITY;
  for (int64_t j = 0; j < n; ++j)
    mx = fmaxf(mx, dotRow(qr, kb + j * kvStride, dh, lane) * scale);
  float sum = 0.0f;
#pragma unroll
  for (int e = 0; e < kMaxPerLane; ++e)
    acc[e] = 0.0f;
  for (int64_t j = 0; j < n; ++j) {
    float p = expf(dotRow(qr, kb + j * kvStride, dh, lane) * scale - mx);
    sum += p;
    const bf16 *vr = vb + j * kvStride;
#pragma unroll
    for (int e = 0; e < kMaxPerLane; ++e) {
      int64_t d = lane + 32 * e;
      if (d < dh)
        acc[e] += p * __bfloat162float(vr[d]);
    }
  }
  bf16 *orow = out + r.at;
#pragma unroll
  for (int e = 0; e < kMaxPerLane; ++e) {
    int64_t d = lane + 32 * e;
    if (d < dh)
      orow[d] = __float2bfloat16_rn(n ? acc[e] / sum : 0.0f);
  }
  if (lane == 0)
    lse[row] = n ? mx + logf(sum) : -INFINITY;
}

/// dq for one query row: dq = scale * sum_j p_j (dp_j - D) k_j, with
/// dp_j = dout . v_j and D = dout . out.
__global__ void attentionBackwardQKernel(bf16 *dq, const bf16 *dout,
                                         const bf16 *q, const bf16 *k,
                                         const bf16 *v, const bf16 *out,
                                         const float *lse, AttentionShape s) {
  int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  int lane = int(threadIdx.x % 32);
  if (row >= s.batch * s.heads * s.seqQ)
    return;
  const int64_t dh = s.headDim;
  const QueryRow r = queryRow(s, row);
  const int64_t t = r.t, at = r.at, kvStride = r.kvStride;
  const bf16 *kb = k + r.kv, *vb = v + r.kv;
  float qr[kMaxPerLane], gr[kMaxPerLane], acc[kMaxPerLane];
  loadRow(qr, q + at, dh, lane);
  loadRow(gr, dout + at, dh, lane);
  const float D = dotRow(gr, out + at, dh, lane);
  const float scale = float(s.scale), rowLse = lse[row];
#pragma unroll
  for (int e = 0; e < kMaxPerLane; ++e)
    acc[e] = 0.0f;
  const int64_t n = visibleKeys(s, t);
  for (int64_t j = 0; j < n; ++j) {
    const bf16 *kr = kb + j * kvStride;
    float p = expf(dotRow(qr, kr, dh, lane) * scale - rowLse);
    float ds = p * (dotRow(gr, vb + j * kvStride, dh, lane) - D);
#pragma unroll
    for (int e = 0; e < kMaxPerLane; ++e) {
      int64_t d = lane + 32 * e;
      if (d < dh)
        acc[e] += ds * __bfloat162float(kr[d]);
    }
  }
  storeRow(dq + at, acc, scale, dh, lane);
}

/// dk and dv for one key row of one kv head: over the group's query heads,
/// then the queries that see the key, in ascending order:
/// dv = sum p dout, dk = scale * sum p (dp - D) q.
__global__ void attentionBackwardKVKernel(bf16 *dk, bf16 *dv, const bf16 *dout,
                                          const bf16 *q, const bf16 *k,
                                          const bf16 *v, const bf16 *out,
                                          const float *lse, AttentionShape s) {
  int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  int lane = int(threadIdx.x % 32);
  if (row >= s.batch * s.kvHeads * s.seqKV)
    return;
  const int64_t dh = s.headDim, group = s.heads / s.kvHeads;
  const int64_t qStride = s.heads * dh, kvStride = s.kvHeads * dh;
  int64_t j = row % s.seqKV, kvh = (row / s.seqKV) % s.kvHeads;
  int64_t b = row / (s.seqKV * s.kvHeads);
  const int64_t kvAt = (b * s.seqKV + j) * kvStride + kvh * dh;
  float kr[kMaxPerLane], vr[kMaxPerLane], dkAcc[kMaxPerLane],
      dvAcc[kMaxPerLane];
  loadRow(kr, k + kvAt, dh, lane);
  loadRow(vr, v + kvAt, dh, lane);
#pragma unroll
  for (int e = 0; e < kMaxPerLane; ++e)
    dkAcc[e] = dvAcc[e] = 0.0f;
  const float scale = float(s.scale);
  for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h)
    for (int64_t t = 0; t < s.seqQ; ++t) {
      if (j >= visibleKeys(s, t))
        continue;
      const int64_t at = (b * s.seqQ + t) * qStride + h * dh;
      const bf16 *qr = q + at, *gr = dout + at, *orow = out + at;
      float p = expf(dotRow(kr, qr, dh, lane) * scale -
                     lse[(b * s.heads + h) * s.seqQ + t]);
      // D and dp over the warp: each lane's share of the row, summed.
      float dPart = 0.0f, dpPart = 0.0f;
#pragma unroll
      for (int e = 0; e < kMaxPerLane; ++e) {
        int64_t d = lane + 32 * e;
        if (d < dh) {
          float g = __bfloat162float(gr[d]);
          dPart += g * __bfloat162float(orow[d]);
          dpPart += g * vr[e];
        }
      }
      float ds = p * (warpSum(dpPart) - warpSum(dPart));
#pragma unroll
      for (int e = 0; e < kMaxPerLane; ++e) {
        int64_t d = lane + 32 * e;
        if (d < dh) {
          dvAcc[e] += p * __bfloat162float(gr[d]);
          dkAcc[e] += ds * __bfloat162float(qr[d]);
        }
      }
    }
  storeRow(dk + kvAt, dkAcc, scale, dh, lane);
  storeRow(dv + kvAt, dvAcc, 1.0f, dh, lane);
}

// --- launchers ---------------------------------------------------------------

/// The shapes these kernels take; anything else is the caller's error.
static bool attentionShapeOk(const AttentionShape &s) {
  return s.batch >= 0 && s.seqQ >= 0 && s.seqKV >= 0 && s.heads > 0 &&
         s.kvHeads > 0 && s.heads % s.kvHeads == 0 && s.headDim > 0 &&
         s.headDim <= 32 * kMaxPerLane;
}

cudaError_t attentionForward(bf16 *out, float *lse, const bf16 *q,
                             const bf16 *k, const bf16 *v,
                             const AttentionShape &s, cudaStream_t stream) {
  if (!attentionShapeOk(s))
    return cudaErrorInvalidValue;
  int64_t rows = s.batch * s.heads * s.seqQ;
  if (rows == 0)
    return cudaSuccess;
  attentionForwardKernel<<<warpRowBlocks(rows), kBlock, 0, stream>>>(
      out, lse, q, k, v, s);
  return launched();
}

cudaError_t attentionBackwardB(bf16 *dq, bf16 *dk, bf16 *dv, const bf16 *dout,
                               const bf16 *q, const bf16 *k, const bf16 *v,
                               const bf16 *out, const float *lse,
                               const AttentionShape &s, cudaStream_t stream) {
  if (!attentionShapeOk(s))
    return cudaErrorInvalidValue;
  int64_t qRows = s.batch * s.heads * s.seqQ;
  int64_t kvRows = s.batch * s.kvHeads * s.seqKV;
  if (qRows > 0) {
    attentionBackwardQKernel<<<warpRowBlocks(qRows), kBlock, 0, stream>>>(
        dq, dout, q, k, v, out, lse, s);
    if (cudaError_t e = launched(); e != cudaSuccess)
      return e;
  }
  if (kvRows > 0) {
    attentionBackwardKVKernel<<<warpRowBlocks(kvRows), kBlock, 0, stream>>>(
        dk, dv, dout, q, k, v, out, lse, s);
    return launched();
  }
  return cudaSuccess;
}

} // namespace pipert::cuda

#endif // PIPERT_KERNELS_CUDA_ATTENTION_CUH
