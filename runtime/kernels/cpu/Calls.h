//===- Calls.h - the cpu kernels as kernel.call runs them ------------------===//
//
// One function per entry of KernelList.def, named as the kernel.call names
// it, taking its pointers (results, state, operands), then its integers,
// then its reals, and returning a Status. Each forwards to the kernel of
// this library that implements it; the pack S holds the integers when the
// caller knows them at compile time (emitted chunks: every shape), and is
// empty in the reference executor, which passes them at run time. This file
// is the only map from a kernel.call to C++; it holds no loops.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CPU_CALLS_H
#define PIPERT_KERNELS_CPU_CALLS_H

#include "kernels/cpu/Numerics.h"

#include "kernels/cpu/Activation.h"
#include "kernels/cpu/AdamW.h"
#include "kernels/cpu/Attention.h"
#include "kernels/cpu/CrossEntropy.h"
#include "kernels/cpu/Elementwise.h"
#include "kernels/cpu/Embedding.h"
#include "kernels/cpu/Fused.h"
#include "kernels/cpu/Matmul.h"
#include "kernels/cpu/Norm.h"
#include "kernels/cpu/Rope.h"
#include "kernels/cpu/Shape.h"
#include "kernels/cpu/Softmax.h"
#include "kernels/cpu/Status.h"
#include "pipert/LrSchedule.h"

#include <cstdint>
#include <vector>

