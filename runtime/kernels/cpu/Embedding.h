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

#include "kernels/cpu/Status.h"

#include <cstdint>

namespace pipert::cpu {

/// out[n, :] = table[ids[n], :] for n in [0, tokens); table is [vocab, dim].
/// Fails (writing nothing) when an id is outside [0, vocab).
template <typename T>
Status embeddingForward(T *out, const T *table, const int32_t *ids,
                        int64_t tokens, int64_t vocab, int64_t dim);

/// W: dtable[ids[n], :] += dout[n, :] for n ascending. Fails (writing
/// nothing) when an id is outside [0, vocab).
template <typename T>
Status embeddingBackwardW(T *dtable, const T *dout, const int32_t *ids,
                          int64_t tokens, int64_t vocab, int64_t dim);

/// out[t, :] = table[t, :] for t in [0, length): the first rows of a
/// [maxLength, dim] position table (the caller checks length <= maxLength).
template <typename T>
void positionEmbeddingForward(T *out, const T *table, int64_t length,
                              int64_t dim);

/// W: dtable[t, :] += dout[t, :] for t in [0, length).
template <typename T>
void positionEmbeddingBackwardW(T *dtable, const T *dout, int64_t length,
                                int64_t dim);

} // namespace pipert::cpu

#endif // PIPERT_KERNELS_CPU_EMBEDDING_H
