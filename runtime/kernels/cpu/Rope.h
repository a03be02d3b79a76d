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

#include "kernels/cpu/Numerics.h"
#include "kernels/cpu/RopeAngles.h"

#include <cstdint>
#include <vector>

namespace pipert::cpu {

namespace detail {
/// Rotates every head of every token by +angle (transpose false) or -angle
/// (transpose true), writing or adding into y.
template <typename T>
inline void ropeRotate(T *y, const T *x, int64_t batch, int64_t seq,
                       int64_t heads, int64_t headDim, double theta,
                       bool transpose, bool accumulate) {
  int64_t half = headDim / 2, rows = batch * seq;
  std::vector<double> cosD(static_cast<size_t>(seq * half)),
      sinD(static_cast<size_t>(seq * half));
  ropeAngles(cosD.data(), sinD.data(), seq, headDim, theta);
  // Rounded once to T: the bits of T(std::cos(angle)).
  std::vector<T> cosT(cosD.size()), sinT(sinD.size());
  for (size_t i = 0; i < cosD.size(); ++i) {
    cosT[i] = T(cosD[i]);
    sinT[i] = T(sinD[i]);
  }
#pragma omp parallel for schedule(static)                                      \
    if (rows * heads * headDim * 3 >= kParallelWork)
  for (int64_t r = 0; r < rows; ++r) {
    int64_t t = r % seq;
    const T *c = cosT.data() + t * half, *s = sinT.data() + t * half;
    for (int64_t h = 0; h < heads; ++h) {
      const T *xh = x + (r * heads + h) * headDim;
      T *yh = y + (r * heads + h) * headDim;
#pragma omp simd
      for (int64_t i = 0; i < half; ++i) {
        T a = xh[i], b = xh[i + half];
        T lo = transpose ? a * c[i] + b * s[i] : a * c[i] - b * s[i];
        T hi = transpose ? b * c[i] - a * s[i] : b * c[i] + a * s[i];
        yh[i] = accumulate ? yh[i] + lo : lo;
        yh[i + half] = accumulate ? yh[i + half] + hi : hi;
      }
    }
  }
}
} // namespace detail

/// y = rope(x); theta is the frequency base (10000 by default in the format).
template <typename T, int64_t... S>
inline void ropeForward(T *y, const T *x, int64_t batchArg, int64_t seqArg,
                        int64_t headsArg, int64_t headDimArg, double theta) {
  const int64_t batch = detail::fixedOr<0, S...>(batchArg);
  const int64_t seq = detail::fixedOr<1, S...>(seqArg);
  const int64_t heads = detail::fixedOr<2, S...>(headsArg);
  const int64_t headDim = detail::fixedOr<3, S...>(headDimArg);
  detail::ropeRotate(y, x, batch, seq, heads, headDim, theta, false, false);
}

/// B: dx (+)= rope^T(dy): dx[i] = dy[i] cos + dy[i + half] sin,
/// dx[i + half] = dy[i + half] cos - dy[i] sin.
template <typename T, int64_t... S>
inline void ropeBackwardB(T *dx, const T *dy, int64_t batchArg,
                          int64_t seqArg, int64_t headsArg,
                          int64_t headDimArg, double theta,
                          bool accumulateArg = false) {
  const int64_t batch = detail::fixedOr<0, S...>(batchArg);
  const int64_t seq = detail::fixedOr<1, S...>(seqArg);
  const int64_t heads = detail::fixedOr<2, S...>(headsArg);
  const int64_t headDim = detail::fixedOr<3, S...>(headDimArg);
  const bool accumulate =
      detail::fixedOr<4, S...>(int64_t(accumulateArg)) != 0;
  detail::ropeRotate(dx, dy, batch, seq, heads, headDim, theta, true,
                     accumulate);
}

} // namespace pipert::cpu

#endif // PIPERT_KERNELS_CPU_ROPE_H
