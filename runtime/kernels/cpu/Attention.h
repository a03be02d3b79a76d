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

#include <cstdint>

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

/// out = softmax(scale q k^T + mask) v per head; lse = log-sum-exp per row.
template <typename T>
void attentionForward(T *out, T *lse, const T *q, const T *k, const T *v,
                      const AttentionShape &shape);

/// B: dq, dk, dv (overwritten) from dout and the saved out and lse.
template <typename T>
void attentionBackwardB(T *dq, T *dk, T *dv, const T *dout, const T *q,
                        const T *k, const T *v, const T *out, const T *lse,
                        const AttentionShape &shape);

} // namespace pipert::cpu

#endif // PIPERT_KERNELS_CPU_ATTENTION_H
