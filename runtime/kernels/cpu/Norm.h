//===- Norm.h - LayerNorm and RMSNorm over the last axis ------------------===//
//
// x is [rows, dim] (all leading dims flattened); gamma and beta are [dim].
// The forward pass keeps the per-row statistics (mean and 1/sqrt(var + eps)
// for layernorm, 1/sqrt(mean(x^2) + eps) for rmsnorm) so the backward passes
// need not recompute them.
//
// Numerics: the per-row sums (mean, two-pass variance, the two projections
// of the backward pass) use the fixed 8-lane order of Reduce.h in the element
// type T; rows are independent and split across threads. The W gradients are
// column sums over rows in ascending order, accumulated into dgamma / dbeta
// (micro-batches add in the order they run); threads split the columns.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CPU_NORM_H
#define PIPERT_KERNELS_CPU_NORM_H

#include <cstdint>

namespace pipert::cpu {

/// y = (x - mean) * rstd * gamma + beta; writes mean[rows] and rstd[rows].
template <typename T>
void layernormForward(T *y, T *mean, T *rstd, const T *x, const T *gamma,
                      const T *beta, int64_t rows, int64_t dim, double eps);

/// B: dx (+)= rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma,
/// xhat = (x - mean) * rstd.
template <typename T>
void layernormBackwardB(T *dx, const T *dy, const T *x, const T *mean,
                        const T *rstd, const T *gamma, int64_t rows,
                        int64_t dim, bool accumulate = false);

/// W: dgamma += sum over rows of dy * xhat; dbeta += sum over rows of dy.
template <typename T>
void layernormBackwardW(T *dgamma, T *dbeta, const T *dy, const T *x,
                        const T *mean, const T *rstd, int64_t rows,
                        int64_t dim);

/// y = x * rstd * gamma; writes rstd[rows].
template <typename T>
void rmsnormForward(T *y, T *rstd, const T *x, const T *gamma, int64_t rows,
                    int64_t dim, double eps);

/// B: dx (+)= rstd * (g - xhat * mean(g * xhat)), g = dy * gamma,
/// xhat = x * rstd.
template <typename T>
void rmsnormBackwardB(T *dx, const T *dy, const T *x, const T *rstd,
                      const T *gamma, int64_t rows, int64_t dim,
                      bool accumulate = false);

/// W: dgamma += sum over rows of dy * xhat.
template <typename T>
void rmsnormBackwardW(T *dgamma, const T *dy, const T *x, const T *rstd,
                      int64_t rows, int64_t dim);

} // namespace pipert::cpu

#endif // PIPERT_KERNELS_CPU_NORM_H
