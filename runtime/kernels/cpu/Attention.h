//===- Attention.h - Causal multi-head attention with grouped-query heads
//---===//
//
// q is [batch, seqQ, heads * headDim], k and v are [batch, seqKV,
// kvHeads * headDim], out is [batch, seqQ, heads * headDim]; query head h
// reads key/value head h / (heads / kvHeads) (Hugging Face's repeat_kv
// order). With causal, query t sees keys s <= t + (seqKV - seqQ) (the usual
// mask when seqQ == seqKV); a query row that sees no key gets zeros and a
// log-sum-exp of -inf.
//
// Both passes are blockwise matrix products (flash-attention style,
// Attention.cpp): queries in blocks of kAttentionBlock rows, keys in blocks
// of kAttentionBlock, key blocks that a query block cannot see skipped. The
// forward pass keeps an online softmax per row and writes the log-sum-exp
// of every row of scaled scores, lse [batch, heads, seqQ], so that the
// backward pass recomputes the probabilities as exp(score - lse) and needs
// no [seqQ, seqKV] buffer.
//
// Numerics (the order is a function of the shape only):
//  - every product sum (q.k over headDim, p v over keys, and the gradients'
//    sums) is one chain of fused multiply-adds from zero, in ascending index
//    order: s = fma(a_i, b_i, s);
//  - forward, per row and key block in ascending order: scores s = (q.k)
//    scale; m' = max(m, max s); a = exp(m - m'); p = exp(s - m');
//    l = l a + sum p (Reduce.h's fixed 8-lane order over the block);
//    o = o a, then o = fma(p_j, v_j, o) over the block's keys ascending;
//    at the end out = o / l and lse = m + log(l). A block's masked keys
//    enter with p = 0;
//  - backward: p = exp(s - lse), ds = p (dout.v - dout.out) scale; dq sums
//    over keys ascending; dk and dv over (query head of the group, query)
//    ascending. One thread owns a (batch, kv head) pair in the backward and
//    a (batch, head, query block) in the forward, so no sum is ever split
//    across threads and the bits do not depend on the thread count, nor on
//    whether the AVX-512 or the portable micro-kernel ran (both perform the
//    same fused multiply-adds).
// On the diagonal of a causal attention, bands of 6 rows (the micro-
// kernel's height) compute only the scores their rows see and sum only the
// terms that are not 0 * x (a masked key's p and ds are 0): leaving out
// 0 * x leaves a sum of finite values as it is, and within a band a masked
// key's value still enters as 0 * v, so a non-finite value of a key a row
// cannot see may make that row NaN (training produces finite values until
// it has diverged).
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CPU_ATTENTION_H
#define PIPERT_KERNELS_CPU_ATTENTION_H

#include "kernels/cpu/Numerics.h"

#include <cstdint>

namespace pipert::cpu {

/// Query rows and keys per block. It fixes the online softmax's order.
constexpr int64_t kAttentionBlock = 64;

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
// Out of line (Attention.cpp: its micro-kernels are compiled once, for the
// library's machine). `portable` forces the portable micro-kernel (tests).
void attentionForward(float *out, float *lse, const float *q, const float *k,
                      const float *v, const AttentionShape &s,
                      bool portable = false);
void attentionForward(double *out, double *lse, const double *q,
                      const double *k, const double *v, const AttentionShape &s,
                      bool portable = false);
void attentionBackwardB(float *dq, float *dk, float *dv, const float *dout,
                        const float *q, const float *k, const float *v,
                        const float *out, const float *lse,
                        const AttentionShape &s, bool portable = false);
void attentionBackwardB(double *dq, double *dk, double *dv, const double *dout,
                        const double *q, const double *k, const double *v,
                        const double *out, const double *lse,
                        const AttentionShape &s, bool portable = false);

/// The shape with the fields the pack S fixes (in the order batch, seqQ,
/// seqKV, heads, kvHeads, headDim, causal: the integers of kernel.call
/// "attention_*").
template <int64_t... S>
inline AttentionShape fixedAttentionShape(const AttentionShape &s) {
  AttentionShape f = s;
  f.batch = fixedOr<0, S...>(s.batch);
  f.seqQ = fixedOr<1, S...>(s.seqQ);
  f.seqKV = fixedOr<2, S...>(s.seqKV);
  f.heads = fixedOr<3, S...>(s.heads);
  f.kvHeads = fixedOr<4, S...>(s.kvHeads);
  f.headDim = fixedOr<5, S...>(s.headDim);
  f.causal = fixedOr<6, S...>(int64_t(s.causal)) != 0;
  return f;
}
} // namespace detail

/// out = softmax(scale q k^T + mask) v per head; lse = log-sum-exp per row.
template <typename T, int64_t... S>
inline void attentionForward(T *out, T *lse, const T *q, const T *k, const T *v,
                             const AttentionShape &s) {
  detail::attentionForward(out, lse, q, k, v,
                           detail::fixedAttentionShape<S...>(s));
}

/// B: dq, dk, dv (overwritten) from dout and the saved out and lse.
template <typename T, int64_t... S>
inline void attentionBackwardB(T *dq, T *dk, T *dv, const T *dout, const T *q,
                               const T *k, const T *v, const T *out,
                               const T *lse, const AttentionShape &s) {
  detail::attentionBackwardB(dq, dk, dv, dout, q, k, v, out, lse,
                             detail::fixedAttentionShape<S...>(s));
}

} // namespace pipert::cpu

#endif // PIPERT_KERNELS_CPU_ATTENTION_H
