//===- Fused.h - the fused units of --nn-fuse ------------------------------===//
//
// Each kernel here replaces a group of ops that --nn-fuse forms (docs/
// KERNELS.md) and gives exactly the bits of the kernels it replaces: it
// evaluates the same shared expressions (detail::gelu, detail::layernormRow,
// detail::rmsnormRow) on the same values in the same order, and saves only
// memory passes and parallel regions. test/unit/kernels/FusedTest.cpp
// compares every one with its parts on odd shapes.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CPU_FUSED_H
#define PIPERT_KERNELS_CPU_FUSED_H

#include "kernels/cpu/Numerics.h"

#include "kernels/cpu/Activation.h"
#include "kernels/cpu/Matmul.h"
#include "kernels/cpu/Norm.h"

#include <cstdint>

namespace pipert::cpu {

namespace detail {
/// One row of a residual add: sr = ar + br (addForward's expression).
template <typename T>
inline void addRow(T *sr, const T *ar, const T *br, int64_t dim) {
#pragma omp simd
  for (int64_t i = 0; i < dim; ++i)
    sr[i] = ar[i] + br[i];
}
} // namespace detail

/// pre = x op(w) (+ bias); y = gelu(pre): matmulForward then geluForward.
/// The bias add and the GELU share one pass over the GEMM's output.
template <typename T, int64_t... S>
inline void matmulGeluForward(T *pre, T *y, const T *x, const T *w,
                              const T *bias, int64_t mArg, int64_t kArg,
                              int64_t nArg, bool transposeRhsArg) {
  const int64_t m = detail::fixedOr<0, S...>(mArg);
  const int64_t n = detail::fixedOr<2, S...>(nArg);
  // The GEMM alone; its bias epilogue joins the GELU's pass below.
  matmulForward<T, S...>(pre, x, w, nullptr, mArg, kArg, nArg,
                         transposeRhsArg);
#pragma omp parallel for schedule(static)                                      \
    if (m * n * 16 >= detail::kParallelWork)
  for (int64_t r = 0; r < m; ++r) {
    T *pr = pre + r * n, *yr = y + r * n;
    if (bias) {
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) {
        T v = pr[j] + bias[j];
        pr[j] = v;
        yr[j] = detail::gelu(v);
      }
    } else {
#pragma omp simd
      for (int64_t j = 0; j < n; ++j)
        yr[j] = detail::gelu(pr[j]);
    }
  }
}

/// sum = a + b (same shapes); y, mean, rstd = layernorm(sum): addForward
/// then layernormForward, one row at a time.
template <typename T, int64_t... S>
inline void addLayernormForward(T *sum, T *y, T *mean, T *rstd, const T *a,
                                const T *b, const T *gamma, const T *beta,
                                int64_t rowsArg, int64_t dimArg, double eps) {
  const int64_t rows = detail::fixedOr<0, S...>(rowsArg);
  const int64_t dim = detail::fixedOr<1, S...>(dimArg);
#pragma omp parallel for schedule(static)                                      \
    if (rows * dim * 5 >= detail::kParallelWork)
  for (int64_t r = 0; r < rows; ++r) {
    T *sr = sum + r * dim;
    detail::addRow(sr, a + r * dim, b + r * dim, dim);
    detail::layernormRow(y + r * dim, mean[r], rstd[r], sr, gamma, beta, dim,
                         eps);
  }
}

/// sum = a + b (same shapes); y, rstd = rmsnorm(sum): addForward then
/// rmsnormForward, one row at a time.
template <typename T, int64_t... S>
inline void addRmsnormForward(T *sum, T *y, T *rstd, const T *a, const T *b,
                              const T *gamma, int64_t rowsArg, int64_t dimArg,
                              double eps) {
  const int64_t rows = detail::fixedOr<0, S...>(rowsArg);
  const int64_t dim = detail::fixedOr<1, S...>(dimArg);
#pragma omp parallel for schedule(static)                                      \
    if (rows * dim * 4 >= detail::kParallelWork)
  for (int64_t r = 0; r < rows; ++r) {
    T *sr = sum + r * dim;
    detail::addRow(sr, a + r * dim, b + r * dim, dim);
    detail::rmsnormRow(y + r * dim, rstd[r], sr, gamma, dim, eps);
  }
}

} // namespace pipert::cpu

#endif // PIPERT_KERNELS_CPU_FUSED_H
