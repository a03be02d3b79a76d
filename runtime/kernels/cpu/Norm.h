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

#include "kernels/cpu/Numerics.h"

#include "kernels/cpu/Reduce.h"

#include <cmath>
#include <cstdint>

namespace pipert::cpu {

namespace detail {
/// One row of layernorm: the two-pass statistics in the fixed order, then
/// yr = (xr - mean) * rstd * gamma + beta. layernormForward and the fused
/// residual add + layernorm (Fused.h) both run it.
template <typename T>
inline void layernormRow(T *yr, T &mean, T &rstd, const T *xr,
                         const T *gamma, const T *beta, int64_t dim,
                         double eps) {
  T mu = sumFixed(xr, dim) / T(dim);
  T var = reduceFixed<T>(dim, [xr, mu](int64_t i) {
            T d = xr[i] - mu;
            return d * d;
          }) /
          T(dim);
  T rs = T(1) / std::sqrt(var + T(eps));
#pragma omp simd
  for (int64_t i = 0; i < dim; ++i)
    yr[i] = (xr[i] - mu) * rs * gamma[i] + beta[i];
  mean = mu;
  rstd = rs;
}

/// One row of rmsnorm: yr = xr * rstd * gamma (rmsnormForward and the
/// fused residual add + rmsnorm).
template <typename T>
inline void rmsnormRow(T *yr, T &rstd, const T *xr, const T *gamma,
                       int64_t dim, double eps) {
  T ms = dotFixed(xr, xr, dim) / T(dim);
  T rs = T(1) / std::sqrt(ms + T(eps));
#pragma omp simd
  for (int64_t i = 0; i < dim; ++i)
    yr[i] = xr[i] * rs * gamma[i];
  rstd = rs;
}
} // namespace detail

/// y = (x - mean) * rstd * gamma + beta; writes mean[rows] and rstd[rows].
template <typename T, int64_t... S>
inline void layernormForward(T *y, T *mean, T *rstd, const T *x,
                             const T *gamma, const T *beta, int64_t rowsArg,
                             int64_t dimArg, double eps) {
  const int64_t rows = detail::fixedOr<0, S...>(rowsArg);
  const int64_t dim = detail::fixedOr<1, S...>(dimArg);
#pragma omp parallel for schedule(static)                                      \
    if (rows * dim * 4 >= detail::kParallelWork)
  for (int64_t r = 0; r < rows; ++r)
    detail::layernormRow(y + r * dim, mean[r], rstd[r], x + r * dim, gamma,
                         beta, dim, eps);
}

/// B: dx (+)= rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma,
/// xhat = (x - mean) * rstd.
template <typename T, int64_t... S>
inline void layernormBackwardB(T *dx, const T *dy, const T *x, const T *mean,
                               const T *rstd, const T *gamma, int64_t rowsArg,
                               int64_t dimArg, bool accumulateArg = false) {
  const int64_t rows = detail::fixedOr<0, S...>(rowsArg);
  const int64_t dim = detail::fixedOr<1, S...>(dimArg);
  const bool accumulate =
      detail::fixedOr<2, S...>(int64_t(accumulateArg)) != 0;
#pragma omp parallel for schedule(static)                                      \
    if (rows * dim * 8 >= detail::kParallelWork)
  for (int64_t r = 0; r < rows; ++r) {
    const T *xr = x + r * dim, *gr = dy + r * dim;
    T mu = mean[r], rs = rstd[r];
    T meanG = detail::reduceFixed<T>(dim, [gr, gamma](int64_t i) {
                return gr[i] * gamma[i];
              }) /
              T(dim);
    T meanGX = detail::reduceFixed<T>(dim, [=](int64_t i) {
                 return gr[i] * gamma[i] * ((xr[i] - mu) * rs);
               }) /
               T(dim);
    T *dxr = dx + r * dim;
#pragma omp simd
    for (int64_t i = 0; i < dim; ++i) {
      T xhat = (xr[i] - mu) * rs;
      T g = (gr[i] * gamma[i] - meanG - xhat * meanGX) * rs;
      dxr[i] = accumulate ? dxr[i] + g : g;
    }
  }
}

/// W: dgamma += sum over rows of dy * xhat; dbeta += sum over rows of dy.
template <typename T, int64_t... S>
inline void layernormBackwardW(T *dgamma, T *dbeta, const T *dy, const T *x,
                               const T *mean, const T *rstd, int64_t rowsArg,
                               int64_t dimArg) {
  const int64_t rows = detail::fixedOr<0, S...>(rowsArg);
  const int64_t dim = detail::fixedOr<1, S...>(dimArg);
  detail::columnSums<T>(dgamma, rows, dim, true, [=](int64_t r, int64_t c) {
    return dy[r * dim + c] * ((x[r * dim + c] - mean[r]) * rstd[r]);
  });
  detail::columnSums<T>(dbeta, rows, dim, true, [=](int64_t r, int64_t c) {
    return dy[r * dim + c];
  });
}

/// y = x * rstd * gamma; writes rstd[rows].
template <typename T, int64_t... S>
inline void rmsnormForward(T *y, T *rstd, const T *x, const T *gamma,
                           int64_t rowsArg, int64_t dimArg, double eps) {
  const int64_t rows = detail::fixedOr<0, S...>(rowsArg);
  const int64_t dim = detail::fixedOr<1, S...>(dimArg);
#pragma omp parallel for schedule(static)                                      \
    if (rows * dim * 3 >= detail::kParallelWork)
  for (int64_t r = 0; r < rows; ++r)
    detail::rmsnormRow(y + r * dim, rstd[r], x + r * dim, gamma, dim, eps);
}

/// B: dx (+)= rstd * (g - xhat * mean(g * xhat)), g = dy * gamma,
/// xhat = x * rstd.
template <typename T, int64_t... S>
inline void rmsnormBackwardB(T *dx, const T *dy, const T *x, const T *rstd,
                             const T *gamma, int64_t rowsArg, int64_t dimArg,
                             bool accumulateArg = false) {
  const int64_t rows = detail::fixedOr<0, S...>(rowsArg);
  const int64_t dim = detail::fixedOr<1, S...>(dimArg);
  const bool accumulate =
      detail::fixedOr<2, S...>(int64_t(accumulateArg)) != 0;
#pragma omp parallel for schedule(static)                                      \
    if (rows * dim * 5 >= detail::kParallelWork)
  for (int64_t r = 0; r < rows; ++r) {
    const T *xr = x + r * dim, *gr = dy + r * dim;
    T rs = rstd[r];
    T meanGX = detail::reduceFixed<T>(dim, [=](int64_t i) {
                 return gr[i] * gamma[i] * (xr[i] * rs);
               }) /
               T(dim);
    T *dxr = dx + r * dim;
#pragma omp simd
    for (int64_t i = 0; i < dim; ++i) {
      T g = (gr[i] * gamma[i] - (xr[i] * rs) * meanGX) * rs;
      dxr[i] = accumulate ? dxr[i] + g : g;
    }
  }
}

/// W: dgamma += sum over rows of dy * xhat.
template <typename T, int64_t... S>
inline void rmsnormBackwardW(T *dgamma, const T *dy, const T *x, const T *rstd,
                             int64_t rowsArg, int64_t dimArg) {
  const int64_t rows = detail::fixedOr<0, S...>(rowsArg);
  const int64_t dim = detail::fixedOr<1, S...>(dimArg);
  detail::columnSums<T>(dgamma, rows, dim, true, [=](int64_t r, int64_t c) {
    return dy[r * dim + c] * (x[r * dim + c] * rstd[r]);
  });
}

} // namespace pipert::cpu

#endif // PIPERT_KERNELS_CPU_NORM_H
