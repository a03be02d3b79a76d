//===- CrossEntropy.cpp - Softmax cross-entropy fused with its gradient ---===//

#include "kernels/cpu/CrossEntropy.h"

#include "kernels/cpu/Reduce.h"
#include "kernels/cpu/VecMath.h"

#include <cmath>
#include <string>
#include <vector>

namespace pipert::cpu {

/// Checks every target before anything is written.
static Status checkTargets(const char *kernel, const int32_t *targets,
                           int64_t rows, int64_t vocab) {
  for (int64_t r = 0; r < rows; ++r)
    if (targets[r] < 0 || targets[r] >= vocab)
      return Status::failure(std::string(kernel) + ": targets[" +
                             std::to_string(r) + "] = " +
                             std::to_string(targets[r]) + " is outside [0, " +
                             std::to_string(vocab) + ")");
  return Status::success();
}

/// The row maximum and the sum of exp(x - max) of one row of logits.
template <typename T>
static void rowStats(const T *x, int64_t vocab, T &mx, T &sum) {
  mx = -INFINITY;
  for (int64_t i = 0; i < vocab; ++i)
    mx = x[i] > mx ? x[i] : mx;
  T m = mx;
  sum = detail::reduceFixed<T>(vocab,
                               [x, m](int64_t i) { return vecExp(x[i] - m); });
}

template <typename T>
Status crossEntropyForward(T *loss, T *rowLosses, const T *logits,
                           const int32_t *targets, int64_t rows,
                           int64_t vocab) {
  Status st = checkTargets("cross_entropy", targets, rows, vocab);
  if (!st.ok())
    return st;
  std::vector<T> local;
  T *per = rowLosses;
  if (!per) {
    local.resize(static_cast<size_t>(rows));
    per = local.data();
  }
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const T *x = logits + r * vocab;
    T mx, sum;
    rowStats(x, vocab, mx, sum);
    per[r] = (mx + std::log(sum)) - x[targets[r]];
  }
  double total = 0;
  for (int64_t r = 0; r < rows; ++r)
    total += double(per[r]);
  *loss = T(rows ? total / double(rows) : 0.0);
  return Status::success();
}

template <typename T>
Status crossEntropyBackward(T *dlogits, const T *logits,
                            const int32_t *targets, int64_t rows,
                            int64_t vocab, double scale) {
  Status st = checkTargets("cross_entropy backward", targets, rows, vocab);
  if (!st.ok())
    return st;
  const T sc = T(scale);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const T *x = logits + r * vocab;
    T *g = dlogits + r * vocab;
    T mx = -INFINITY;
    for (int64_t i = 0; i < vocab; ++i)
      mx = x[i] > mx ? x[i] : mx;
    // The exponentials go into g first (each x[i] is read before g[i] is
    // written, so g may alias x); summing them in the fixed order gives the
    // same bits as the forward pass's rowStats with one exp per element.
    for (int64_t i = 0; i < vocab; ++i)
      g[i] = vecExp(x[i] - mx);
    T sum = detail::sumFixed(g, vocab);
    for (int64_t i = 0; i < vocab; ++i) {
      T p = g[i] / sum;
      g[i] = (i == targets[r] ? p - T(1) : p) * sc;
    }
  }
  return Status::success();
}

#define PIPERT_INSTANTIATE(T)                                                  \
  template Status crossEntropyForward<T>(T *, T *, const T *, const int32_t *, \
                                         int64_t, int64_t);                    \
  template Status crossEntropyBackward<T>(T *, const T *, const int32_t *,     \
                                          int64_t, int64_t, double);
PIPERT_INSTANTIATE(float)
PIPERT_INSTANTIATE(double)
#undef PIPERT_INSTANTIATE

} // namespace pipert::cpu
