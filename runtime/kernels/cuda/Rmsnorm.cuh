//===- Rmsnorm.cuh - RMSNorm over the last axis: forward and B ---------------===//
//
// One warp per row, as Layernorm.cuh (RowOrder.h's order, 16-byte accesses
// where the row is a multiple of 8): x and dy are read from bf16, the mean
// of squares and the backward's projection are warp sums (warpSum, fixed
// order), rstd = 1 / sqrtf(ms + eps) with IEEE division and square root,
// outputs rounded once to bf16; rstd stays fp32 for the backward. The
// residual form (add_rmsnorm_forward) stores bf16(a + b) and normalises it
// in the same pass, as Layernorm.cuh's does. Included by Kernels.cu only.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CUDA_RMSNORM_CUH
#define PIPERT_KERNELS_CUDA_RMSNORM_CUH

#include "kernels/cuda/Launch.cuh"
#include "kernels/cuda/RowOrder.h"

namespace pipert::cuda {

// --- kernels -----------------------------------------------------------------

/// y = x rstd gamma per row; with `b`, x = bf16(a + b) is computed and
/// stored to `sum` first (a is `x`).
template <int V>
__global__ void rmsnormForwardKernel(bf16 *y, float *rstd, bf16 *sum,
                                     const bf16 *x, const bf16 *b,
                                     const bf16 *gamma, int64_t rows,
                                     int64_t dim, float eps, bool aligned) {
  int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = int(threadIdx.x % 32);
  if (row >= rows)
    return;
  const bf16 *xr = x + row * dim;
  const bf16 *br = b ? b + row * dim : nullptr;
  bf16 *sr = b ? sum + row * dim : nullptr;
  float sq = 0.0f;
  for (int64_t i = int64_t(lane) * V; i < dim; i += 32 * V) {
    float u[V];
    if (b)
      addRoundStore<V>(u, xr + i, br + i, sr + i, aligned);
    else
      loadBf16At<V>(u, xr + i, aligned);
#pragma unroll
    for (int k = 0; k < V; ++k)
      sq += u[k] * u[k];
  }
  if (b)
    xr = sr;
  const float rs = 1.0f / sqrtf(warpSum(sq) / float(dim) + eps);
  bf16 *yr = y + row * dim;
  for (int64_t i = int64_t(lane) * V; i < dim; i += 32 * V) {
    float u[V], g[V];
    loadBf16At<V>(u, xr + i, aligned);
    loadBf16At<V>(g, gamma + i, aligned);
#pragma unroll
    for (int k = 0; k < V; ++k)
      u[k] = u[k] * rs * g[k];
    storeBf16At<V>(yr + i, u, aligned);
  }
  if (lane == 0)
    rstd[row] = rs;
}

/// B: dx = rstd * (g - xhat * mean(g * xhat)), g = dy * gamma, xhat = x rstd.
template <int V>
__global__ void rmsnormBackwardBKernel(bf16 *dx, const bf16 *dy, const bf16 *x,
                                       const float *rstd, const bf16 *gamma,
                                       int64_t rows, int64_t dim,
                                       bool aligned) {
  int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = int(threadIdx.x % 32);
  if (row >= rows)
    return;
  const bf16 *xr = x + row * dim, *gr = dy + row * dim;
  const float rs = rstd[row];
  float sgx = 0.0f;
  for (int64_t i = int64_t(lane) * V; i < dim; i += 32 * V) {
    float u[V], d[V], ga[V];
    loadNormGrad<V>(u, d, ga, xr, gr, gamma, i, aligned);
#pragma unroll
    for (int k = 0; k < V; ++k)
      sgx += (d[k] * ga[k]) * (u[k] * rs);
  }
  const float meanGX = warpSum(sgx) / float(dim);
  bf16 *dxr = dx + row * dim;
  for (int64_t i = int64_t(lane) * V; i < dim; i += 32 * V) {
    float u[V], d[V], ga[V];
    loadNormGrad<V>(u, d, ga, xr, gr, gamma, i, aligned);
#pragma unroll
    for (int k = 0; k < V; ++k) {
      float g = d[k] * ga[k];
      float xhat = u[k] * rs;
      u[k] = (g - xhat * meanGX) * rs;
    }
    storeBf16At<V>(dxr + i, u, aligned);
  }
}

// --- launchers ---------------------------------------------------------------

cudaError_t addRmsnormForward(bf16 *sum, bf16 *y, float *rstd, const bf16 *a,
                              const bf16 *b, const bf16 *gamma, int64_t rows,
                              int64_t dim, float eps, cudaStream_t stream) {
  if (rows == 0)
    return cudaSuccess;
  const bool aligned = aligned16(y) && aligned16(a) && aligned16(gamma) &&
                       (!b || (aligned16(b) && aligned16(sum)));
  if (rowVector(dim) == 8)
    rmsnormForwardKernel<8><<<warpRowBlocks(rows), kBlock, 0, stream>>>(
        y, rstd, sum, a, b, gamma, rows, dim, eps, aligned);
  else
    rmsnormForwardKernel<1><<<warpRowBlocks(rows), kBlock, 0, stream>>>(
        y, rstd, sum, a, b, gamma, rows, dim, eps, aligned);
  return launched();
}

cudaError_t rmsnormForward(bf16 *y, float *rstd, const bf16 *x,
                           const bf16 *gamma, int64_t rows, int64_t dim,
                           float eps, cudaStream_t stream) {
  return addRmsnormForward(nullptr, y, rstd, x, nullptr, gamma, rows, dim,
                           eps, stream);
}

cudaError_t rmsnormBackwardB(bf16 *dx, const bf16 *dy, const bf16 *x,
                             const float *rstd, const bf16 *gamma,
                             int64_t rows, int64_t dim, cudaStream_t stream) {
  if (rows == 0)
    return cudaSuccess;
  const bool aligned =
      aligned16(dx) && aligned16(dy) && aligned16(x) && aligned16(gamma);
  if (rowVector(dim) == 8)
    rmsnormBackwardBKernel<8><<<warpRowBlocks(rows), kBlock, 0, stream>>>(
        dx, dy, x, rstd, gamma, rows, dim, aligned);
  else
    rmsnormBackwardBKernel<1><<<warpRowBlocks(rows), kBlock, 0, stream>>>(
        dx, dy, x, rstd, gamma, rows, dim, aligned);
  return launched();
}

} // namespace pipert::cuda

#endif // PIPERT_KERNELS_CUDA_RMSNORM_CUH
