//===- Rope.h - Rotary position embedding (Llama rotate-half) -------------===//
//
// x is [batch, seq, heads * headDim], headDim even, half = headDim / 2. For
// the token at sequence position t and i in [0, half), with
// angle = t * theta^(-2i / headDim), the pair (x[i], x[i + half]) of every
// head is rotated: y[i] = x[i] cos - x[i + half] sin, y[i + half] =
// x[i + half] cos + x[i] sin (Hugging Face's rotate_half convention).
//
// Numerics: angles, cos and sin are computed in double and rounded once to
// T, so float and double runs see the same rotation up to that rounding;
// each output element is a fixed expression of two inputs (no reductions).
// The backward pass applies the transposed rotation. Output may alias input.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CPU_ROPE_H
#define PIPERT_KERNELS_CPU_ROPE_H

#include <cstdint>

namespace pipert::cpu {

/// y = rope(x); theta is the frequency base (10000 by default in the format).
template <typename T>
void ropeForward(T *y, const T *x, int64_t batch, int64_t seq, int64_t heads,
                 int64_t headDim, double theta);

/// B: dx (+)= rope^T(dy): dx[i] = dy[i] cos + dy[i + half] sin,
/// dx[i + half] = dy[i + half] cos - dy[i] sin.
template <typename T>
void ropeBackwardB(T *dx, const T *dy, int64_t batch, int64_t seq,
                   int64_t heads, int64_t headDim, double theta,
                   bool accumulate = false);

} // namespace pipert::cpu

#endif // PIPERT_KERNELS_CPU_ROPE_H
