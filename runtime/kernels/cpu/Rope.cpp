//===- Rope.cpp - Rotary position embedding (Llama rotate-half) -----------===//

#include "kernels/cpu/Rope.h"

#include <cmath>
#include <vector>

namespace pipert::cpu {

/// cos and sin of every (position, frequency) pair, [seq, half] each.
template <typename T>
static void angleTables(std::vector<T> &cosT, std::vector<T> &sinT,
                        int64_t seq, int64_t headDim, double theta) {
  int64_t half = headDim / 2;
  cosT.resize(static_cast<size_t>(seq * half));
  sinT.resize(static_cast<size_t>(seq * half));
  for (int64_t i = 0; i < half; ++i) {
    double invFreq = 1.0 / std::pow(theta, double(2 * i) / double(headDim));
    for (int64_t t = 0; t < seq; ++t) {
      double angle = double(t) * invFreq;
      cosT[size_t(t * half + i)] = T(std::cos(angle));
      sinT[size_t(t * half + i)] = T(std::sin(angle));
    }
  }
}

/// Rotates every head of every token by +angle (sign 1) or -angle (sign -1,
/// the transpose), writing or adding into y.
template <typename T>
static void rotate(T *y, const T *x, int64_t batch, int64_t seq, int64_t heads,
                   int64_t headDim, double theta, bool transpose,
                   bool accumulate) {
  std::vector<T> cosT, sinT;
  angleTables(cosT, sinT, seq, headDim, theta);
  int64_t half = headDim / 2, rows = batch * seq;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    int64_t t = r % seq;
    const T *c = cosT.data() + t * half, *s = sinT.data() + t * half;
    for (int64_t h = 0; h < heads; ++h) {
      const T *xh = x + (r * heads + h) * headDim;
      T *yh = y + (r * heads + h) * headDim;
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

template <typename T>
void ropeForward(T *y, const T *x, int64_t batch, int64_t seq, int64_t heads,
                 int64_t headDim, double theta) {
  rotate(y, x, batch, seq, heads, headDim, theta, false, false);
}

template <typename T>
void ropeBackwardB(T *dx, const T *dy, int64_t batch, int64_t seq,
                   int64_t heads, int64_t headDim, double theta,
                   bool accumulate) {
  rotate(dx, dy, batch, seq, heads, headDim, theta, true, accumulate);
}

#define PIPERT_INSTANTIATE(T)                                                  \
  template void ropeForward<T>(T *, const T *, int64_t, int64_t, int64_t,      \
                               int64_t, double);                               \
  template void ropeBackwardB<T>(T *, const T *, int64_t, int64_t, int64_t,    \
                                 int64_t, double, bool);
PIPERT_INSTANTIATE(float)
PIPERT_INSTANTIATE(double)
#undef PIPERT_INSTANTIATE

} // namespace pipert::cpu
