//===- Rmsnorm.cuh - RMSNorm over the last axis: forward and B ---------------===//
//
// One warp per row, as Layernorm.cuh: x and dy are read from bf16, the
// mean of squares and the backward's projection are warp sums (warpSum,
// fixed order), rstd = 1 / sqrtf(ms + eps) with IEEE division and square
// root, outputs rounded once to bf16; rstd stays fp32 for the backward.
// Included by Kernels.cu only.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CUDA_RMSNORM_CUH
#define PIPERT_KERNELS_CUDA_RMSNORM_CUH

#include "kernels/cuda/Launch.cuh"

namespace pipert::cuda {

// --- kernels -----------------------------------------------------------------

__global__ void rmsnormForwardKernel(bf16 *y, float *rstd, const bf16 *x,
                                     const bf16 *gamma, int64_t rows,
                                     int64_t dim, float eps) {
  int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  int lane = int(threadIdx.x % 32);
  if (row >= rows)
    return;
  const bf16 *xr = x + row * dim;
  float sq = 0.0f;
  for (int64_t i = lane; i < dim; i += 32) {
    float v = __bfloat162float(xr[i]);
    sq += v * v;
  }
  float rs = 1.0f / sqrtf(warpSum(sq) / float(dim) + eps);
  bf16 *yr = y + row * dim;
  for (int64_t i = lane; i < dim; i += 32)
    yr[i] = __float2bfloat16_rn(__bfloat162float(xr[i]) * rs *
                                __bfloat162float(gamma[i]));
  if (lane == 0)
    rstd[row] = rs;
}

/// B: dx = rstd * (g - xhat * mean(g * xhat)), g = dy * gamma, xhat = x rstd.
__global__ void rmsnormBackwardBKernel(bf16 *dx, const bf16 *dy, const bf16 *x,
                                       const float *rstd, const bf16 *gamma,
                                       int64_t rows, int64_t dim) {
  int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  int lane = int(threadIdx.x % 32);
  if (row >= rows)
    return;
  const bf16 *xr = x + row * dim, *gr = dy + row * dim;
  const float rs = rstd[row];
  float sgx = 0.0f;
  for (int64_t i = lane; i < dim; i += 32) {
    float g = __bfloat162float(gr[i]) * __bfloat162float(gamma[i]);
    sgx += g * (__bfloat162float(xr[i]) * rs);
  }
  const float meanGX = warpSum(sgx) / float(dim);
  bf16 *dxr = dx + row * dim;
  for (int64_t i = lane; i < dim; i += 32) {
    float g = __bfloat162float(gr[i]) * __bfloat162float(gamma[i]);
    float xhat = __bfloat162float(xr[i]) * rs;
    dxr[i] = __float2bfloat16_rn((g - xhat * meanGX) * rs);
  }
}

// --- launchers ---------------------------------------------------------------

cudaError_t rmsnormForward(bf16 *y, float *rstd, const bf16 *x,
                           const bf16 *gamma, int64_t rows, int64_t dim,
                           float eps, cudaStream_t stream) {
  if (rows == 0)
    return cudaSuccess;
  rmsnormForwardKernel<<<warpRowBlocks(rows), kBlock, 0, stream>>>(y, rstd, x, gamma, rows, dim, eps);
  return launched();
}

cudaError_t rmsnormBackwardB(bf16 *dx, const bf16 *dy, const bf16 *x,
                             const float *rstd, const bf16 *gamma,
                             int64_t rows, int64_t dim, cudaStream_t stream) {
  if (rows == 0)
    return cudaSuccess;
  rmsnormBackwardBKernel<<<warpRowBlocks(rows), kBlock, 0, stream>>>(dx, dy, x, rstd, gamma, rows, dim);
  return launched();
}

} // namespace pipert::cuda

#endif // PIPERT_KERNELS_CUDA_RMSNORM_CUH
