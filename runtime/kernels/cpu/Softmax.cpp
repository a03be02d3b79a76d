//===- Softmax.cpp - Softmax over the last axis --------------------------===//

#include "kernels/cpu/Softmax.h"

#include "kernels/cpu/Reduce.h"
#include "kernels/cpu/VecMath.h"

#include <cmath>

namespace pipert::cpu {

template <typename T>
void softmaxForward(T *y, const T *x, int64_t rows, int64_t dim) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const T *xr = x + r * dim;
    T *yr = y + r * dim;
    T mx = -INFINITY;
    for (int64_t i = 0; i < dim; ++i)
      mx = xr[i] > mx ? xr[i] : mx;
    for (int64_t i = 0; i < dim; ++i)
      yr[i] = vecExp(xr[i] - mx);
    T sum = detail::sumFixed(yr, dim);
    for (int64_t i = 0; i < dim; ++i)
      yr[i] = yr[i] / sum;
  }
}

template <typename T>
void softmaxBackwardB(T *dx, const T *dy, const T *y, int64_t rows,
                      int64_t dim, bool accumulate) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const T *yr = y + r * dim, *gr = dy + r * dim;
    T proj = detail::dotFixed(gr, yr, dim);
    T *dxr = dx + r * dim;
    for (int64_t i = 0; i < dim; ++i) {
      T g = yr[i] * (gr[i] - proj);
      dxr[i] = accumulate ? dxr[i] + g : g;
    }
  }
}

#define PIPERT_INSTANTIATE(T)                                                  \
  template void softmaxForward<T>(T *, const T *, int64_t, int64_t);           \
  template void softmaxBackwardB<T>(T *, const T *, const T *, int64_t,        \
                                    int64_t, bool);
PIPERT_INSTANTIATE(float)
PIPERT_INSTANTIATE(double)
#undef PIPERT_INSTANTIATE

} // namespace pipert::cpu