namespace pipert::cpu::call {

using cpu::detail::fixedOr;
using pipert::LrSchedule;

//===----------------------------------------------------------------------===//
// Forward
//===----------------------------------------------------------------------===//

template <typename T, int64_t... S>
inline Status embedding_forward(T *out, const T *table, const int32_t *ids,
                                int64_t tokens, int64_t vocab, int64_t dim) {
  return embeddingForward<T, S...>(out, table, ids, tokens, vocab, dim);
}

template <typename T, int64_t... S>
inline Status position_embedding_forward(T *out, const T *table,
                                         int64_t length, int64_t dim) {
  positionEmbeddingForward<T, S...>(out, table, length, dim);
  return Status::success();
}

template <typename T, int64_t... S>
inline Status matmul_forward(T *y, const T *x, const T *w, int64_t m,
                             int64_t k, int64_t n, int64_t transposeRhs) {
  matmulForward<T, S...>(y, x, w, nullptr, m, k, n, transposeRhs != 0);
  return Status::success();
}

template <typename T, int64_t... S>
inline Status matmul_bias_forward(T *y, const T *x, const T *w,
                                  const T *bias, int64_t m, int64_t k,
                                  int64_t n, int64_t transposeRhs) {
  matmulForward<T, S...>(y, x, w, bias, m, k, n, transposeRhs != 0);
  return Status::success();
}

template <typename T, int64_t... S>
inline Status add_forward(T *y, const T *a, const T *b, int64_t n,
                          int64_t bn) {
  addForward<T, S...>(y, a, b, n, bn);
  return Status::success();
}

template <typename T, int64_t... S>
inline Status mul_forward(T *y, const T *a, const T *b, int64_t n,
                          int64_t bn) {
  mulForward<T, S...>(y, a, b, n, bn);
  return Status::success();
}

template <typename T, int64_t... S>
inline Status gelu_forward(T *y, const T *x, int64_t n) {
  geluForward<T, S...>(y, x, n);
  return Status::success();
}

template <typename T, int64_t... S>
inline Status silu_forward(T *y, const T *x, int64_t n) {
  siluForward<T, S...>(y, x, n);
  return Status::success();
}

template <typename T, int64_t... S>
inline Status softmax_forward(T *y, const T *x, int64_t rows, int64_t dim) {
  softmaxForward<T, S...>(y, x, rows, dim);
  return Status::success();
}

template <typename T, int64_t... S>
inline Status slice_forward(T *y, const T *x, int64_t outer, int64_t dim,
                            int64_t inner, int64_t offset, int64_t size) {
  sliceForward<T, S...>(y, x, outer, dim, inner, offset, size);
  return Status::success();
}

/// Reshape (row-major order kept) and any other plain copy.
template <typename T, int64_t... S>
inline Status copy(T *y, const T *x, int64_t n) {
  reshapeForward<T, S...>(y, x, n);
  return Status::success();
}

/// x's dims d0..d5 and the permutation p0..p5, the lowering having padded
/// lower ranks with leading axes of size 1 that stay in place.
template <typename T, int64_t... S>
inline Status transpose_forward(T *y, const T *x, int64_t d0, int64_t d1,
                                int64_t d2, int64_t d3, int64_t d4,
                                int64_t d5, int64_t p0, int64_t p1,
                                int64_t p2, int64_t p3, int64_t p4,
                                int64_t p5) {
  const int64_t dims[6] = {d0, d1, d2, d3, d4, d5};
  const int64_t perm[6] = {p0, p1, p2, p3, p4, p5};
  transposeForward<T, S...>(y, x, dims, perm, 6);
  return Status::success();
}

template <typename T, int64_t... S>
inline Status rope_forward(T *y, const T *x, int64_t batch, int64_t seq,
                           int64_t heads, int64_t headDim, double theta) {
  ropeForward<T, S...>(y, x, batch, seq, heads, headDim, theta);
  return Status::success();
}

template <typename T, int64_t... S>
inline Status layernorm_forward(T *y, T *mean, T *rstd, const T *x,
                                const T *gamma, const T *beta, int64_t rows,
                                int64_t dim, double eps) {
  layernormForward<T, S...>(y, mean, rstd, x, gamma, beta, rows, dim, eps);
  return Status::success();
}

template <typename T, int64_t... S>
inline Status rmsnorm_forward(T *y, T *rstd, const T *x, const T *gamma,
                              int64_t rows, int64_t dim, double eps) {
  rmsnormForward<T, S...>(y, rstd, x, gamma, rows, dim, eps);
  return Status::success();
}

namespace args {
/// The shape struct of the attention kernels from the call's integers (the
/// kernels fix its fields from their own pack S).
inline AttentionShape attentionShape(int64_t batch, int64_t seqQ,
                                     int64_t seqKV, int64_t heads,
                                     int64_t kvHeads, int64_t headDim,
                                     int64_t causal, double scale) {
  AttentionShape s;
  s.batch = batch;
  s.seqQ = seqQ;
  s.seqKV = seqKV;
  s.heads = heads;
  s.kvHeads = kvHeads;
  s.headDim = headDim;
  s.causal = causal != 0;
  s.scale = scale;
  return s;
}
} // namespace args

template <typename T, int64_t... S>
inline Status attention_forward(T *out, T *lse, const T *q, const T *k,
                                const T *v, int64_t batch, int64_t seqQ,
                                int64_t seqKV, int64_t heads, int64_t kvHeads,
                                int64_t headDim, int64_t causal,
                                double scale) {
  attentionForward<T, S...>(out, lse, q, k, v,
                            args::attentionShape(batch, seqQ, seqKV,
                                                         heads, kvHeads,
                                                         headDim, causal,
                                                         scale));
  return Status::success();
}

/// The mean cross-entropy of the rows (inference form: no gradient) over
/// the first `vocab` of each row's `stride` logits.
template <typename T, int64_t... S>
inline Status cross_entropy_forward(T *loss, const T *logits,
                                    const int32_t *targets, int64_t rows,
                                    int64_t vocab, int64_t stride) {
  return crossEntropyForward<T, S...>(loss, nullptr, logits, targets, rows,
                                      vocab, stride);
}

/// The loss and dlogits = (softmax - onehot) * lossScale / rows, the
/// division in double (docs/AUTODIFF.md); padded columns get zero.
template <typename T, int64_t... S>
inline Status softmax_cross_entropy(T *loss, T *dlogits, const T *logits,
                                    const int32_t *targets,
                                    const double *lossScale, int64_t rows,
                                    int64_t vocab, int64_t stride) {
  return softmaxCrossEntropy<T, S...>(loss, dlogits, logits, targets,
                                      lossScale, rows, vocab, stride);
}

//===----------------------------------------------------------------------===//
// Fused forward units (--nn-fuse)
//===----------------------------------------------------------------------===//

template <typename T, int64_t... S>
inline Status matmul_gelu_forward(T *pre, T *y, const T *x, const T *w,
                                  int64_t m, int64_t k, int64_t n,
                                  int64_t transposeRhs) {
  matmulGeluForward<T, S...>(pre, y, x, w, nullptr, m, k, n,
                             transposeRhs != 0);
  return Status::success();
}

template <typename T, int64_t... S>
inline Status matmul_bias_gelu_forward(T *pre, T *y, const T *x, const T *w,
                                       const T *bias, int64_t m, int64_t k,
                                       int64_t n, int64_t transposeRhs) {
  matmulGeluForward<T, S...>(pre, y, x, w, bias, m, k, n, transposeRhs != 0);
  return Status::success();
}

template <typename T, int64_t... S>
inline Status add_layernorm_forward(T *sum, T *y, T *mean, T *rstd,
                                    const T *a, const T *b, const T *gamma,
                                    const T *beta, int64_t rows, int64_t dim,
                                    double eps) {
  addLayernormForward<T, S...>(sum, y, mean, rstd, a, b, gamma, beta, rows,
                               dim, eps);
  return Status::success();
}

template <typename T, int64_t... S>
inline Status add_rmsnorm_forward(T *sum, T *y, T *rstd, const T *a,
                                  const T *b, const T *gamma, int64_t rows,
                                  int64_t dim, double eps) {
  addRmsnormForward<T, S...>(sum, y, rstd, a, b, gamma, rows, dim, eps);
  return Status::success();
}

//===----------------------------------------------------------------------===//
// B: gradients with respect to activations (written, never accumulated)
//===----------------------------------------------------------------------===//

template <typename T, int64_t... S>
inline Status matmul_backward_b(T *dx, const T *dy, const T *w, int64_t m,
                                int64_t k, int64_t n, int64_t transposeRhs) {
  matmulBackwardB<T, S...>(dx, dy, w, m, k, n, transposeRhs != 0, false);
  return Status::success();
}

template <typename T, int64_t... S>
inline Status layernorm_backward_b(T *dx, const T *dy, const T *x,
                                   const T *mean, const T *rstd,
                                   const T *gamma, int64_t rows, int64_t dim) {
  layernormBackwardB<T, S...>(dx, dy, x, mean, rstd, gamma, rows, dim, false);
  return Status::success();
}

template <typename T, int64_t... S>
inline Status rmsnorm_backward_b(T *dx, const T *dy, const T *x,
                                 const T *rstd, const T *gamma, int64_t rows,
                                 int64_t dim) {
  rmsnormBackwardB<T, S...>(dx, dy, x, rstd, gamma, rows, dim, false);
  return Status::success();
}

template <typename T, int64_t... S>
inline Status gelu_backward_b(T *dx, const T *dy, const T *x, int64_t n) {
  geluBackwardB<T, S...>(dx, dy, x, n, false);
  return Status::success();
}

template <typename T, int64_t... S>
inline Status silu_backward_b(T *dx, const T *dy, const T *x, int64_t n) {
  siluBackwardB<T, S...>(dx, dy, x, n, false);
  return Status::success();
}

template <typename T, int64_t... S>
inline Status softmax_backward_b(T *dx, const T *dy, const T *y, int64_t rows,
                                 int64_t dim) {
  softmaxBackwardB<T, S...>(dx, dy, y, rows, dim, false);
  return Status::success();
}

/// The broadcast operand's gradient of add: written (B) or added into an
/// accumulator (W).
template <typename T, int64_t... S>
inline Status add_backward_broadcast(T *db, const T *dy, int64_t n,
                                     int64_t bn, int64_t accumulate) {
  addBackwardBroadcast<T, S...>(db, dy, n, bn, accumulate != 0);
  return Status::success();
}

template <typename T, int64_t... S>
inline Status mul_backward_lhs(T *da, const T *dy, const T *b, int64_t n,
                               int64_t bn) {
  mulBackwardLhs<T, S...>(da, dy, b, n, bn, false);
  return Status::success();
}

template <typename T, int64_t... S>
inline Status mul_backward_rhs(T *db, const T *dy, const T *a, int64_t n,
                               int64_t bn, int64_t accumulate) {
  mulBackwardRhs<T, S...>(db, dy, a, n, bn, accumulate != 0);
  return Status::success();
}

template <typename T, int64_t... S>
inline Status slice_backward_b(T *dx, const T *dy, int64_t outer, int64_t dim,
                               int64_t inner, int64_t offset, int64_t size) {
  sliceBackwardB<T, S...>(dx, dy, outer, dim, inner, offset, size, false);
  return Status::success();
}

template <typename T, int64_t... S>
inline Status slices3_backward_b(T *dx, const T *dy0, const T *dy1,
                                 const T *dy2, int64_t outer, int64_t dim,
                                 int64_t inner, int64_t off0, int64_t size0,
                                 int64_t off1, int64_t size1, int64_t off2,
                                 int64_t size2) {
  slices3BackwardB<T, S...>(dx, dy0, dy1, dy2, outer, dim, inner, off0, size0,
                            off1, size1, off2, size2);
  return Status::success();
}

template <typename T, int64_t... S>
inline Status rope_backward_b(T *dx, const T *dy, int64_t batch, int64_t seq,
                              int64_t heads, int64_t headDim, double theta) {
  ropeBackwardB<T, S...>(dx, dy, batch, seq, heads, headDim, theta, false);
  return Status::success();
}

template <typename T, int64_t... S>
inline Status attention_backward_b(T *dq, T *dk, T *dv, const T *dout,
                                   const T *q, const T *k, const T *v,
                                   const T *out, const T *lse, int64_t batch,
                                   int64_t seqQ, int64_t seqKV, int64_t heads,
                                   int64_t kvHeads, int64_t headDim,
                                   int64_t causal, double scale) {
  attentionBackwardB<T, S...>(dq, dk, dv, dout, q, k, v, out, lse,
                              args::attentionShape(batch, seqQ, seqKV,
                                                           heads, kvHeads,
                                                           headDim, causal,
                                                           scale));
  return Status::success();
}

//===----------------------------------------------------------------------===//
// W: adds into parameter accumulators
//===----------------------------------------------------------------------===//

template <typename T, int64_t... S>
inline Status matmul_backward_w(T *dw, const T *x, const T *dy, int64_t m,
                                int64_t k, int64_t n, int64_t transposeRhs) {
  matmulBackwardW<T, S...>(dw, nullptr, x, dy, m, k, n, transposeRhs != 0);
  return Status::success();
}

template <typename T, int64_t... S>
inline Status matmul_bias_backward_w(T *dw, T *dbias, const T *x, const T *dy,
                                     int64_t m, int64_t k, int64_t n,
                                     int64_t transposeRhs) {
  matmulBackwardW<T, S...>(dw, dbias, x, dy, m, k, n, transposeRhs != 0);
  return Status::success();
}

template <typename T, int64_t... S>
inline Status layernorm_backward_w(T *dgamma, T *dbeta, const T *dy,
                                   const T *x, const T *mean, const T *rstd,
                                   int64_t rows, int64_t dim) {
  layernormBackwardW<T, S...>(dgamma, dbeta, dy, x, mean, rstd, rows, dim);
  return Status::success();
}

template <typename T, int64_t... S>
inline Status rmsnorm_backward_w(T *dgamma, const T *dy, const T *x,
                                 const T *rstd, int64_t rows, int64_t dim) {
  rmsnormBackwardW<T, S...>(dgamma, dy, x, rstd, rows, dim);
  return Status::success();
}

template <typename T, int64_t... S>
inline Status embedding_backward_w(T *dtable, const T *dy, const int32_t *ids,
                                   int64_t tokens, int64_t vocab,
                                   int64_t dim) {
  return embeddingBackwardW<T, S...>(dtable, dy, ids, tokens, vocab, dim);
}

template <typename T, int64_t... S>
inline Status position_embedding_backward_w(T *dtable, const T *dy,
                                            int64_t length, int64_t dim) {
  positionEmbeddingBackwardW<T, S...>(dtable, dy, length, dim);
  return Status::success();
}

/// y (+)= x: a gradient added into an accumulator.
template <typename T, int64_t... S>
inline Status accumulate(T *y, const T *x, int64_t n, int64_t accumulate) {
  accumulateInto<T, S...>(y, x, n, accumulate != 0);
  return Status::success();
}

//===----------------------------------------------------------------------===//
// The optimizer step (the reference executor runs these; a compiled plan's
// plan.cpp calls the same kernels per parameter)
//===----------------------------------------------------------------------===//

/// g = the per-use accumulators added in use order (zeros for none).
template <typename T, int64_t... S>
inline Status sum_uses(T *g, const T *const *accs, int64_t uses, int64_t n) {
  if (uses == 0)
    for (int64_t i = 0; i < n; ++i)
      g[i] = T(0);
  for (int64_t u = 0; u < uses; ++u)
    accumulateInto<T>(g, accs[u], n, u > 0);
  return Status::success();
}

template <typename T, int64_t... S>
inline Status sum_squares(double *out, const T *x, int64_t n) {
  *out = sumOfSquares<T, S...>(x, n);
  return Status::success();
}

/// The global norm: the per-parameter squares, gathered in declaration
/// order, added in ascending index by globalNorm.
template <typename T, int64_t... S>
inline Status grad_norm(double *out, const double *const *squares,
                        int64_t count) {
  std::vector<double> gathered(size_t(count > 0 ? count : 0));
  for (int64_t i = 0; i < count; ++i)
    gathered[size_t(i)] = *squares[i];
  *out = globalNorm(gathered.data(), count);
  return Status::success();
}

template <typename T, int64_t... S>
inline Status clip_scale(double *out, const double *norm, double maxNorm) {
  *out = clipScale(*norm, maxNorm);
  return Status::success();
}

/// The learning rate of the step (pipert::LrSchedule, docs/TRAINING.md).
template <typename T, int64_t... S>
inline Status lr_schedule(double *out, const int64_t *step, int64_t warmup,
                          int64_t decaySteps, int64_t cosine, double lr,
                          double minLr) {
  LrSchedule s;
  s.lr = lr;
  s.minLr = minLr;
  s.warmupSteps = warmup;
  s.decaySteps = decaySteps;
  s.cosine = cosine != 0;
  *out = s.at(*step);
  return Status::success();
}

template <typename T, int64_t... S>
inline Status adamw(T *param, T *m, T *v, const T *grad, const double *lr,
                    const double *clip, const int64_t *step, int64_t n,
                    int64_t decay, double beta1, double beta2, double eps,
                    double weightDecay) {
  AdamWConfig c;
  c.lr = *lr;
  c.beta1 = beta1;
  c.beta2 = beta2;
  c.eps = eps;
  c.weightDecay = weightDecay;
  // The step tensor counts from 0; AdamW's bias correction from 1.
  return adamwStep<T, S...>(param, grad, m, v, n, c, decay != 0, *step + 1,
                            *clip);
}

} // namespace pipert::cpu::call

#endif // PIPERT_KERNELS_CPU_CALLS_H
