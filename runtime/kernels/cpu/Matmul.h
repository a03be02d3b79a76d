//===- Matmul.h - Matrix multiplication with optional bias ---------------===//
//
// Numerics: every GEMM goes to OpenBLAS (cblas_sgemm / cblas_dgemm) with
// shapes that are a function of the op only, so the same op makes the same
// call in every layout. OpenBLAS's blocking, and therefore its results,
// depend on the CPU it dispatches to and on its thread count: the runtime
// fixes the BLAS thread count (openblas_set_num_threads) and determinism is
// promised for a fixed machine type. The bias is added after the GEMM with
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

#include <cstdint>

namespace pipert::cpu {

/// Fixes the number of threads OpenBLAS uses for every later GEMM of the
/// process. Results of a GEMM depend on it, so the runtime sets it once,
/// before the first step, and never changes it.
void setBlasThreadCount(int threads);

/// The number of threads OpenBLAS uses now.
int blasThreadCount();

/// y = x op(w) (+ bias when bias is not null), op(w) = w or w^T.
template <typename T>
void matmulForward(T *y, const T *x, const T *w, const T *bias, int64_t m,
                   int64_t k, int64_t n, bool transposeRhs);

/// B: dx = dy op(w)^T; dx is overwritten, or accumulated into when
/// accumulate is set.
template <typename T>
void matmulBackwardB(T *dx, const T *dy, const T *w, int64_t m, int64_t k,
                     int64_t n, bool transposeRhs, bool accumulate = false);

/// W: dw += x^T dy ([K, N]), or dw += dy^T x ([N, K]) with transposeRhs; and
/// dbias[j] += sum over rows ascending of dy[:, j] when dbias is not null.
template <typename T>
void matmulBackwardW(T *dw, T *dbias, const T *x, const T *dy, int64_t m,
                     int64_t k, int64_t n, bool transposeRhs);

} // namespace pipert::cpu

#endif // PIPERT_KERNELS_CPU_MATMUL_H
