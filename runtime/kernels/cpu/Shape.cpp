//===- Shape.cpp - slice, reshape and transpose --------------------------===//

#include "kernels/cpu/Shape.h"

#include "kernels/cpu/Elementwise.h"

#include <cstring>

namespace pipert::cpu {

template <typename T>
void sliceForward(T *y, const T *x, int64_t outer, int64_t dim, int64_t inner,
                  int64_t offset, int64_t size) {
#pragma omp parallel for schedule(static)
  for (int64_t o = 0; o < outer; ++o)
    std::memcpy(y + o * size * inner, x + (o * dim + offset) * inner,
                sizeof(T) * size_t(size * inner));
}

template <typename T>
void sliceBackwardB(T *dx, const T *dy, int64_t outer, int64_t dim,
                    int64_t inner, int64_t offset, int64_t size,
                    bool accumulate) {
#pragma omp parallel for schedule(static)
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

template <typename T> void reshapeForward(T *y, const T *x, int64_t n) {
  std::memcpy(y, x, sizeof(T) * size_t(n));
}

template <typename T>
void reshapeBackwardB(T *dx, const T *dy, int64_t n, bool accumulate) {
  accumulateInto(dx, dy, n, accumulate);
}

/// The permutation walk shared by forward and backward: y[j] (+)= x[src(j)].
template <typename T>
static void permute(T *y, const T *x, const int64_t *xDims,
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
#pragma omp parallel for schedule(static)
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

template <typename T>
void transposeForward(T *y, const T *x, const int64_t *xDims,
                      const int64_t *perm, int rank) {
  permute(y, x, xDims, perm, rank, false);
}

template <typename T>
void transposeBackwardB(T *dx, const T *dy, const int64_t *xDims,
                        const int64_t *perm, int rank, bool accumulate) {
  // dy has dims xDims[perm[i]]; the inverse permutation brings it back.
  int64_t yDims[8], inverse[8];
  for (int i = 0; i < rank; ++i) {
    yDims[i] = xDims[perm[i]];
    inverse[perm[i]] = i;
  }
  permute(dx, dy, yDims, inverse, rank, accumulate);
}

#define PIPERT_INSTANTIATE(T)                                                  \
  template void sliceForward<T>(T *, const T *, int64_t, int64_t, int64_t,     \
                                int64_t, int64_t);                             \
  template void sliceBackwardB<T>(T *, const T *, int64_t, int64_t, int64_t,   \
                                  int64_t, int64_t, bool);                     \
  template void reshapeForward<T>(T *, const T *, int64_t);                    \
  template void reshapeBackwardB<T>(T *, const T *, int64_t, bool);            \
  template void transposeForward<T>(T *, const T *, const int64_t *,           \
                                    const int64_t *, int);                     \
  template void transposeBackwardB<T>(T *, const T *, const int64_t *,         \
                                      const int64_t *, int, bool);
PIPERT_INSTANTIATE(float)
PIPERT_INSTANTIATE(double)
#undef PIPERT_INSTANTIATE

} // namespace pipert::cpu
