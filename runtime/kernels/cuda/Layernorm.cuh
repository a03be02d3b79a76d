//===- Layernorm.cuh - LayerNorm over the last axis: forward and B ----------===//
//
// One warp per row. Numerics: x is read from bf16; the mean and the
// two-pass variance are fp32 sums, each lane adding its strided elements
// in ascending order and the 32 lane sums combined by a fixed xor-butterfly
// (every lane ends with the same bits), so the result depends on the row
// length only, never on the launch; rstd = 1 / sqrtf(var + eps) with IEEE
// division and square root (no fast math); y is rounded once to bf16.
// mean and rstd stay fp32 for the backward. Included by Kernels.cu only.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CUDA_LAYERNORM_CUH
#define PIPERT_KERNELS_CUDA_LAYERNORM_CUH

#include "kernels/cuda/Launch.cuh"

namespace pipert::cuda {

// --- kernels -----------------------------------------------------------------

__global__ void layernormForwardKernel(bf16 *y, float *mean, float *rstd,
                                       const bf16 *x, const bf16 *gamma,
                                       const bf16 *beta, int64_t rows,
                                       int64_t dim, float eps) {
  int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  int lane = int(threadIdx.x % 32);
  if (row >= rows)
    return;
  const bf16 *xr = x + row * dim;
  float sum = 0.0f;
  for (int64_t i = lane; i < dim; i += 32)
    sum += __bfloat162float(xr[i]);
  float mu = warpSum(sum) / float(dim);
  float sq = 0.0f;
  for (int64_t i = lane; i < dim; i += 32) {
    float d = __bfloat162float(xr[i]) - mu;
    sq += d * d;
  }
  float rs = 1.0f / sqrtf(warpSum(sq) / float(dim) + eps);
  bf16 *yr = y + row * dim;
  for (int64_t i = lane; i < dim; i += 32)
    yr[i] = __float2bfloat16_rn((__bfloat162float(xr[i]) - mu) * rs *
                                    __bfloat162float(gamma[i]) +
                                __bfloat162float(beta[i]));
  if (lane == 0) {
    mean[row] = mu;
    rstd[row] = rs;
  }
}

/// B: dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma,
/// xhat = (x - mean) * rstd; the two means are warp sums as in the forward.
__global__ void layernormBackwardBKernel(bf16 *dx, const bf16 *dy,
                                         const bf16 *x, const float *mean,
                                         const float *rstd, const bf16 *gamma,
                                         int64_t rows, int64_t dim) {
  int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  int lane = int(threadIdx.x % 32);
  if (row >= rows)
    return;
  const bf16 *xr = x + row * dim, *gr = dy + row * dim;
  const float mu = mean[row], rs = rstd[row];
  float sg = 0.0f, sgx = 0.0f;
  for (int64_t i = lane; i < dim; i += 32) {
    float g = __bfloat162float(gr[i]) * __bfloat162float(gamma[i]);
    sg += g;
    sgx += g * ((__bfloat162float(xr[i]) - mu) * rs);
  }
  const float meanG = warpSum(sg) / float(dim);
  const float meanGX = warpSum(sgx) / float(dim);
  bf16 *dxr = dx + row * dim;
  for (int64_t i = lane; i < dim; i += 32) {
    float xhat = (__bfloat162float(xr[i]) - mu) * rs;
    float g = __bfloat162float(gr[i]) * __bfloat162float(gamma[i]);
    dxr[i] = __float2bfloat16_rn((g - meanG - xhat * meanGX) * rs);
  }
}

// --- launchers ---------------------------------------------------------------

cudaError_t layernormForward(bf16 *y, float *mean, float *rstd, const bf16 *x,
                             const bf16 *gamma, const bf16 *beta, int64_t rows,
                             int64_t dim, float eps, cudaStream_t stream) {
  if (rows == 0)
    return cudaSuccess;
  layernormForwardKernel<<<warpRowBlocks(rows), kBlock, 0, stream>>>(y, mean, rstd, x, gamma,
                                                        beta, rows, dim, eps);
  return launched();
}

cudaError_t layernormBackwardB(bf16 *dx, const bf16 *dy, const bf16 *x,
                               const float *mean, const float *rstd,
                               const bf16 *gamma, int64_t rows, int64_t dim,
                               cudaStream_t stream) {
  if (rows == 0)
    return cudaSuccess;
  layernormBackwardBKernel<<<warpRowBlocks(rows), kBlock, 0, stream>>>(dx, dy, x, mean, rstd,
                                                          gamma, rows, dim);
  return launched();
}

} // namespace pipert::cuda

#endif // PIPERT_KERNELS_CUDA_LAYERNORM_CUH
