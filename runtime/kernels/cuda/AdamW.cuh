//===- AdamW.cuh - AdamW on fp32 masters, refreshing their bf16 copies -------===//
//
// The update of runtime/kernels/cpu/AdamW.h (optax.adamw), per element in
// fp32 on the fp32 master weights, gradients and moments; the bf16 working
// copy the kernels read is the master rounded once (RNE). The values that
// change per step (learning rate, clip scale, step) are read from device
// memory (the learning rate, clip scale and step that Optimizer.cuh's
// kernels left there), so the step can be captured as a CUDA graph
// (docs/CUDA.md); the bias corrections are computed in double from them. Included by
// Kernels.cu only.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CUDA_ADAMW_CUH
#define PIPERT_KERNELS_CUDA_ADAMW_CUH

#include "kernels/cuda/Kernels.h"
#include "kernels/cuda/Launch.cuh"

namespace pipert::cuda {

// --- kernels -----------------------------------------------------------------

__global__ void adamwKernel(float *param, bf16 *copy, const float *grad,
                            float *m, float *v, int64_t n, const double *lrPtr,
                            const double *clipPtr, const int64_t *stepPtr,
                            float beta1, float beta2, float eps,
                            float weightDecay) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n)
    return;
  const double t = double(*stepPtr + 1);
  const float lr = float(*lrPtr);
  const float b1c = float(1.0 - pow(double(beta1), t));
  const float b2c = float(1.0 - pow(double(beta2), t));
  const float oneMinusB1 = float(1.0 - double(beta1));
  const float oneMinusB2 = float(1.0 - double(beta2));
  float g = grad[i] * float(*clipPtr);
  float mi = beta1 * m[i] + oneMinusB1 * g;
  float vi = beta2 * v[i] + oneMinusB2 * g * g;
  m[i] = mi;
  v[i] = vi;
  float p = param[i];
  p = p - lr * (mi / b1c / (sqrtf(vi / b2c) + eps) + weightDecay * p);
  param[i] = p;
  copy[i] = __float2bfloat16_rn(p);
}

// --- launchers ---------------------------------------------------------------

cudaError_t adamw(float *param, bf16 *copy, const float *grad, float *m,
                  float *v, int64_t n, const double *lr, const double *clip,
                  const int64_t *step, float beta1, float beta2, float eps,
                  float weightDecay, cudaStream_t stream) {
  if (n == 0)
    return cudaSuccess;
  adamwKernel<<<blocksFor(n), kBlock, 0, stream>>>(param, copy, grad, m, v, n,
                                                   lr, clip, step, beta1, beta2,
                                                   eps, weightDecay);
  return launched();
}

} // namespace pipert::cuda

#endif // PIPERT_KERNELS_CUDA_ADAMW_CUH
