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

#include <cstdint>

namespace pipert::cpu {

/// y[r, :] = exp(x[r, :] - max) / sum(exp(x[r, :] - max)).
template <typename T>
void softmaxForward(T *y, const T *x, int64_t rows, int64_t dim);

/// B: dx (+)= y * (dy - sum(dy * y)) per row.
template <typename T>
void softmaxBackwardB(T *dx, const T *dy, const T *y, int64_t rows,
                      int64_t dim, bool accumulate = false);

} // namespace pipert::cpu

#endif // PIPERT_KERNELS_CPU_SOFTMAX_H
