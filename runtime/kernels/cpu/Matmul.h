//===- Matmul.h - Matrix multiplication with optional bias ---------------===//
//
// Numerics: float GEMMs are pipec's own (Gemm.h: its bits depend on the
// shape alone, not on the thread count), double GEMMs go to OpenBLAS
// (cblas_dgemm, whose results depend on its thread count, which the runtime
// fixes), with shapes that are a function of the op only, so the same op
// makes the same call in every layout. The bias is added after the GEMM with
// the same rounding as a separate `add`, and its gradient uses the same
// column reduction as `add`'s broadcast operand, so fusing a bias into a
// matmul changes no bits. W gradients accumulate (beta = 1): calling W for
// micro-batches 0, 1, 2, ... adds them in ascending order.
//
// Shapes: x is [M, K] (all leading dims of x flattened into M); w is [K, N],
// or [N, K] with transposeRhs; bias and its gradient are [N]; y is [M, N].
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CPU_MATMUL_H
#define PIPERT_KERNELS_CPU_MATMUL_H

#include "kernels/cpu/Numerics.h"

#include "kernels/cpu/Reduce.h"

#include <cstdint>

namespace pipert::cpu {

/// Fixes the number of threads OpenBLAS uses for every later GEMM of the
/// process. Results of a GEMM depend on it, so the runtime sets it once,
/// before the first step, and never changes it.
void setBlasThreadCount(int threads);
/// OpenMP threads of the calling thread's parallel regions (a rank's).
void setOmpThreadCount(int threads);

/// The number of threads OpenBLAS uses now.
int blasThreadCount();

namespace detail {
/// Row-major GEMM C[m, n] = op(A) op(B) + beta C: float through pipec's
/// GEMM (Gemm.h), double through cblas_dgemm (out of line, so that cblas.h
/// stays out of the header).
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float *a,
          int64_t lda, const float *b, int64_t ldb, float beta, float *c,
          int64_t ldc);
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const double *a,
          int64_t lda, const double *b, int64_t ldb, double beta, double *c,
          int64_t ldc);
} // namespace detail

/// y = x op(w) (+ bias when bias is not null), op(w) = w or w^T.
template <typename T, int64_t... S>
inline void matmulForward(T *y, const T *x, const T *w, const T *bias,
                          int64_t mArg, int64_t kArg, int64_t nArg,
                          bool transposeRhsArg) {
  const int64_t m = detail::fixedOr<0, S...>(mArg);
  const int64_t k = detail::fixedOr<1, S...>(kArg);
  const int64_t n = detail::fixedOr<2, S...>(nArg);
  const bool transposeRhs =
      detail::fixedOr<3, S...>(int64_t(transposeRhsArg)) != 0;
  if (m == 0 || n == 0)
    return;
  detail::gemm(false, transposeRhs, m, n, k, x, k, w, transposeRhs ? k : n,
               T(0), y, n);
  if (!bias)
    return;
#pragma omp parallel for schedule(static) if (m * n >= detail::kParallelWork)
  for (int64_t r = 0; r < m; ++r)
#pragma omp simd
    for (int64_t j = 0; j < n; ++j)
      y[r * n + j] = y[r * n + j] + bias[j];
}

/// B: dx = dy op(w)^T; dx is overwritten, or accumulated into when
/// accumulate is set.
template <typename T, int64_t... S>
inline void matmulBackwardB(T *dx, const T *dy, const T *w, int64_t mArg,
                            int64_t kArg, int64_t nArg, bool transposeRhsArg,
                            bool accumulateArg = false) {
  const int64_t m = detail::fixedOr<0, S...>(mArg);
  const int64_t k = detail::fixedOr<1, S...>(kArg);
  const int64_t n = detail::fixedOr<2, S...>(nArg);
  const bool transposeRhs =
      detail::fixedOr<3, S...>(int64_t(transposeRhsArg)) != 0;
  const bool accumulate =
      detail::fixedOr<4, S...>(int64_t(accumulateArg)) != 0;
  if (m == 0 || k == 0)
    return;
  // w [K, N]: dx = dy w^T; w [N, K]: dx = dy w.
  detail::gemm(false, !transposeRhs, m, k, n, dy, n, w, transposeRhs ? k : n,
               accumulate ? T(1) : T(0), dx, k);
}

/// W: dw += x^T dy ([K, N]), or dw += dy^T x ([N, K]) with transposeRhs; and
/// dbias[j] += sum over rows ascending of dy[:, j] when dbias is not null.
template <typename T, int64_t... S>
inline void matmulBackwardW(T *dw, T *dbias, const T *x, const T *dy,
                            int64_t mArg, int64_t kArg, int64_t nArg,
                            bool transposeRhsArg) {
  const int64_t m = detail::fixedOr<0, S...>(mArg);
  const int64_t k = detail::fixedOr<1, S...>(kArg);
  const int64_t n = detail::fixedOr<2, S...>(nArg);
  const bool transposeRhs =
      detail::fixedOr<3, S...>(int64_t(transposeRhsArg)) != 0;
  if (k != 0 && n != 0) {
    if (transposeRhs)
      detail::gemm(true, false, n, k, m, dy, n, x, k, T(1), dw, k);
    else
      detail::gemm(true, false, k, n, m, x, k, dy, n, T(1), dw, n);
  }
  if (dbias)
    detail::columnSums<T>(dbias, m, n, /*accumulate=*/true,
                          [dy, n](int64_t r, int64_t c) { return dy[r * n + c]; });
}

} // namespace pipert::cpu

#endif // PIPERT_KERNELS_CPU_MATMUL_H
