//===- Embedding.cpp - Token and position embedding kernels ---------------===//

#include "kernels/cpu/Embedding.h"

#include <cstring>
#include <string>

namespace pipert::cpu {

/// Checks every id before anything is written, so a failed call leaves its
/// output untouched.
static Status checkIds(const char *kernel, const int32_t *ids, int64_t tokens,
                       int64_t vocab) {
  for (int64_t n = 0; n < tokens; ++n)
    if (ids[n] < 0 || ids[n] >= vocab)
      return Status::failure(std::string(kernel) + ": ids[" +
                             std::to_string(n) + "] = " +
                             std::to_string(ids[n]) + " is outside [0, " +
                             std::to_string(vocab) + ")");
  return Status::success();
}

template <typename T>
Status embeddingForward(T *out, const T *table, const int32_t *ids,
                        int64_t tokens, int64_t vocab, int64_t dim) {
  Status s = checkIds("embedding", ids, tokens, vocab);
  if (!s.ok())
    return s;
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < tokens; ++n)
    std::memcpy(out + n * dim, table + int64_t(ids[n]) * dim,
                sizeof(T) * size_t(dim));
  return Status::success();
}

template <typename T>
Status embeddingBackwardW(T *dtable, const T *dout, const int32_t *ids,
                          int64_t tokens, int64_t vocab, int64_t dim) {
  Status s = checkIds("embedding backward", ids, tokens, vocab);
  if (!s.ok())
    return s;
  // Column blocks are independent; inside one, tokens go in ascending order.
  constexpr int64_t kBlock = 64;
  int64_t blocks = (dim + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    int64_t d0 = blk * kBlock, d1 = d0 + kBlock < dim ? d0 + kBlock : dim;
    for (int64_t n = 0; n < tokens; ++n) {
      T *row = dtable + int64_t(ids[n]) * dim;
      const T *g = dout + n * dim;
      for (int64_t d = d0; d < d1; ++d)
        row[d] += g[d];
    }
  }
  return Status::success();
}

template <typename T>
void positionEmbeddingForward(T *out, const T *table, int64_t length,
                              int64_t dim) {
  std::memcpy(out, table, sizeof(T) * size_t(length * dim));
}

template <typename T>
void positionEmbeddingBackwardW(T *dtable, const T *dout, int64_t length,
                                int64_t dim) {
  int64_t n = length * dim;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i)
    dtable[i] += dout[i];
}

#define PIPERT_INSTANTIATE(T)                                                  \
  template Status embeddingForward<T>(T *, const T *, const int32_t *,         \
                                      int64_t, int64_t, int64_t);              \
  template Status embeddingBackwardW<T>(T *, const T *, const int32_t *,       \
                                        int64_t, int64_t, int64_t);            \
  template void positionEmbeddingForward<T>(T *, const T *, int64_t, int64_t); \
  template void positionEmbeddingBackwardW<T>(T *, const T *, int64_t,         \
                                              int64_t);
PIPERT_INSTANTIATE(float)
PIPERT_INSTANTIATE(double)
#undef PIPERT_INSTANTIATE

} // namespace pipert::cpu
