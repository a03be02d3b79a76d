//===- CrossEntropy.h - Softmax cross-entropy fused with its gradient -----===//
//
// logits are [rows, stride] (rows = batch * seq), of which the first
// vocab columns are classes (stride > vocab: a vocabulary padded for
// aligned GEMMs, docs/NUMERICS.md; the padding is read by nothing and gets
// a zero gradient); targets [rows] (i32). Per row, loss =
// logsumexp(logits[:vocab]) - logits[target]. stride 0 means vocab.
//
// Numerics: per row, the maximum is subtracted before exp, the sum of
// exponentials uses the fixed 8-lane order of Reduce.h in T; rows are split
// across threads. The mean loss adds the per-row losses in ascending row
// order in a double accumulator and rounds once to T. The backward pass
// writes dlogits = (softmax - onehot) * scale directly and may run in place
// (dlogits == logits), so the loss needs no [rows, vocab] buffer besides the
// logits; scale lets the caller divide by the token count of the whole
// global batch rather than by rows.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CPU_CROSSENTROPY_H
#define PIPERT_KERNELS_CPU_CROSSENTROPY_H

#include "kernels/cpu/Numerics.h"

#include "kernels/cpu/Reduce.h"
#include "kernels/cpu/Status.h"
#include "kernels/cpu/VecMath.h"

#include <cmath>
#include <cstdint>
#include <vector>

