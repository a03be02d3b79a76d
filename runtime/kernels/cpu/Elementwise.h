//===- Elementwise.h - add and mul with trailing broadcast ---------------===//
//
// a has n elements; b has bn elements, a suffix of a's shape, so b[i % bn]
// pairs with a[i] (bn == n: no broadcast). Which operand is an activation and
// which a parameter depends on the graph, so each operand's gradient has its
// own kernel (the compiler puts the parameter's in W).
//
// Numerics: elementwise results are exact functions of their operands. The
// broadcast operand's gradient is a reduction over the n / bn leading rows in
// ascending row order (the same column reduction as matmul's bias, so a fused
// bias gives the same bits); threads split the columns, never the rows.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CPU_ELEMENTWISE_H
#define PIPERT_KERNELS_CPU_ELEMENTWISE_H

#include <cstdint>

namespace pipert::cpu {

/// y[i] = a[i] + b[i % bn].
template <typename T>
void addForward(T *y, const T *a, const T *b, int64_t n, int64_t bn);

/// Gradient of add's broadcast operand: db[j] (+)= sum over rows r ascending
/// of dy[r * bn + j]. (The full-shape operand's gradient is dy itself.)
template <typename T>
void addBackwardBroadcast(T *db, const T *dy, int64_t n, int64_t bn,
                          bool accumulate);

/// y[i] = a[i] * b[i % bn].
template <typename T>
void mulForward(T *y, const T *a, const T *b, int64_t n, int64_t bn);

/// Gradient of mul's full-shape operand: da[i] (+)= dy[i] * b[i % bn].
template <typename T>
void mulBackwardLhs(T *da, const T *dy, const T *b, int64_t n, int64_t bn,
                    bool accumulate);

/// Gradient of mul's broadcast operand: db[j] (+)= sum over rows r
/// ascending of dy[r * bn + j] * a[r * bn + j].
template <typename T>
void mulBackwardRhs(T *db, const T *dy, const T *a, int64_t n, int64_t bn,
                    bool accumulate);

/// y[i] (+)= x[i]: copies a gradient, or adds two gradients of one value.
template <typename T>
void accumulateInto(T *y, const T *x, int64_t n, bool accumulate);

} // namespace pipert::cpu

#endif // PIPERT_KERNELS_CPU_ELEMENTWISE_H
