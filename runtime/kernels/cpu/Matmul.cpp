//===- Matmul.cpp - Matrix multiplication through OpenBLAS ----------------===//

#include "kernels/cpu/Matmul.h"

#include "kernels/cpu/Reduce.h"

#include <algorithm>
#include <cblas.h>

namespace pipert::cpu {

/// Row-major GEMM C[m, n] = alpha op(A) op(B) + beta C for float and double.
static void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                 const float *a, int64_t lda, const float *b, int64_t ldb,
                 float beta, float *c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
              tb ? CblasTrans : CblasNoTrans, int(m), int(n), int(k), 1.0f, a,
              int(std::max<int64_t>(lda, 1)), b, int(std::max<int64_t>(ldb, 1)),
              beta, c, int(std::max<int64_t>(ldc, 1)));
}
static void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                 const double *a, int64_t lda, const double *b, int64_t ldb,
                 double beta, double *c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
              tb ? CblasTrans : CblasNoTrans, int(m), int(n), int(k), 1.0, a,
              int(std::max<int64_t>(lda, 1)), b, int(std::max<int64_t>(ldb, 1)),
              beta, c, int(std::max<int64_t>(ldc, 1)));
}

void setBlasThreadCount(int threads) { openblas_set_num_threads(threads); }

int blasThreadCount() { return openblas_get_num_threads(); }

template <typename T>
void matmulForward(T *y, const T *x, const T *w, const T *bias, int64_t m,
                   int64_t k, int64_t n, bool transposeRhs) {
  if (m == 0 || n == 0)
    return;
  gemm(false, transposeRhs, m, n, k, x, k, w, transposeRhs ? k : n, T(0), y,
       n);
  if (!bias)
    return;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < m; ++r)
    for (int64_t j = 0; j < n; ++j)
      y[r * n + j] = y[r * n + j] + bias[j];
}

template <typename T>
void matmulBackwardB(T *dx, const T *dy, const T *w, int64_t m, int64_t k,
                     int64_t n, bool transposeRhs, bool accumulate) {
  if (m == 0 || k == 0)
    return;
  // w [K, N]: dx = dy w^T; w [N, K]: dx = dy w.
  gemm(false, !transposeRhs, m, k, n, dy, n, w, transposeRhs ? k : n,
       accumulate ? T(1) : T(0), dx, k);
}

template <typename T>
void matmulBackwardW(T *dw, T *dbias, const T *x, const T *dy, int64_t m,
                     int64_t k, int64_t n, bool transposeRhs) {
  if (k != 0 && n != 0) {
    if (transposeRhs)
      gemm(true, false, n, k, m, dy, n, x, k, T(1), dw, k);
    else
      gemm(true, false, k, n, m, x, k, dy, n, T(1), dw, n);
  }
  if (dbias)
    detail::columnSums<T>(dbias, m, n, /*accumulate=*/true,
                          [dy, n](int64_t r, int64_t c) { return dy[r * n + c]; });
}

#define PIPERT_INSTANTIATE(T)                                                  \
  template void matmulForward<T>(T *, const T *, const T *, const T *,         \
                                 int64_t, int64_t, int64_t, bool);             \
  template void matmulBackwardB<T>(T *, const T *, const T *, int64_t,         \
                                   int64_t, int64_t, bool, bool);              \
  template void matmulBackwardW<T>(T *, T *, const T *, const T *, int64_t,    \
                                   int64_t, int64_t, bool);
PIPERT_INSTANTIATE(float)
PIPERT_INSTANTIATE(double)
#undef PIPERT_INSTANTIATE

} // namespace pipert::cpu