namespace pipert::cpu {

namespace detail {

/// Checks every target before anything is written (out of line: the
/// message formatting is cold).
Status checkTargets(const char *kernel, const int32_t *targets, int64_t rows,
                    int64_t vocab);

/// The row maximum and the sum of exp(x - max) of one row of logits.
template <typename T>
inline void rowStats(const T *x, int64_t vocab, T &mx, T &sum) {
  mx = -INFINITY;
  for (int64_t i = 0; i < vocab; ++i)
    mx = x[i] > mx ? x[i] : mx;
  T m = mx;
  sum = reduceFixed<T>(vocab, [x, m](int64_t i) { return vecExp(x[i] - m); });
}

/// One row of the gradient: g = (softmax(x) - onehot(target)) * sc, the
/// exponentials written into g first and summed there (each x[i] is read
/// before g[i] is written, so g may alias x). The sum has the bits of
/// rowStats's (the same terms in the same fixed order, one exp each);
/// returns the row maximum and that sum.
template <typename T>
inline void softmaxGradRow(T *g, const T *x, int32_t target, int64_t vocab,
                           T sc, T &mx, T &sum) {
  mx = -INFINITY;
  for (int64_t i = 0; i < vocab; ++i)
    mx = x[i] > mx ? x[i] : mx;
  for (int64_t i = 0; i < vocab; ++i)
    g[i] = vecExp(x[i] - mx);
  sum = sumFixed(g, vocab);
  for (int64_t i = 0; i < vocab; ++i) {
    T p = g[i] / sum;
    g[i] = (i == target ? p - T(1) : p) * sc;
  }
}

/// The row stride: the static shape's third entry, else `arg`, and 0 (or
/// absent) means `vocab`.
template <int I, int64_t... S>
inline int64_t strideOr(int64_t arg, int64_t vocab) {
  int64_t s = fixedOr<I, S...>(arg);
  return s > 0 ? s : vocab;
}

/// The padded columns [vocab, stride) of one gradient row: zero.
template <typename T>
inline void zeroPadding(T *g, int64_t vocab, int64_t stride) {
  for (int64_t i = vocab; i < stride; ++i)
    g[i] = T(0);
}

/// The mean of the per-row losses, added in ascending rows in double.
template <typename T> inline T meanLoss(const T *per, int64_t rows) {
  double total = 0;
  for (int64_t r = 0; r < rows; ++r)
    total += double(per[r]);
  return T(rows ? total / double(rows) : 0.0);
}

} // namespace detail

/// *loss = mean over rows of the per-row loss; rowLosses[rows] gets each
/// row's loss when not null. Fails (writing nothing) on a target outside
/// [0, vocab).
template <typename T, int64_t... S>
inline Status crossEntropyForward(T *loss, T *rowLosses, const T *logits,
                                  const int32_t *targets, int64_t rowsArg,
                                  int64_t vocabArg, int64_t strideArg = 0) {
  const int64_t rows = detail::fixedOr<0, S...>(rowsArg);
  const int64_t vocab = detail::fixedOr<1, S...>(vocabArg);
  const int64_t stride = detail::strideOr<2, S...>(strideArg, vocab);
  Status st = detail::checkTargets("cross_entropy", targets, rows, vocab);
  if (!st.ok())
    return st;
  std::vector<T> local;
  T *per = rowLosses;
  if (!per) {
    local.resize(static_cast<size_t>(rows));
    per = local.data();
  }
#pragma omp parallel for schedule(static)                                      \
    if (rows * vocab * 8 >= detail::kParallelWork)
  for (int64_t r = 0; r < rows; ++r) {
    const T *x = logits + r * stride;
    T mx, sum;
    detail::rowStats(x, vocab, mx, sum);
    per[r] = (mx + std::log(sum)) - x[targets[r]];
  }
  *loss = detail::meanLoss(per, rows);
  return Status::success();
}

/// B: dlogits = (softmax(logits) - onehot(targets)) * scale; dlogits may be
/// logits itself. Fails (writing nothing) on a target outside [0, vocab).
template <typename T, int64_t... S>
inline Status crossEntropyBackward(T *dlogits, const T *logits,
                                   const int32_t *targets, int64_t rowsArg,
                                   int64_t vocabArg, double scale,
                                   int64_t strideArg = 0) {
  const int64_t rows = detail::fixedOr<0, S...>(rowsArg);
  const int64_t vocab = detail::fixedOr<1, S...>(vocabArg);
  const int64_t stride = detail::strideOr<2, S...>(strideArg, vocab);
  Status st =
      detail::checkTargets("cross_entropy backward", targets, rows, vocab);
  if (!st.ok())
    return st;
  const T sc = T(scale);
#pragma omp parallel for schedule(static)                                      \
    if (rows * vocab * 10 >= detail::kParallelWork)
  for (int64_t r = 0; r < rows; ++r) {
    T mx, sum;
    detail::softmaxGradRow(dlogits + r * stride, logits + r * stride,
                           targets[r], vocab, sc, mx, sum);
    detail::zeroPadding(dlogits + r * stride, vocab, stride);
  }
  return Status::success();
}

/// The loss and its gradient in one pass over each row (the fused unit of
/// the training step's loss): *loss as crossEntropyForward, dlogits as
/// crossEntropyBackward with scale = *lossScale / rows (the division in
/// double, docs/AUTODIFF.md), with the bits of the two. Fails (writing
/// nothing) on a target outside [0, vocab).
template <typename T, int64_t... S>
inline Status softmaxCrossEntropy(T *loss, T *dlogits, const T *logits,
                                  const int32_t *targets,
                                  const double *lossScale, int64_t rowsArg,
                                  int64_t vocabArg, int64_t strideArg = 0) {
  const int64_t rows = detail::fixedOr<0, S...>(rowsArg);
  const int64_t vocab = detail::fixedOr<1, S...>(vocabArg);
  const int64_t stride = detail::strideOr<2, S...>(strideArg, vocab);
  Status st = detail::checkTargets("cross_entropy", targets, rows, vocab);
  if (!st.ok())
    return st;
  const T sc = T(*lossScale / double(rows));
  std::vector<T> per(static_cast<size_t>(rows));
#pragma omp parallel for schedule(static)                                      \
    if (rows * vocab * 10 >= detail::kParallelWork)
  for (int64_t r = 0; r < rows; ++r) {
    const T *x = logits + r * stride;
    const T target = x[targets[r]]; // read before g, which may alias x
    T mx, sum;
    detail::softmaxGradRow(dlogits + r * stride, x, targets[r], vocab, sc, mx,
                           sum);
    detail::zeroPadding(dlogits + r * stride, vocab, stride);
    per[size_t(r)] = (mx + std::log(sum)) - target;
  }
  *loss = detail::meanLoss(per.data(), rows);
  return Status::success();
}

} // namespace pipert::cpu

#endif // PIPERT_KERNELS_CPU_CROSSENTROPY_H
