//===- Activation.cpp - GELU (tanh approximation) and SiLU ----------------===//

#include "kernels/cpu/Activation.h"

#include "kernels/cpu/VecMath.h"

#include <cmath>

namespace pipert::cpu {

/// sqrt(2 / pi), rounded once to T.
template <typename T> static constexpr T kGeluScale = T(0.7978845608028654);
template <typename T> static constexpr T kGeluCubic = T(0.044715);

template <typename T> void geluForward(T *y, const T *x, int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    T v = x[i];
    T u = kGeluScale<T> * (v + kGeluCubic<T> * v * v * v);
    y[i] = T(0.5) * v * (T(1) + vecTanh(u));
  }
}

template <typename T>
void geluBackwardB(T *dx, const T *dy, const T *x, int64_t n,
                   bool accumulate) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    T v = x[i];
    T u = kGeluScale<T> * (v + kGeluCubic<T> * v * v * v);
    T th = vecTanh(u);
    T du = kGeluScale<T> * (T(1) + T(3) * kGeluCubic<T> * v * v);
    T d = T(0.5) * (T(1) + th) + T(0.5) * v * (T(1) - th * th) * du;
    T g = dy[i] * d;
    dx[i] = accumulate ? dx[i] + g : g;
  }
}

template <typename T> void siluForward(T *y, const T *x, int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i)
    y[i] = x[i] / (T(1) + vecExp(-x[i]));
}

template <typename T>
void siluBackwardB(T *dx, const T *dy, const T *x, int64_t n,
                   bool accumulate) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    T s = T(1) / (T(1) + vecExp(-x[i]));
    T g = dy[i] * (s * (T(1) + x[i] * (T(1) - s)));
    dx[i] = accumulate ? dx[i] + g : g;
  }
}

#define PIPERT_INSTANTIATE(T)                                                  \
  template void geluForward<T>(T *, const T *, int64_t);                       \
  template void geluBackwardB<T>(T *, const T *, const T *, int64_t, bool);    \
  template void siluForward<T>(T *, const T *, int64_t);                       \
  template void siluBackwardB<T>(T *, const T *, const T *, int64_t, bool);
PIPERT_INSTANTIATE(float)
PIPERT_INSTANTIATE(double)
#undef PIPERT_INSTANTIATE

} // namespace pipert::cpu
