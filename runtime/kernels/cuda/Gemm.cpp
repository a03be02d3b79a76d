//===- Gemm.cpp - row-major GEMMs as cuBLASLt's column-major problems -------===//
//
// A row-major [r, c] array is the column-major [c, r] matrix of its
// transpose with leading dimension c, so every row-major product Y = X W is
// asked as Y^T = W^T X^T (docs/CUDA.md). Each distinct problem is planned
// once: its layouts, its descriptor, and the heuristic's first algorithm
// under the fixed preferences of Gemm.h.
//
//===----------------------------------------------------------------------===//

#include "kernels/cuda/Gemm.h"

namespace pipert::cuda {

/// The descriptors and the algorithm of one problem.
struct Gemm::Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  ~Plan() {
    if (desc)
      cublasLtMatmulDescDestroy(desc);
    for (auto *l : {a, b, c})
      if (l)
        cublasLtMatrixLayoutDestroy(l);
  }
};

#define PIPERT_LT(x)                                                           \
  do {                                                                         \
    cublasStatus_t s_ = (x);                                                   \
    if (s_ != CUBLAS_STATUS_SUCCESS)                                           \
      return s_;                                                               \
  } while (0)

const char *gemmStatusString(cublasStatus_t status) {
  return cublasLtGetStatusString(status);
}

std::unique_ptr<Gemm> Gemm::create(void *workspace, size_t bytes,
                                   std::string &error) {
  std::unique_ptr<Gemm> g(new Gemm);
  if (reinterpret_cast<uintptr_t>(workspace) % kGemmAlignment != 0) {
    error = "the cuBLASLt workspace is not 256-byte aligned";
    return nullptr;
  }
  cublasStatus_t s = cublasLtCreate(&g->handle_);
  if (s != CUBLAS_STATUS_SUCCESS) {
    error = std::string("cublasLtCreate: ") + gemmStatusString(s);
    return nullptr;
  }
  g->workspace_ = workspace;
  g->workspaceBytes_ = bytes;
  return g;
}

Gemm::~Gemm() {
  plans_.clear();
  if (handle_)
    cublasLtDestroy(handle_);
}

