//===- Attention.h - Causal multi-head attention with grouped-query heads ---===//
//
// q is [batch, seqQ, heads * headDim], k and v are [batch, seqKV,
// kvHeads * headDim], out is [batch, seqQ, heads * headDim]; query head h
// reads key/value head h / (heads / kvHeads) (Hugging Face's repeat_kv
// order). With causal, query t sees keys s <= t + (seqKV - seqQ) (the usual
// mask when seqQ == seqKV); a query row that sees no key gets zeros and a
// log-sum-exp of -inf.
//
// The forward pass also writes the log-sum-exp of every row of scaled
// scores, lse [batch, heads, seqQ], so that the backward pass recomputes the
// probabilities as exp(score - lse) (flash-attention style) and needs no
// [seqQ, seqKV] buffer.
//
// Numerics: dot products over headDim use the fixed 8-lane order of
// Reduce.h; sums over keys (the softmax denominator, p v) run in ascending
// key order. The forward pass splits (batch, head, query) rows across
// threads. The backward pass gives each (batch, kv head) pair to one thread,
// which walks its query heads and queries in ascending order, so dk and dv
// (sums over queries and over the heads of a group) are added in a fixed
// order for any thread count; dq sums over keys in ascending order.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CPU_ATTENTION_H
#define PIPERT_KERNELS_CPU_ATTENTION_H

#include "kernels/cpu/Numerics.h"

#include "kernels/cpu/Reduce.h"
#include "kernels/cpu/VecMath.h"

#include <cmath>
#include <cstdint>
#include <vector>

