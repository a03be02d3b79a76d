//===- Shape.h - slice, reshape and transpose ----------------------------===//
//
// Numerics: pure data movement, exact. Backward passes move the gradient
// back (transpose by the inverse permutation, slice into its window) and
// either overwrite dx or add into it (accumulate), so two slices of one
// tensor (q, k, v out of qkv) can write their gradients into one buffer.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CPU_SHAPE_H
#define PIPERT_KERNELS_CPU_SHAPE_H

#include <cstdint>

namespace pipert::cpu {

/// Slice along one axis. x is viewed as [outer, dim, inner] (outer: product
/// of the dims before the axis, inner: after it); y is [outer, size, inner]
/// holding x[:, offset : offset + size, :].
template <typename T>
void sliceForward(T *y, const T *x, int64_t outer, int64_t dim, int64_t inner,
                  int64_t offset, int64_t size);

/// B: dx[:, offset : offset + size, :] (+)= dy. Without accumulate the rest
/// of dx is zeroed; with it the rest is left alone.
template <typename T>
void sliceBackwardB(T *dx, const T *dy, int64_t outer, int64_t dim,
                    int64_t inner, int64_t offset, int64_t size,
                    bool accumulate = false);

/// Reshape keeps the row-major order: y = x (n elements).
template <typename T> void reshapeForward(T *y, const T *x, int64_t n);

/// B: dx (+)= dy (n elements).
template <typename T>
void reshapeBackwardB(T *dx, const T *dy, int64_t n, bool accumulate = false);

/// y = x with its axes permuted: y's axis i is x's axis perm[i]. xDims has
/// rank entries; rank is at most 8.
template <typename T>
void transposeForward(T *y, const T *x, const int64_t *xDims,
                      const int64_t *perm, int rank);

/// B: dx (+)= dy permuted back. xDims are the forward input's dims.
template <typename T>
void transposeBackwardB(T *dx, const T *dy, const int64_t *xDims,
                        const int64_t *perm, int rank,
                        bool accumulate = false);

} // namespace pipert::cpu

#endif // PIPERT_KERNELS_CPU_SHAPE_H
