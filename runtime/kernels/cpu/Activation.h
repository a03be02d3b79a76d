//===- Activation.h - GELU (tanh approximation) and SiLU ------------------===//
//
// Numerics: elementwise, no reductions: every output element is the same
// function of its input element for any thread count. GELU is GPT-2's tanh
// approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) evaluated
// in T with vecTanh; SiLU is x / (1 + vecExp(-x)) (VecMath.h: branch-free
// float versions, libm for double). Both have no parameters,
// so they have only a B gradient, which recomputes from x (no saved output).
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CPU_ACTIVATION_H
#define PIPERT_KERNELS_CPU_ACTIVATION_H

#include "kernels/cpu/Numerics.h"

#include "kernels/cpu/VecMath.h"

#include <cmath>
#include <cstdint>

namespace pipert::cpu {

namespace detail {
/// sqrt(2 / pi) and the cubic coefficient, rounded once to T.
template <typename T> constexpr T geluScale() { return T(0.7978845608028654); }
template <typename T> constexpr T geluCubic() { return T(0.044715); }

/// gelu_tanh(v): the one expression of the forward GELU, which
/// geluForward and the fused matmul epilogue (Fused.h) both evaluate.
template <typename T> inline T gelu(T v) {
  constexpr T kScale = geluScale<T>(), kCubic = geluCubic<T>();
  T u = kScale * (v + kCubic * v * v * v);
  return T(0.5) * v * (T(1) + vecTanh(u));
}
} // namespace detail

/// y = gelu_tanh(x) over n elements.
template <typename T, int64_t... S>
inline void geluForward(T *y, const T *x, int64_t nArg) {
  const int64_t n = detail::fixedOr<0, S...>(nArg);
#pragma omp parallel for simd schedule(static) if (n * 16 >= detail::kParallelWork)
  for (int64_t i = 0; i < n; ++i)
    y[i] = detail::gelu(x[i]);
}

/// B: dx (+)= dy * gelu_tanh'(x).
template <typename T, int64_t... S>
inline void geluBackwardB(T *dx, const T *dy, const T *x, int64_t nArg,
                          bool accumulateArg = false) {
  const int64_t n = detail::fixedOr<0, S...>(nArg);
  const bool accumulate =
      detail::fixedOr<1, S...>(int64_t(accumulateArg)) != 0;
  constexpr T kScale = detail::geluScale<T>(), kCubic = detail::geluCubic<T>();
#pragma omp parallel for simd schedule(static) if (n * 24 >= detail::kParallelWork)
  for (int64_t i = 0; i < n; ++i) {
    T v = x[i];
    T u = kScale * (v + kCubic * v * v * v);
    T th = vecTanh(u);
    T du = kScale * (T(1) + T(3) * kCubic * v * v);
    T d = T(0.5) * (T(1) + th) + T(0.5) * v * (T(1) - th * th) * du;
    T g = dy[i] * d;
    dx[i] = accumulate ? dx[i] + g : g;
  }
}

/// y = x * sigmoid(x) over n elements.
template <typename T, int64_t... S>
inline void siluForward(T *y, const T *x, int64_t nArg) {
  const int64_t n = detail::fixedOr<0, S...>(nArg);
#pragma omp parallel for simd schedule(static) if (n * 12 >= detail::kParallelWork)
  for (int64_t i = 0; i < n; ++i)
    y[i] = x[i] / (T(1) + vecExp(-x[i]));
}

/// B: dx (+)= dy * sigmoid(x) * (1 + x * (1 - sigmoid(x))).
template <typename T, int64_t... S>
inline void siluBackwardB(T *dx, const T *dy, const T *x, int64_t nArg,
                          bool accumulateArg = false) {
  const int64_t n = detail::fixedOr<0, S...>(nArg);
  const bool accumulate =
      detail::fixedOr<1, S...>(int64_t(accumulateArg)) != 0;
#pragma omp parallel for simd schedule(static) if (n * 16 >= detail::kParallelWork)
  for (int64_t i = 0; i < n; ++i) {
    T s = T(1) / (T(1) + vecExp(-x[i]));
    T g = dy[i] * (s * (T(1) + x[i] * (T(1) - s)));
    dx[i] = accumulate ? dx[i] + g : g;
  }
}

} // namespace pipert::cpu

#endif // PIPERT_KERNELS_CPU_ACTIVATION_H
