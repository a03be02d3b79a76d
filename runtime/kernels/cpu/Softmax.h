//===- Softmax.h - Softmax over the last axis ----------------------------===//
//
// x is [rows, dim]. Numerics: per row, the maximum is subtracted before exp
// (exact, order-free); the sum of exponentials and the backward projection
// sum(dy * y) use the fixed 8-lane order of Reduce.h in T. Rows are split
// across threads. The backward pass reads the saved output y.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CPU_SOFTMAX_H
#define PIPERT_KERNELS_CPU_SOFTMAX_H

#include "kernels/cpu/Numerics.h"

#include "kernels/cpu/Reduce.h"
#include "kernels/cpu/VecMath.h"

#include <cmath>
#include <cstdint>

namespace pipert::cpu {

/// y[r, :] = exp(x[r, :] - max) / sum(exp(x[r, :] - max)).
template <typename T, int64_t... S>
inline void softmaxForward(T *y, const T *x, int64_t rowsArg, int64_t dimArg) {
  const int64_t rows = detail::fixedOr<0, S...>(rowsArg);
  const int64_t dim = detail::fixedOr<1, S...>(dimArg);
#pragma omp parallel for schedule(static)                                      \
    if (rows * dim * 16 >= detail::kParallelWork)
  for (int64_t r = 0; r < rows; ++r) {
    const T *xr = x + r * dim;
    T *yr = y + r * dim;
    T mx = -INFINITY;
    for (int64_t i = 0; i < dim; ++i)
      mx = xr[i] > mx ? xr[i] : mx;
#pragma omp simd
    for (int64_t i = 0; i < dim; ++i)
      yr[i] = vecExp(xr[i] - mx);
    T sum = detail::sumFixed(yr, dim);
#pragma omp simd
    for (int64_t i = 0; i < dim; ++i)
      yr[i] = yr[i] / sum;
  }
}

/// B: dx (+)= y * (dy - sum(dy * y)) per row.
template <typename T, int64_t... S>
inline void softmaxBackwardB(T *dx, const T *dy, const T *y, int64_t rowsArg,
                             int64_t dimArg, bool accumulateArg = false) {
  const int64_t rows = detail::fixedOr<0, S...>(rowsArg);
  const int64_t dim = detail::fixedOr<1, S...>(dimArg);
  const bool accumulate =
      detail::fixedOr<2, S...>(int64_t(accumulateArg)) != 0;
#pragma omp parallel for schedule(static)                                      \
    if (rows * dim * 4 >= detail::kParallelWork)
  for (int64_t r = 0; r < rows; ++r) {
    const T *yr = y + r * dim, *gr = dy + r * dim;
    T proj = detail::dotFixed(gr, yr, dim);
    T *dxr = dx + r * dim;
#pragma omp simd
    for (int64_t i = 0; i < dim; ++i) {
      T g = yr[i] * (gr[i] - proj);
      dxr[i] = accumulate ? dxr[i] + g : g;
    }
  }
}

} // namespace pipert::cpu

#endif // PIPERT_KERNELS_CPU_SOFTMAX_H