/// Plans `p`: layouts, descriptor, and the heuristic's algorithm.
static cublasStatus_t planProblem(cublasLtHandle_t handle,
                                  const Gemm::Problem &p, size_t workspace,
                                  Gemm::Plan &plan) {
  const cudaDataType_t cType = p.accumulate ? CUDA_R_32F : CUDA_R_16BF;
  PIPERT_LT(cublasLtMatmulDescCreate(&plan.desc, CUBLAS_COMPUTE_32F,
                                     CUDA_R_32F));
  cublasOperation_t ta = p.transA ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasOperation_t tb = p.transB ? CUBLAS_OP_T : CUBLAS_OP_N;
  PIPERT_LT(cublasLtMatmulDescSetAttribute(
      plan.desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  PIPERT_LT(cublasLtMatmulDescSetAttribute(
      plan.desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  if (p.bias) {
    cublasLtEpilogue_t e = CUBLASLT_EPILOGUE_BIAS;
    PIPERT_LT(cublasLtMatmulDescSetAttribute(
        plan.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &e, sizeof(e)));
    cudaDataType_t biasType = CUDA_R_16BF;
    PIPERT_LT(cublasLtMatmulDescSetAttribute(
        plan.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &biasType,
        sizeof(biasType)));
  }
  // Stored shapes: A is rows x inner (inner x rows when transposed).
  PIPERT_LT(cublasLtMatrixLayoutCreate(
      &plan.a, CUDA_R_16BF, uint64_t(p.transA ? p.inner : p.rows),
      uint64_t(p.transA ? p.rows : p.inner), p.lda));
  PIPERT_LT(cublasLtMatrixLayoutCreate(
      &plan.b, CUDA_R_16BF, uint64_t(p.transB ? p.cols : p.inner),
      uint64_t(p.transB ? p.inner : p.cols), p.ldb));
  PIPERT_LT(cublasLtMatrixLayoutCreate(&plan.c, cType, uint64_t(p.rows),
                                       uint64_t(p.cols), p.ldc));

  cublasLtMatmulPreference_t pref = nullptr;
  PIPERT_LT(cublasLtMatmulPreferenceCreate(&pref));
  uint32_t noReduction = CUBLASLT_REDUCTION_SCHEME_NONE;
  uint32_t align = uint32_t(kGemmAlignment);
  cublasStatus_t s = CUBLAS_STATUS_SUCCESS;
  for (auto [attr, value, size] :
       {std::tuple{CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                   static_cast<const void *>(&workspace), sizeof(workspace)},
        std::tuple{CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK,
                   static_cast<const void *>(&noReduction),
                   sizeof(noReduction)},
        std::tuple{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                   static_cast<const void *>(&align), sizeof(align)},
        std::tuple{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                   static_cast<const void *>(&align), sizeof(align)},
        std::tuple{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                   static_cast<const void *>(&align), sizeof(align)},
        std::tuple{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
                   static_cast<const void *>(&align), sizeof(align)}})
    if (s == CUBLAS_STATUS_SUCCESS)
      s = cublasLtMatmulPreferenceSetAttribute(pref, attr, value, size);
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  if (s == CUBLAS_STATUS_SUCCESS)
    s = cublasLtMatmulAlgoGetHeuristic(handle, plan.desc, plan.a, plan.b,
                                       plan.c, plan.c, pref, 1, &result,
                                       &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (s != CUBLAS_STATUS_SUCCESS)
    return s;
  if (found == 0)
    return CUBLAS_STATUS_NOT_SUPPORTED;
  plan.algo = result.algo;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t Gemm::run(const Problem &p, void *c, const void *a,
                         const void *b, const void *bias,
                         cudaStream_t stream) {
  if (p.rows == 0 || p.cols == 0)
    return CUBLAS_STATUS_SUCCESS;
  // An empty sum: the W accumulator keeps its value; a forward or B result
  // would be zeros (plus the bias), which no lowering asks of a GEMM.
  if (p.inner == 0)
    return p.accumulate ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_SUPPORTED;
  for (const void *ptr : {static_cast<const void *>(c), a, b, bias})
    if (reinterpret_cast<uintptr_t>(ptr) % kGemmAlignment != 0)
      return CUBLAS_STATUS_INVALID_VALUE; // the heuristic was told 256
  auto it = plans_.find(p);
  if (it == plans_.end()) {
    // Planned before it is kept: a shape the heuristic refuses is not
    // remembered as planned.
    auto plan = std::make_unique<Plan>();
    PIPERT_LT(planProblem(handle_, p, workspaceBytes_, *plan));
    it = plans_.emplace(p, std::move(plan)).first;
  }
  Plan &plan = *it->second;
  if (p.bias)
    PIPERT_LT(cublasLtMatmulDescSetAttribute(
        plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
  const float alpha = 1.0f, beta = p.accumulate ? 1.0f : 0.0f;
  return cublasLtMatmul(handle_, plan.desc, &alpha, a, plan.a, b, plan.b,
                        &beta, c, plan.c, c, plan.c, &plan.algo, workspace_,
                        workspaceBytes_, stream);
}

// Row-major Y [m, n] = X [m, k] W [k, n] is column-major Y^T = W^T X^T:
// A = W^T (n x k; W [k, n] is W^T with ld n; a stored [n, k] W is read
// transposed with ld k), B = X^T (k x m, ld k), C = Y^T (n x m, ld n).
cublasStatus_t Gemm::forward(__nv_bfloat16 *y, const __nv_bfloat16 *x,
                             const __nv_bfloat16 *w,
                             const __nv_bfloat16 *bias, int64_t m, int64_t k,
                             int64_t n, bool transposeRhs,
                             cudaStream_t stream) {
  Problem p{transposeRhs, false, n, m, k, transposeRhs ? k : n, k, n,
            false, bias != nullptr};
  return run(p, y, w, x, bias, stream);
}

// dX [m, k] = dY [m, n] W^T: column-major dX^T (k x m) = W (k x n) dY^T
// (n x m, ld n); W [k, n] is read transposed (ld n), a stored [n, k] is W
// itself (ld k).
cublasStatus_t Gemm::backwardB(__nv_bfloat16 *dx, const __nv_bfloat16 *dy,
                               const __nv_bfloat16 *w, int64_t m, int64_t k,
                               int64_t n, bool transposeRhs,
                               cudaStream_t stream) {
  Problem p{!transposeRhs, false, k, m, n, transposeRhs ? k : n, n, k,
            false, false};
  return run(p, dx, w, dy, nullptr, stream);
}

// dW [k, n] += X^T dY: column-major dW^T (n x k, ld n) = dY^T (n x m, ld n)
// X (X^T stored k x m with ld k, read transposed). Transposed weights
// [n, k]: column-major dW (k x n, ld k) = X^T (k x m, ld k) dY (dY^T
// stored n x m, ld n, read transposed).
cublasStatus_t Gemm::backwardW(float *dw, const __nv_bfloat16 *x,
                               const __nv_bfloat16 *dy, int64_t m, int64_t k,
                               int64_t n, bool transposeRhs,
                               cudaStream_t stream) {
  if (transposeRhs) {
    Problem p{false, true, k, n, m, k, n, k, true, false};
    return run(p, dw, x, dy, nullptr, stream);
  }
  Problem p{false, true, n, k, m, n, k, n, true, false};
  return run(p, dw, dy, x, nullptr, stream);
}

} // namespace pipert::cuda
