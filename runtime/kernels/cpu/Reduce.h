//===- Reduce.h - Fixed-order reductions used inside the CPU kernels ------===//
//
// Internal to the kernel headers (compiled with -ffp-contract=off): every
// sum over a row is split into 8 interleaved lanes (element i goes to lane
// i % 8) that are combined by a fixed tree at the end. The order of additions
// is therefore a function of the length only: the compiler may vectorise the
// lanes (they are independent) but may not reassociate them, and the result
// is the same for any thread count because a row is never split across
// threads.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CPU_REDUCE_H
#define PIPERT_KERNELS_CPU_REDUCE_H

#include "kernels/cpu/Numerics.h"

#include <cstdint>

namespace pipert::cpu::detail {

/// Number of interleaved partial sums of a fixed-order reduction.
constexpr int kLanes = 8;

/// Sums f(i) for i in [0, n) in the fixed 8-lane order described above.
template <typename T, typename F>
inline T reduceFixed(int64_t n, F f) {
  T acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l)
      acc[l] += f(i + l);
  for (int l = 0; i + l < n; ++l)
    acc[l] += f(i + l);
  return ((acc[0] + acc[4]) + (acc[2] + acc[6])) +
         ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

/// Sum of x[0..n) in the fixed order.
template <typename T> inline T sumFixed(const T *x, int64_t n) {
  return reduceFixed<T>(n, [x](int64_t i) { return x[i]; });
}

/// Dot product of a[0..n) and b[0..n) in the fixed order.
template <typename T> inline T dotFixed(const T *a, const T *b, int64_t n) {
  return reduceFixed<T>(n, [a, b](int64_t i) { return a[i] * b[i]; });
}

/// Column sums of a row-major [rows, cols] matrix: out[c] = sum over r
/// ascending of x[r, c] (+ out[c] first when accumulate). Parallel over
/// columns, so each column keeps its row order for any thread count. Shared
/// by matmul's bias gradient and add's broadcast gradient so that fusing a
/// bias into a matmul changes no bits.
template <typename T, typename F>
inline void columnSums(T *out, int64_t rows, int64_t cols, bool accumulate,
                       F f) {
  constexpr int64_t kBlock = 64;
  int64_t blocks = (cols + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelWork)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    int64_t c0 = blk * kBlock, c1 = c0 + kBlock < cols ? c0 + kBlock : cols;
    T acc[kBlock];
    for (int64_t c = c0; c < c1; ++c)
      acc[c - c0] = T(0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = c0; c < c1; ++c)
        acc[c - c0] += f(r, c);
    for (int64_t c = c0; c < c1; ++c)
      out[c] = accumulate ? out[c] + acc[c - c0] : acc[c - c0];
  }
}

} // namespace pipert::cpu::detail

#endif // PIPERT_KERNELS_CPU_REDUCE_H
