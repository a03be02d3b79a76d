//===- Embedding.h - Token and position embedding kernels -----------------===//
//
// Numerics: the forward pass is a gather (exact). The table gradient is a
// scatter-add: for every element of the table the contributions are added in
// ascending token order (row-major over [B, T]) directly into the
// accumulated gradient, so micro-batches accumulate in the order they run.
// Threads split the embedding width D, never the tokens, so the order of the
// additions into one element is the same for any thread count. The ids get no
// gradient (they are integers).
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CPU_EMBEDDING_H
#define PIPERT_KERNELS_CPU_EMBEDDING_H

#include "kernels/cpu/Numerics.h"

#include "kernels/cpu/Status.h"

#include <cstdint>
#include <cstring>

namespace pipert::cpu {

namespace detail {
/// Checks every id before anything is written, so a failed call leaves its
/// output untouched (out of line: the message formatting is cold).
Status checkIds(const char *kernel, const int32_t *ids, int64_t tokens,
                int64_t vocab);
} // namespace detail

/// out[n, :] = table[ids[n], :] for n in [0, tokens); table is [vocab, dim].
/// Fails (writing nothing) when an id is outside [0, vocab).
template <typename T, int64_t... S>
inline Status embeddingForward(T *out, const T *table, const int32_t *ids,
                               int64_t tokensArg, int64_t vocabArg,
                               int64_t dimArg) {
  const int64_t tokens = detail::fixedOr<0, S...>(tokensArg);
  const int64_t vocab = detail::fixedOr<1, S...>(vocabArg);
  const int64_t dim = detail::fixedOr<2, S...>(dimArg);
  Status s = detail::checkIds("embedding", ids, tokens, vocab);
  if (!s.ok())
    return s;
#pragma omp parallel for schedule(static)                                      \
    if (tokens * dim >= detail::kParallelWork)
  for (int64_t n = 0; n < tokens; ++n)
    std::memcpy(out + n * dim, table + int64_t(ids[n]) * dim,
                sizeof(T) * size_t(dim));
  return Status::success();
}

/// W: dtable[ids[n], :] += dout[n, :] for n ascending. Fails (writing
/// nothing) when an id is outside [0, vocab).
template <typename T, int64_t... S>
inline Status embeddingBackwardW(T *dtable, const T *dout, const int32_t *ids,
                                 int64_t tokensArg, int64_t vocabArg,
                                 int64_t dimArg) {
  const int64_t tokens = detail::fixedOr<0, S...>(tokensArg);
  const int64_t vocab = detail::fixedOr<1, S...>(vocabArg);
  const int64_t dim = detail::fixedOr<2, S...>(dimArg);
  Status s = detail::checkIds("embedding backward", ids, tokens, vocab);
  if (!s.ok())
    return s;
  // Column blocks are independent; inside one, tokens go in ascending order.
  constexpr int64_t kBlock = 64;
  int64_t blocks = (dim + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static)                                      \
    if (tokens * dim >= detail::kParallelWork)
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

/// out[t, :] = table[t, :] for t in [0, length): the first rows of a
/// [maxLength, dim] position table (the caller checks length <= maxLength).
template <typename T, int64_t... S>
inline void positionEmbeddingForward(T *out, const T *table,
                                     int64_t lengthArg, int64_t dimArg) {
  const int64_t length = detail::fixedOr<0, S...>(lengthArg);
  const int64_t dim = detail::fixedOr<1, S...>(dimArg);
  std::memcpy(out, table, sizeof(T) * size_t(length * dim));
}

/// W: dtable[t, :] += dout[t, :] for t in [0, length).
template <typename T, int64_t... S>
inline void positionEmbeddingBackwardW(T *dtable, const T *dout,
                                       int64_t lengthArg, int64_t dimArg) {
  const int64_t length = detail::fixedOr<0, S...>(lengthArg);
  const int64_t dim = detail::fixedOr<1, S...>(dimArg);
  int64_t n = length * dim;
#pragma omp parallel for schedule(static) if (n >= detail::kParallelWork)
  for (int64_t i = 0; i < n; ++i)
    dtable[i] += dout[i];
}

} // namespace pipert::cpu

#endif // PIPERT_KERNELS_CPU_EMBEDDING_H
