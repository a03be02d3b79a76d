//===- Softmax.cuh - softmax over the last axis: forward and B --------------===//
//
// One warp per row, as the norms: the maximum, the sum of exp(x - max) and
// the backward's sum(dy * y) are lane-strided fp32 sums combined by
// warpSum's fixed butterfly; outputs rounded once to bf16. (The loss's
// softmax is fused into CrossEntropy.cuh; this is the explicit nn.softmax.)
// Included by Kernels.cu only.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CUDA_SOFTMAX_CUH
#define PIPERT_KERNELS_CUDA_SOFTMAX_CUH

#include "kernels/cuda/Launch.cuh"

namespace pipert::cuda {

/// The maximum over a warp (order-free: max is exact).
__device__ inline float warpMax(float v) {
  for (int offset = 16; offset > 0; offset /= 2)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// --- kernels -----------------------------------------------------------------

__global__ void softmaxForwardKernel(bf16 *y, const bf16 *x, int64_t rows,
                                     int64_t dim) {
  int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  int lane = int(threadIdx.x % 32);
  if (row >= rows)
    return;
  const bf16 *xr = x + row * dim;
  float mx = -INFINITY;
  for (int64_t i = lane; i < dim; i += 32)
    mx = fmaxf(mx, __bfloat162float(xr[i]));
  mx = warpMax(mx);
  float sum = 0.0f;
  for (int64_t i = lane; i < dim; i += 32)
    sum += expf(__bfloat162float(xr[i]) - mx);
  sum = warpSum(sum);
  bf16 *yr = y + row * dim;
  for (int64_t i = lane; i < dim; i += 32)
    yr[i] = __float2bfloat16_rn(expf(__bfloat162float(xr[i]) - mx) / sum);
}

/// B: dx = y * (dy - sum(dy * y)).
__global__ void softmaxBackwardBKernel(bf16 *dx, const bf16 *dy, const bf16 *y,
                                       int64_t rows, int64_t dim) {
  int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  int lane = int(threadIdx.x % 32);
  if (row >= rows)
    return;
  const bf16 *gr = dy + row * dim, *yr = y + row * dim;
  float dot = 0.0f;
  for (int64_t i = lane; i < dim; i += 32)
    dot += __bfloat162float(gr[i]) * __bfloat162float(yr[i]);
  dot = warpSum(dot);
  bf16 *dxr = dx + row * dim;
  for (int64_t i = lane; i < dim; i += 32)
    dxr[i] = __float2bfloat16_rn(__bfloat162float(yr[i]) *
                                 (__bfloat162float(gr[i]) - dot));
}

// --- launchers ---------------------------------------------------------------

cudaError_t softmaxForward(bf16 *y, const bf16 *x, int64_t rows, int64_t dim,
                           cudaStream_t stream) {
  if (rows == 0)
    return cudaSuccess;
  softmaxForwardKernel<<<warpRowBlocks(rows), kBlock, 0, stream>>>(y, x, rows,
                                                                   dim);
  return launched();
}

cudaError_t softmaxBackwardB(bf16 *dx, const bf16 *dy, const bf16 *y,
                             int64_t rows, int64_t dim, cudaStream_t stream) {
  if (rows == 0)
    return cudaSuccess;
  softmaxBackwardBKernel<<<warpRowBlocks(rows), kBlock, 0, stream>>>(
      dx, dy, y, rows, dim);
  return launched();
}

} // namespace pipert::cuda

#endif // PIPERT_KERNELS_CUDA_SOFTMAX_CUH
