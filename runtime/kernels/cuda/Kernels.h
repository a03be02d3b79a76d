//===- Kernels.h - the cuda kernel library's launchers, for C++ callers ------===//
//
// The first kernels of the cuda target (issue 12): each launcher takes a
// cudaStream_t, launches, and returns the launch's error. Storage: bf16
// activations and weight copies, fp32 masters, gradients, moments and
// statistics (docs/CUDA.md). Defined in the family headers (*.cuh), which
// Kernels.cu compiles into libpipert_kernels_cuda for sm_90a and sm_80.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CUDA_KERNELS_H
#define PIPERT_KERNELS_CUDA_KERNELS_H

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace pipert::cuda {

/// What changes every optimizer step, in device memory from the start so
/// that a captured step reads this step's values.
struct AdamWStep {
  double lr = 0;
  double clip = 1;
  int64_t step = 0; ///< 0-based; the bias correction uses step + 1
};

/// y = gelu_tanh(x), n elements.
cudaError_t geluForward(__nv_bfloat16 *y, const __nv_bfloat16 *x, int64_t n,
                        cudaStream_t stream);
/// dx = dy * gelu_tanh'(x).
cudaError_t geluBackward(__nv_bfloat16 *dx, const __nv_bfloat16 *dy,
                         const __nv_bfloat16 *x, int64_t n,
                         cudaStream_t stream);
/// y = silu(x) = x / (1 + exp(-x)); dx = dy * silu'(x).
cudaError_t siluForward(__nv_bfloat16 *y, const __nv_bfloat16 *x, int64_t n,
                        cudaStream_t stream);
cudaError_t siluBackward(__nv_bfloat16 *dx, const __nv_bfloat16 *dy,
                         const __nv_bfloat16 *x, int64_t n,
                         cudaStream_t stream);
/// y = x * rstd * gamma per row of dim, rstd fp32; and its B.
cudaError_t rmsnormForward(__nv_bfloat16 *y, float *rstd,
                           const __nv_bfloat16 *x, const __nv_bfloat16 *gamma,
                           int64_t rows, int64_t dim, float eps,
                           cudaStream_t stream);
cudaError_t rmsnormBackwardB(__nv_bfloat16 *dx, const __nv_bfloat16 *dy,
                             const __nv_bfloat16 *x, const float *rstd,
                             const __nv_bfloat16 *gamma, int64_t rows,
                             int64_t dim, cudaStream_t stream);
/// Rotary embedding (Llama rotate-half) of [batch, seq, heads * headDim],
/// with the fp32 tables cos/sin [seq, headDim / 2] the runtime computes
/// once (in double, rounded once, as the cpu kernel); transpose: the B.
cudaError_t rope(__nv_bfloat16 *y, const __nv_bfloat16 *x, const float *cosT,
                 const float *sinT, int64_t batch, int64_t seq, int64_t heads,
                 int64_t headDim, bool transpose, cudaStream_t stream);
/// y = (x - mean) * rstd * gamma + beta per row of dim; mean and rstd fp32.
cudaError_t layernormForward(__nv_bfloat16 *y, float *mean, float *rstd,
                             const __nv_bfloat16 *x,
                             const __nv_bfloat16 *gamma,
                             const __nv_bfloat16 *beta, int64_t rows,
                             int64_t dim, float eps, cudaStream_t stream);
/// B: dx = rstd (g - mean(g) - xhat mean(g xhat)), g = dy gamma.
cudaError_t layernormBackwardB(__nv_bfloat16 *dx, const __nv_bfloat16 *dy,
                               const __nv_bfloat16 *x, const float *mean,
                               const float *rstd, const __nv_bfloat16 *gamma,
                               int64_t rows, int64_t dim, cudaStream_t stream);
/// out[t] = table[ids[t]] (an id outside [0, vocab) gives zeros).
cudaError_t embeddingForward(__nv_bfloat16 *out, const __nv_bfloat16 *table,
                             const int32_t *ids, int64_t tokens, int64_t vocab,
                             int64_t dim, cudaStream_t stream);
/// dtable[ids[t]] += dout[t], fp32, tokens in ascending order, no atomics.
cudaError_t embeddingBackwardW(float *dtable, const __nv_bfloat16 *dout,
                               const int32_t *ids, int64_t tokens,
                               int64_t vocab, int64_t dim,
                               cudaStream_t stream);
/// One AdamW step of n fp32 masters; copy gets them rounded to bf16.
cudaError_t adamw(float *param, __nv_bfloat16 *copy, const float *grad,
                  float *m, float *v, int64_t n, const AdamWStep *step,
                  float beta1, float beta2, float eps, float weightDecay,
                  cudaStream_t stream);

} // namespace pipert::cuda

#endif // PIPERT_KERNELS_CUDA_KERNELS_H