namespace pipert::cpu {

/// Shapes and attributes of one attention op.
struct AttentionShape {
  int64_t batch = 0;
  int64_t seqQ = 0;
  int64_t seqKV = 0;
  int64_t heads = 0;
  /// Must divide heads; equal to heads for plain multi-head attention.
  int64_t kvHeads = 0;
  int64_t headDim = 0;
  bool causal = true;
  /// Multiplies q.k before the softmax (1 / sqrt(headDim) by default).
  double scale = 0;
};

namespace detail {
/// Number of keys query t may see.
inline int64_t visibleKeys(bool causal, int64_t seqQ, int64_t seqKV,
                           int64_t t) {
  if (!causal)
    return seqKV;
  int64_t n = t + 1 + (seqKV - seqQ);
  return n < 0 ? 0 : (n > seqKV ? seqKV : n);
}
} // namespace detail

// Both kernels take the shape as a struct; the pack S, when given, fixes
// its fields in the order batch, seqQ, seqKV, heads, kvHeads, headDim,
// causal (the integers of kernel.call "attention_*"), so that an emitted
// chunk's loops have constant bounds.
#define PIPERT_ATTENTION_SHAPE(s)                                              \
  const int64_t batch = detail::fixedOr<0, S...>(s.batch);                     \
  const int64_t seqQ = detail::fixedOr<1, S...>(s.seqQ);                       \
  const int64_t seqKV = detail::fixedOr<2, S...>(s.seqKV);                     \
  const int64_t heads = detail::fixedOr<3, S...>(s.heads);                     \
  const int64_t kvHeads = detail::fixedOr<4, S...>(s.kvHeads);                 \
  const int64_t dh = detail::fixedOr<5, S...>(s.headDim);                      \
  const bool causal = detail::fixedOr<6, S...>(int64_t(s.causal)) != 0;        \
  const int64_t group = heads / kvHeads;                                       \
  const int64_t qStride = heads * dh, kvStride = kvHeads * dh;                 \
  const T scale = T(s.scale)

/// out = softmax(scale q k^T + mask) v per head; lse = log-sum-exp per row.
template <typename T, int64_t... S>
inline void attentionForward(T *out, T *lse, const T *q, const T *k,
                             const T *v, const AttentionShape &s) {
  PIPERT_ATTENTION_SHAPE(s);
  const int64_t rows = batch * heads * seqQ;
#pragma omp parallel if (rows * seqKV * dh * 4 >= detail::kParallelWork)
  {
    std::vector<T> p(static_cast<size_t>(seqKV > 0 ? seqKV : 1));
#pragma omp for schedule(static)
    for (int64_t row = 0; row < rows; ++row) {
      // row enumerates [batch, heads, seqQ], the layout of lse.
      int64_t t = row % seqQ, h = (row / seqQ) % heads;
      int64_t b = row / (seqQ * heads), kvh = h / group;
      const T *qr = q + (b * seqQ + t) * qStride + h * dh;
      const T *kb = k + b * seqKV * kvStride + kvh * dh;
      const T *vb = v + b * seqKV * kvStride + kvh * dh;
      T *orow = out + (b * seqQ + t) * qStride + h * dh;
      int64_t n = detail::visibleKeys(causal, seqQ, seqKV, t);
#pragma omp simd
      for (int64_t d = 0; d < dh; ++d)
        orow[d] = T(0);
      if (n == 0) {
        lse[row] = -INFINITY;
        continue;
      }
      T mx = -INFINITY;
      for (int64_t j = 0; j < n; ++j) {
        p[j] = detail::dotFixed(qr, kb + j * kvStride, dh) * scale;
        mx = p[j] > mx ? p[j] : mx;
      }
#pragma omp simd
      for (int64_t j = 0; j < n; ++j)
        p[j] = vecExp(p[j] - mx);
      T sum = detail::sumFixed(p.data(), n);
      for (int64_t j = 0; j < n; ++j) {
        const T *vr = vb + j * kvStride;
        const T pj = p[j];
#pragma omp simd
        for (int64_t d = 0; d < dh; ++d)
          orow[d] += pj * vr[d];
      }
#pragma omp simd
      for (int64_t d = 0; d < dh; ++d)
        orow[d] = orow[d] / sum;
      lse[row] = mx + std::log(sum);
    }
  }
}

/// B: dq, dk, dv (overwritten) from dout and the saved out and lse.
template <typename T, int64_t... S>
inline void attentionBackwardB(T *dq, T *dk, T *dv, const T *dout, const T *q,
                               const T *k, const T *v, const T *out,
                               const T *lse, const AttentionShape &s) {
  PIPERT_ATTENTION_SHAPE(s);
  const int64_t units = batch * kvHeads;
#pragma omp parallel if (batch * heads * seqQ * seqKV * dh * 8 >=              \
                             detail::kParallelWork)
  {
    std::vector<T> dqBuffer(static_cast<size_t>(dh > 0 ? dh : 1));
    T *dqRow = dqBuffer.data();
#pragma omp for schedule(static)
    for (int64_t unit = 0; unit < units; ++unit) {
      int64_t b = unit / kvHeads, kvh = unit % kvHeads;
      const T *kb = k + b * seqKV * kvStride + kvh * dh;
      const T *vb = v + b * seqKV * kvStride + kvh * dh;
      T *dkb = dk + b * seqKV * kvStride + kvh * dh;
      T *dvb = dv + b * seqKV * kvStride + kvh * dh;
      for (int64_t j = 0; j < seqKV; ++j)
        for (int64_t d = 0; d < dh; ++d)
          dkb[j * kvStride + d] = dvb[j * kvStride + d] = T(0);
      for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
        for (int64_t t = 0; t < seqQ; ++t) {
          int64_t off = (b * seqQ + t) * qStride + h * dh;
          const T *qr = q + off, *gr = dout + off, *orow = out + off;
          T rowLse = lse[(b * heads + h) * seqQ + t];
          // D = dout . out = sum_j p_j (dout . v_j), the softmax projection.
          T proj = detail::dotFixed(gr, orow, dh);
          for (int64_t d = 0; d < dh; ++d)
            dqRow[d] = T(0);
          int64_t n = detail::visibleKeys(causal, seqQ, seqKV, t);
          for (int64_t j = 0; j < n; ++j) {
            const T *kr = kb + j * kvStride, *vr = vb + j * kvStride;
            T p = vecExp(detail::dotFixed(qr, kr, dh) * scale - rowLse);
            T ds = p * (detail::dotFixed(gr, vr, dh) - proj) * scale;
            T *dkr = dkb + j * kvStride, *dvr = dvb + j * kvStride;
            // Independent per d (dq, dk and dv are distinct buffers).
#pragma omp simd
            for (int64_t d = 0; d < dh; ++d) {
              dqRow[d] += ds * kr[d];
              dkr[d] += ds * qr[d];
              dvr[d] += p * gr[d];
            }
          }
          for (int64_t d = 0; d < dh; ++d)
            dq[off + d] = dqRow[d];
        }
      }
    }
  }
}

#undef PIPERT_ATTENTION_SHAPE

} // namespace pipert::cpu

#endif // PIPERT_KERNELS_CPU_ATTENTION_H
