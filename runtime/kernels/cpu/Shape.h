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

#include "kernels/cpu/Numerics.h"

#include "kernels/cpu/Elementwise.h"

#include <cstdint>
#include <cstring>

namespace pipert::cpu {

/// Slice along one axis. x is viewed as [outer, dim, inner] (outer: product
/// of the dims before the axis, inner: after it); y is [outer, size, inner]
/// holding x[:, offset : offset + size, :].
template <typename T, int64_t... S>
inline void sliceForward(T *y, const T *x, int64_t outerArg, int64_t dimArg,
                         int64_t innerArg, int64_t offsetArg,
                         int64_t sizeArg) {
  const int64_t outer = detail::fixedOr<0, S...>(outerArg);
  const int64_t dim = detail::fixedOr<1, S...>(dimArg);
  const int64_t inner = detail::fixedOr<2, S...>(innerArg);
  const int64_t offset = detail::fixedOr<3, S...>(offsetArg);
  const int64_t size = detail::fixedOr<4, S...>(sizeArg);
#pragma omp parallel for schedule(static)                                      \
    if (outer * size * inner >= detail::kParallelWork)
  for (int64_t o = 0; o < outer; ++o)
    std::memcpy(y + o * size * inner, x + (o * dim + offset) * inner,
                sizeof(T) * size_t(size * inner));
}

/// B: dx[:, offset : offset + size, :] (+)= dy. Without accumulate the rest
/// of dx is zeroed; with it the rest is left alone.
template <typename T, int64_t... S>
inline void sliceBackwardB(T *dx, const T *dy, int64_t outerArg,
                           int64_t dimArg, int64_t innerArg, int64_t offsetArg,
                           int64_t sizeArg, bool accumulateArg = false) {
  const int64_t outer = detail::fixedOr<0, S...>(outerArg);
  const int64_t dim = detail::fixedOr<1, S...>(dimArg);
  const int64_t inner = detail::fixedOr<2, S...>(innerArg);
  const int64_t offset = detail::fixedOr<3, S...>(offsetArg);
  const int64_t size = detail::fixedOr<4, S...>(sizeArg);
  const bool accumulate =
      detail::fixedOr<5, S...>(int64_t(accumulateArg)) != 0;
#pragma omp parallel for schedule(static)                                      \
    if (outer * dim * inner >= detail::kParallelWork)
  for (int64_t o = 0; o < outer; ++o) {
    T *row = dx + o * dim * inner;
    const T *g = dy + o * size * inner;
    if (!accumulate) {
      for (int64_t i = 0; i < offset * inner; ++i)
        row[i] = T(0);
      for (int64_t i = (offset + size) * inner; i < dim * inner; ++i)
        row[i] = T(0);
    }
    T *win = row + offset * inner;
    for (int64_t i = 0; i < size * inner; ++i)
      win[i] = accumulate ? win[i] + g[i] : g[i];
  }
}

/// B of three slices of one tensor summed (q, k and v out of c_attn's
/// output): dx[:, off_w : off_w + size_w, :] = dy_w + 0 for the three
/// disjoint windows w, zeros elsewhere: the bits of the two gradient adds
/// of three slice gradients it replaces (x + 0 turns -0 into +0, as they
/// did), in one pass instead of five.
template <typename T, int64_t... S>
inline void slices3BackwardB(T *dx, const T *dy0, const T *dy1, const T *dy2,
                             int64_t outerArg, int64_t dimArg,
                             int64_t innerArg, int64_t off0Arg,
                             int64_t size0Arg, int64_t off1Arg,
                             int64_t size1Arg, int64_t off2Arg,
                             int64_t size2Arg) {
  const int64_t outer = detail::fixedOr<0, S...>(outerArg);
  const int64_t dim = detail::fixedOr<1, S...>(dimArg);
  const int64_t inner = detail::fixedOr<2, S...>(innerArg);
  const int64_t off[3] = {detail::fixedOr<3, S...>(off0Arg),
                          detail::fixedOr<5, S...>(off1Arg),
                          detail::fixedOr<7, S...>(off2Arg)};
  const int64_t size[3] = {detail::fixedOr<4, S...>(size0Arg),
                           detail::fixedOr<6, S...>(size1Arg),
                           detail::fixedOr<8, S...>(size2Arg)};
  const T *dy[3] = {dy0, dy1, dy2};
  // Windows that leave no gap need no zeros.
  const bool gaps = size[0] + size[1] + size[2] < dim;
#pragma omp parallel for schedule(static)                                          if (outer * dim * inner >= detail::kParallelWork)
  for (int64_t o = 0; o < outer; ++o) {
    T *row = dx + o * dim * inner;
    if (gaps)
      for (int64_t i = 0; i < dim * inner; ++i)
        row[i] = T(0);
    for (int w = 0; w < 3; ++w) {
      T *win = row + off[w] * inner;
      const T *g = dy[w] + o * size[w] * inner;
      for (int64_t i = 0; i < size[w] * inner; ++i)
        win[i] = g[i] + T(0);
    }
  }
}

/// Reshape keeps the row-major order: y = x (n elements).
template <typename T, int64_t... S>
inline void reshapeForward(T *y, const T *x, int64_t nArg) {
  const int64_t n = detail::fixedOr<0, S...>(nArg);
  std::memcpy(y, x, sizeof(T) * size_t(n));
}

/// B: dx (+)= dy (n elements).
template <typename T, int64_t... S>
inline void reshapeBackwardB(T *dx, const T *dy, int64_t nArg,
                             bool accumulateArg = false) {
  const int64_t n = detail::fixedOr<0, S...>(nArg);
  const bool accumulate =
      detail::fixedOr<1, S...>(int64_t(accumulateArg)) != 0;
  accumulateInto(dx, dy, n, accumulate);
}

namespace detail {
/// The permutation walk shared by forward and backward: y[j] (+)= x[src(j)].
template <typename T>
inline void permute(T *y, const T *x, const int64_t *xDims,
                    const int64_t *perm, int rank, bool accumulate) {
  if (rank == 0) {
    y[0] = accumulate ? y[0] + x[0] : x[0];
    return;
  }
  int64_t xStride[8], yDims[8], srcStride[8];
  int64_t stride = 1;
  for (int i = rank - 1; i >= 0; --i) {
    xStride[i] = stride;
    stride *= xDims[i];
  }
  for (int i = 0; i < rank; ++i) {
    yDims[i] = xDims[perm[i]];
    srcStride[i] = xStride[perm[i]];
  }
  int64_t last = yDims[rank - 1];
  int64_t rows = last ? stride / last : 0;
#pragma omp parallel for schedule(static) if (stride >= kParallelWork)
  for (int64_t r = 0; r < rows; ++r) {
    // Decompose the row index over y's leading dims into a source offset.
    int64_t rem = r, base = 0;
    for (int i = rank - 2; i >= 0; --i) {
      base += (rem % yDims[i]) * srcStride[i];
      rem /= yDims[i];
    }
    T *yr = y + r * last;
    int64_t s = srcStride[rank - 1];
    for (int64_t j = 0; j < last; ++j)
      yr[j] = accumulate ? yr[j] + x[base + j * s] : x[base + j * s];
  }
}
} // namespace detail

/// y = x with its axes permuted: y's axis i is x's axis perm[i]. xDims has
/// rank entries; rank is at most 8. The shape is an array, so S is accepted
/// for a uniform call syntax only.
template <typename T, int64_t... S>
inline void transposeForward(T *y, const T *x, const int64_t *xDims,
                             const int64_t *perm, int rank) {
  detail::permute(y, x, xDims, perm, rank, false);
}

/// B: dx (+)= dy permuted back. xDims are the forward input's dims. The
/// shape is an array, so S is accepted for a uniform call syntax only.
template <typename T, int64_t... S>
inline void transposeBackwardB(T *dx, const T *dy, const int64_t *xDims,
                               const int64_t *perm, int rank,
                               bool accumulate = false) {
  // dy has dims xDims[perm[i]]; the inverse permutation brings it back.
  int64_t yDims[8], inverse[8];
  for (int i = 0; i < rank; ++i) {
    yDims[i] = xDims[perm[i]];
    inverse[perm[i]] = i;
  }
  detail::permute(dx, dy, yDims, inverse, rank, accumulate);
}

} // namespace pipert::cpu

#endif // PIPERT_KERNELS_CPU_SHAPE_H
