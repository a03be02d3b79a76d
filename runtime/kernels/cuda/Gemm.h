//===- Gemm.h - the cuda target's GEMMs through cuBLASLt -----------*- C++ -*-===//
//
// Every matmul of the cuda target: forward (bf16 out, optional bias), B
// (bf16 out) and W (added into the fp32 accumulator), row-major operands as
// the cpu kernels (Matmul.h): x [m, k], w [k, n] or [n, k] when transposeRhs,
// y [m, n]. Compute and scaling in fp32.
//
// Determinism (docs/CUDA.md): the algorithm of every shape comes from
// cublasLtMatmulAlgoGetHeuristic with fixed preferences, never from timing:
// the same maximum workspace for every shape, the reduction-scheme mask
// NONE (no split-K reduction, so no atomics and no order that changes
// between runs), and 256-byte minimum alignments for every operand (the
// arena aligns every GEMM operand to 256 bytes; the heuristic's answer
// depends on alignment). One 32 MiB workspace per rank, allocated with the
// rank (Target.cpp); between GEMMs the rank's column sums and embedding
// gradient use it too (Calls.h's Context::workspace: one stream a rank).
// With these, a shape's bits are the same in every run and every layout.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CUDA_GEMM_H
#define PIPERT_KERNELS_CUDA_GEMM_H

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>

namespace pipert::cuda {

/// The alignment the heuristic is told every operand has (and the arena
/// guarantees).
constexpr int64_t kGemmAlignment = 256;

/// One rank's cuBLASLt handle, workspace and chosen algorithms.
class Gemm {
public:
  /// `workspace` (device memory, kGemmAlignment aligned) of `bytes` bytes is
  /// the only scratch the GEMMs use. Returns null and sets `error` when
  /// cuBLASLt cannot start.
  static std::unique_ptr<Gemm> create(void *workspace, size_t bytes,
                                      std::string &error);
  ~Gemm();
  Gemm(const Gemm &) = delete;
  Gemm &operator=(const Gemm &) = delete;

  /// y = x w (+ bias[n] on every row).
  cublasStatus_t forward(__nv_bfloat16 *y, const __nv_bfloat16 *x,
                         const __nv_bfloat16 *w, const __nv_bfloat16 *bias,
                         int64_t m, int64_t k, int64_t n, bool transposeRhs,
                         cudaStream_t stream);
  /// B: dx [m, k] = dy w^T.
  cublasStatus_t backwardB(__nv_bfloat16 *dx, const __nv_bfloat16 *dy,
                           const __nv_bfloat16 *w, int64_t m, int64_t k,
                           int64_t n, bool transposeRhs, cudaStream_t stream);
  /// W: dw += x^T dy (dw [k, n], fp32), or dw += dy^T x ([n, k]) when
  /// transposeRhs.
  cublasStatus_t backwardW(float *dw, const __nv_bfloat16 *x,
                           const __nv_bfloat16 *dy, int64_t m, int64_t k,
                           int64_t n, bool transposeRhs, cudaStream_t stream);

  /// The GEMM shapes planned so far (each asked of the heuristic once).
  size_t plannedShapes() const { return plans_.size(); }

  /// One column-major problem: C [rows, cols] = op(A) op(B) (+ C).
  struct Problem {
    bool transA, transB;
    int64_t rows, cols, inner;
    int64_t lda, ldb, ldc;
    bool accumulate; ///< C is fp32 and beta = 1 (else bf16, beta = 0)
    bool bias;       ///< the bias epilogue (bf16 vector of `rows`)
    auto key() const {
      return std::make_tuple(transA, transB, rows, cols, inner, lda, ldb, ldc,
                             accumulate, bias);
    }
    bool operator<(const Problem &o) const { return key() < o.key(); }
  };
  struct Plan;

private:
  Gemm() = default;
  cublasStatus_t run(const Problem &p, void *c, const void *a, const void *b,
                     const void *bias, cudaStream_t stream);

  cublasLtHandle_t handle_ = nullptr;
  void *workspace_ = nullptr;
  size_t workspaceBytes_ = 0;
  std::map<Problem, std::unique_ptr<Plan>> plans_;
};

/// cuBLASLt's name of a status.
const char *gemmStatusString(cublasStatus_t status);

} // namespace pipert::cuda

#endif // PIPERT_KERNELS_CUDA_GEMM_H
