//===- Activation.cuh - GELU (tanh) and SiLU, forward and B -----------------===//
//
// Numerics: elementwise; the input is read from bf16, the function is
// evaluated in fp32 (tanhf, expf), the result rounded once to bf16 (RNE). No
// reductions, so every element's bits are independent of the launch shape.
// Included by Kernels.cu only (the launchers are declared in Kernels.h).
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CUDA_ACTIVATION_CUH
#define PIPERT_KERNELS_CUDA_ACTIVATION_CUH

#include "kernels/cuda/Launch.cuh"

namespace pipert::cuda {

// --- kernels -----------------------------------------------------------------

__device__ inline float geluScale() { return 0.7978845608028654f; }
__device__ inline float geluCubic() { return 0.044715f; }

__global__ void geluForwardKernel(bf16 *y, const bf16 *x, int64_t n) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n)
    return;
  float v = __bfloat162float(x[i]);
  float u = geluScale() * (v + geluCubic() * v * v * v);
  y[i] = __float2bfloat16_rn(0.5f * v * (1.0f + tanhf(u)));
}

__global__ void geluBackwardKernel(bf16 *dx, const bf16 *dy, const bf16 *x,
                                   int64_t n) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n)
    return;
  float v = __bfloat162float(x[i]);
  float u = geluScale() * (v + geluCubic() * v * v * v);
  float th = tanhf(u);
  float du = geluScale() * (1.0f + 3.0f * geluCubic() * v * v);
  float d = 0.5f * (1.0f + th) + 0.5f * v * (1.0f - th * th) * du;
  dx[i] = __float2bfloat16_rn(__bfloat162float(dy[i]) * d);
}

/// SiLU: y = x / (1 + expf(-x)); B: dx = dy * s (1 + x (1 - s)).
__global__ void siluForwardKernel(bf16 *y, const bf16 *x, int64_t n) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n)
    return;
  float v = __bfloat162float(x[i]);
  y[i] = __float2bfloat16_rn(v / (1.0f + expf(-v)));
}

__global__ void siluBackwardKernel(bf16 *dx, const bf16 *dy, const bf16 *x,
                                   int64_t n) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n)
    return;
  float v = __bfloat162float(x[i]);
  float s = 1.0f / (1.0f + expf(-v));
  dx[i] = __float2bfloat16_rn(__bfloat162float(dy[i]) * (s * (1.0f + v * (1.0f - s))));
}

// --- launchers ---------------------------------------------------------------

cudaError_t geluForward(bf16 *y, const bf16 *x, int64_t n,
                               cudaStream_t stream) {
  if (n == 0)
    return cudaSuccess;
  geluForwardKernel<<<blocksFor(n), kBlock, 0, stream>>>(y, x, n);
  return launched();
}

cudaError_t geluBackward(bf16 *dx, const bf16 *dy, const bf16 *x,
                                int64_t n, cudaStream_t stream) {
  if (n == 0)
    return cudaSuccess;
  geluBackwardKernel<<<blocksFor(n), kBlock, 0, stream>>>(dx, dy, x, n);
  return launched();
}

cudaError_t siluForward(bf16 *y, const bf16 *x, int64_t n,
                        cudaStream_t stream) {
  if (n == 0)
    return cudaSuccess;
  siluForwardKernel<<<blocksFor(n), kBlock, 0, stream>>>(y, x, n);
  return launched();
}

cudaError_t siluBackward(bf16 *dx, const bf16 *dy, const bf16 *x, int64_t n,
                         cudaStream_t stream) {
  if (n == 0)
    return cudaSuccess;
  siluBackwardKernel<<<blocksFor(n), kBlock, 0, stream>>>(dx, dy, x, n);
  return launched();
}

} // namespace pipert::cuda

#endif // PIPERT_KERNELS_CUDA_ACTIVATION_CUH
