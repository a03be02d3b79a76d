//===- Norm.cpp - LayerNorm and RMSNorm over the last axis ----------------===//

#include "kernels/cpu/Norm.h"

#include "kernels/cpu/Reduce.h"

#include <cmath>

namespace pipert::cpu {

using detail::reduceFixed;

template <typename T>
void layernormForward(T *y, T *mean, T *rstd, const T *x, const T *gamma,
                      const T *beta, int64_t rows, int64_t dim, double eps) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const T *xr = x + r * dim;
    T mu = detail::sumFixed(xr, dim) / T(dim);
    T var = reduceFixed<T>(dim, [xr, mu](int64_t i) {
              T d = xr[i] - mu;
              return d * d;
            }) /
            T(dim);
    T rs = T(1) / std::sqrt(var + T(eps));
    T *yr = y + r * dim;
    for (int64_t i = 0; i < dim; ++i)
      yr[i] = (xr[i] - mu) * rs * gamma[i] + beta[i];
    mean[r] = mu;
    rstd[r] = rs;
  }
}

template <typename T>
void layernormBackwardB(T *dx, const T *dy, const T *x, const T *mean,
                        const T *rstd, const T *gamma, int64_t rows,
                        int64_t dim, bool accumulate) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const T *xr = x + r * dim, *gr = dy + r * dim;
    T mu = mean[r], rs = rstd[r];
    T meanG = reduceFixed<T>(dim, [gr, gamma](int64_t i) {
                return gr[i] * gamma[i];
              }) /
              T(dim);
    T meanGX = reduceFixed<T>(dim, [=](int64_t i) {
                 return gr[i] * gamma[i] * ((xr[i] - mu) * rs);
               }) /
               T(dim);
    T *dxr = dx + r * dim;
    for (int64_t i = 0; i < dim; ++i) {
      T xhat = (xr[i] - mu) * rs;
      T g = (gr[i] * gamma[i] - meanG - xhat * meanGX) * rs;
      dxr[i] = accumulate ? dxr[i] + g : g;
    }
  }
}

template <typename T>
void layernormBackwardW(T *dgamma, T *dbeta, const T *dy, const T *x,
                        const T *mean, const T *rstd, int64_t rows,
                        int64_t dim) {
  detail::columnSums<T>(dgamma, rows, dim, true, [=](int64_t r, int64_t c) {
    return dy[r * dim + c] * ((x[r * dim + c] - mean[r]) * rstd[r]);
  });
  detail::columnSums<T>(dbeta, rows, dim, true, [=](int64_t r, int64_t c) {
    return dy[r * dim + c];
  });
}

template <typename T>
void rmsnormForward(T *y, T *rstd, const T *x, const T *gamma, int64_t rows,
                    int64_t dim, double eps) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const T *xr = x + r * dim;
    T ms = detail::dotFixed(xr, xr, dim) / T(dim);
    T rs = T(1) / std::sqrt(ms + T(eps));
    T *yr = y + r * dim;
    for (int64_t i = 0; i < dim; ++i)
      yr[i] = xr[i] * rs * gamma[i];
    rstd[r] = rs;
  }
}

template <typename T>
void rmsnormBackwardB(T *dx, const T *dy, const T *x, const T *rstd,
                      const T *gamma, int64_t rows, int64_t dim,
                      bool accumulate) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const T *xr = x + r * dim, *gr = dy + r * dim;
    T rs = rstd[r];
    T meanGX = reduceFixed<T>(dim, [=](int64_t i) {
                 return gr[i] * gamma[i] * (xr[i] * rs);
               }) /
               T(dim);
    T *dxr = dx + r * dim;
    for (int64_t i = 0; i < dim; ++i) {
      T g = (gr[i] * gamma[i] - (xr[i] * rs) * meanGX) * rs;
      dxr[i] = accumulate ? dxr[i] + g : g;
    }
  }
}

template <typename T>
void rmsnormBackwardW(T *dgamma, const T *dy, const T *x, const T *rstd,
                      int64_t rows, int64_t dim) {
  detail::columnSums<T>(dgamma, rows, dim, true, [=](int64_t r, int64_t c) {
    return dy[r * dim + c] * (x[r * dim + c] * rstd[r]);
  });
}

#define PIPERT_INSTANTIATE(T)                                                  \
  template void layernormForward<T>(T *, T *, T *, const T *, const T *,       \
                                    const T *, int64_t, int64_t, double);      \
  template void layernormBackwardB<T>(T *, const T *, const T *, const T *,    \
                                      const T *, const T *, int64_t, int64_t,  \
                                      bool);                                   \
  template void layernormBackwardW<T>(T *, T *, const T *, const T *,          \
                                      const T *, const T *, int64_t, int64_t); \
  template void rmsnormForward<T>(T *, T *, const T *, const T *, int64_t,     \
                                  int64_t, double);                            \
  template void rmsnormBackwardB<T>(T *, const T *, const T *, const T *,      \
                                    const T *, int64_t, int64_t, bool);        \
  template void rmsnormBackwardW<T>(T *, const T *, const T *, const T *,      \
                                    int64_t, int64_t);
PIPERT_INSTANTIATE(float)
PIPERT_INSTANTIATE(double)
#undef PIPERT_INSTANTIATE

} // namespace pipert::cpu
