//===- CrossEntropy.h - Softmax cross-entropy fused with its gradient -----===//
//
// logits are [rows, vocab] (rows = batch * seq), targets [rows] (i32).
// Per row, loss = logsumexp(logits) - logits[target].
//
// Numerics: per row, the maximum is subtracted before exp, the sum of
// exponentials uses the fixed 8-lane order of Reduce.h in T; rows are split
// across threads. The mean loss adds the per-row losses in ascending row
// order in a double accumulator and rounds once to T. The backward pass
// writes dlogits = (softmax - onehot) * scale directly and may run in place
// (dlogits == logits), so the loss needs no [rows, vocab] buffer besides the
// logits; scale lets the caller divide by the token count of the whole
// global batch rather than by rows.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CPU_CROSSENTROPY_H
#define PIPERT_KERNELS_CPU_CROSSENTROPY_H

#include "kernels/cpu/Status.h"

#include <cstdint>

namespace pipert::cpu {

/// *loss = mean over rows of the per-row loss; rowLosses[rows] gets each
/// row's loss when not null. Fails (writing nothing) on a target outside
/// [0, vocab).
template <typename T>
Status crossEntropyForward(T *loss, T *rowLosses, const T *logits,
                           const int32_t *targets, int64_t rows,
                           int64_t vocab);

/// B: dlogits = (softmax(logits) - onehot(targets)) * scale; dlogits may be
/// logits itself. Fails (writing nothing) on a target outside [0, vocab).
template <typename T>
Status crossEntropyBackward(T *dlogits, const T *logits,
                            const int32_t *targets, int64_t rows,
                            int64_t vocab, double scale);

} // namespace pipert::cpu

#endif // PIPERT_KERNELS_CPU_CROSSENTROPY_H
