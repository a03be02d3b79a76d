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

#include <cstdint>

namespace pipert::cpu {

/// y = gelu_tanh(x) over n elements.
template <typename T> void geluForward(T *y, const T *x, int64_t n);

/// B: dx (+)= dy * gelu_tanh'(x).
template <typename T>
void geluBackwardB(T *dx, const T *dy, const T *x, int64_t n,
                   bool accumulate = false);

/// y = x * sigmoid(x) over n elements.
template <typename T> void siluForward(T *y, const T *x, int64_t n);

/// B: dx (+)= dy * sigmoid(x) * (1 + x * (1 - sigmoid(x))).
template <typename T>
void siluBackwardB(T *dx, const T *dy, const T *x, int64_t n,
                   bool accumulate = false);

} // namespace pipert::cpu

#endif // PIPERT_KERNELS_CPU_ACTIVATION_H
