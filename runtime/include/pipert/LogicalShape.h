//===- LogicalShape.h - padded tensors and their model shape ----*- C++ -*-===//
//
// A parameter padded for aligned GEMMs (--nn-pad-vocab: a vocabulary
// rounded up to a multiple of 128) is stored in its padded shape, row-major,
// but the model knows it in its logical shape: initialisation draws the
// logical elements by their logical index (the same values as the unpadded
// model), checkpoints hold the logical tensor, and the padding is zero.
// These copy between the dense logical layout and the padded one.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_LOGICALSHAPE_H
#define PIPERT_LOGICALSHAPE_H

#include <cstdint>
#include <cstring>
#include <vector>

namespace pipert {

/// The elements of `shape`.
inline int64_t elementsOf(const std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

/// Whether `logical` fits in `padded`: the same rank, no dim larger.
inline bool fitsIn(const std::vector<int64_t> &logical,
                   const std::vector<int64_t> &padded) {
  if (logical.size() != padded.size())
    return false;
  for (size_t i = 0; i < logical.size(); ++i)
    if (logical[i] < 0 || logical[i] > padded[i])
      return false;
  return true;
}

namespace detail {
/// Walks the logical index space dim by dim; the innermost dim is one
/// contiguous run in both layouts. `copy(logicalOffset, paddedOffset, n)`.
template <typename Copy>
void eachRun(const std::vector<int64_t> &logical,
             const std::vector<int64_t> &padded, size_t dim,
             int64_t logicalBase, int64_t paddedBase, Copy &&copy) {
  if (logical.empty()) {
    copy(0, 0, 1);
    return;
  }
  int64_t logicalStride = 1, paddedStride = 1;
  for (size_t d = dim + 1; d < logical.size(); ++d) {
    logicalStride *= logical[d];
    paddedStride *= padded[d];
  }
  if (dim + 1 == logical.size()) {
    copy(logicalBase, paddedBase, logical[dim]);
    return;
  }
  for (int64_t i = 0; i < logical[dim]; ++i)
    eachRun(logical, padded, dim + 1, logicalBase + i * logicalStride,
            paddedBase + i * paddedStride, copy);
}
} // namespace detail

/// `padded` (elementsOf(paddedShape) elements) from the dense `logical`
/// tensor, the padding zeroed.
template <typename T>
void scatterLogical(const T *logical, const std::vector<int64_t> &logicalShape,
                    T *padded, const std::vector<int64_t> &paddedShape) {
  std::memset(static_cast<void *>(padded), 0,
              sizeof(T) * size_t(elementsOf(paddedShape)));
  detail::eachRun(logicalShape, paddedShape, 0, 0, 0,
                  [&](int64_t l, int64_t p, int64_t n) {
                    std::memcpy(padded + p, logical + l, sizeof(T) * size_t(n));
                  });
}

/// The dense logical tensor out of `padded`.
template <typename T>
void gatherLogical(const T *padded, const std::vector<int64_t> &paddedShape,
                   T *logical, const std::vector<int64_t> &logicalShape) {
  detail::eachRun(logicalShape, paddedShape, 0, 0, 0,
                  [&](int64_t l, int64_t p, int64_t n) {
                    std::memcpy(logical + l, padded + p, sizeof(T) * size_t(n));
                  });
}

} // namespace pipert

#endif // PIPERT_LOGICALSHAPE_H
