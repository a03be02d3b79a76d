//===- Matmul.cpp - OpenBLAS calls of the matmul kernels ------------------===//
//
// The out-of-line (non-template) part of Matmul.h: the GEMM overloads
// (float: pipec's GEMM; double: OpenBLAS) and the BLAS thread count, the
// only code that sees cblas.h.
//
//===----------------------------------------------------------------------===//

#include "kernels/cpu/Matmul.h"

#include "kernels/cpu/Gemm.h"

#include <omp.h>

#include <algorithm>
#include <cblas.h>

namespace pipert::cpu {

void detail::gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                  const float *a, int64_t lda, const float *b, int64_t ldb,
                  float beta, float *c, int64_t ldc) {
  // pipec's own GEMM (Gemm.h): its bits depend on the shape only, not on
  // the thread count, and it uses the rank's OpenMP threads.
  cpu::gemm(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
}

void detail::gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                  const double *a, int64_t lda, const double *b, int64_t ldb,
                  double beta, double *c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
              tb ? CblasTrans : CblasNoTrans, int(m), int(n), int(k), 1.0, a,
              int(std::max<int64_t>(lda, 1)), b, int(std::max<int64_t>(ldb, 1)),
              beta, c, int(std::max<int64_t>(ldc, 1)));
}

void setBlasThreadCount(int threads) { openblas_set_num_threads(threads); }
void setOmpThreadCount(int threads) { omp_set_num_threads(threads); }

int blasThreadCount() { return openblas_get_num_threads(); }

} // namespace pipert::cpu
