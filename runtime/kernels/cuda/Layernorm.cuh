//===- Layernorm.cuh - LayerNorm over the last axis: forward and B ----------===//
//
// One warp per row, walking it in RowOrder.h's order: 16-byte accesses (8
// elements a lane) where the row is a multiple of 8 elements. Numerics: x
// is read from bf16; the mean and the two-pass variance are fp32 sums, each
// lane adding its elements in that order and the 32 lane sums combined by
// the fixed xor-butterfly (every lane ends with the same bits), so the
// result depends on the row length only, never on the launch or the
// pointers; rstd = 1 / sqrtf(var + eps) with IEEE division and square root
// (no fast math); y is rounded once to bf16. mean and rstd stay fp32 for
// the backward.
//
// The residual form (add_layernorm_forward, --nn-fuse) adds a + b, rounds
// the sum to bf16 and stores it (the residual stream), and normalises the
// rounded sum in the same pass over the row: the bits of an add followed by
// a layernorm, with one read of the sum fewer. A lane reads back only the
// elements it wrote. The W gradients are column sums (ColumnSums.cuh).
// Included by Kernels.cu only.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CUDA_LAYERNORM_CUH
#define PIPERT_KERNELS_CUDA_LAYERNORM_CUH

#include "kernels/cuda/Launch.cuh"
#include "kernels/cuda/RowOrder.h"

namespace pipert::cuda {

// --- kernels -----------------------------------------------------------------

/// y = (x - mean) rstd gamma + beta per row; with `b`, x = bf16(a + b) is
/// computed and stored to `sum` first (a is `x`).
template <int V>
__global__ void layernormForwardKernel(bf16 *y, float *mean, float *rstd,
                                       bf16 *sum, const bf16 *x, const bf16 *b,
                                       const bf16 *gamma, const bf16 *beta,
                                       int64_t rows, int64_t dim, float eps,
                                       bool aligned) {
  int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = int(threadIdx.x % 32);
  if (row >= rows)
    return;
  const bf16 *xr = x + row * dim;
  const bf16 *br = b ? b + row * dim : nullptr;
  bf16 *sr = b ? sum + row * dim : nullptr;
  float s = 0.0f;
  for (int64_t i = int64_t(lane) * V; i < dim; i += 32 * V) {
    float u[V];
    if (b)
      addRoundStore<V>(u, xr + i, br + i, sr + i, aligned);
    else
      loadBf16At<V>(u, xr + i, aligned);
#pragma unroll
    for (int k = 0; k < V; ++k)
      s += u[k];
  }
  if (b)
    xr = sr;
  const float mu = warpSum(s) / float(dim);
  float sq = 0.0f;
  for (int64_t i = int64_t(lane) * V; i < dim; i += 32 * V) {
    float u[V];
    loadBf16At<V>(u, xr + i, aligned);
#pragma unroll
    for (int k = 0; k < V; ++k) {
      float d = u[k] - mu;
      sq += d * d;
    }
  }
  const float rs = 1.0f / sqrtf(warpSum(sq) / float(dim) + eps);
  bf16 *yr = y + row * dim;
  for (int64_t i = int64_t(lane) * V; i < dim; i += 32 * V) {
    float u[V], g[V], be[V];
    loadBf16At<V>(u, xr + i, aligned);
    loadBf16At<V>(g, gamma + i, aligned);
    loadBf16At<V>(be, beta + i, aligned);
#pragma unroll
    for (int k = 0; k < V; ++k)
      u[k] = (u[k] - mu) * rs * g[k] + be[k];
    storeBf16At<V>(yr + i, u, aligned);
  }
  if (lane == 0) {
    mean[row] = mu;
    rstd[row] = rs;
  }
}

/// B: dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma,
/// xhat = (x - mean) * rstd; the two means are warp sums as in the forward.
template <int V>
__global__ void layernormBackwardBKernel(bf16 *dx, const bf16 *dy,
                                         const bf16 *x, const float *mean,
                                         const float *rstd, const bf16 *gamma,
                                         int64_t rows, int64_t dim,
                                         bool aligned) {
  int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = int(threadIdx.x % 32);
  if (row >= rows)
    return;
  const bf16 *xr = x + row * dim, *gr = dy + row * dim;
  const float mu = mean[row], rs = rstd[row];
  float sg = 0.0f, sgx = 0.0f;
  for (int64_t i = int64_t(lane) * V; i < dim; i += 32 * V) {
    float u[V], d[V], ga[V];
    loadNormGrad<V>(u, d, ga, xr, gr, gamma, i, aligned);
#pragma unroll
    for (int k = 0; k < V; ++k) {
      float g = d[k] * ga[k];
      sg += g;
      sgx += g * ((u[k] - mu) * rs);
    }
  }
  const float meanG = warpSum(sg) / float(dim);
  const float meanGX = warpSum(sgx) / float(dim);
  bf16 *dxr = dx + row * dim;
  for (int64_t i = int64_t(lane) * V; i < dim; i += 32 * V) {
    float u[V], d[V], ga[V];
    loadNormGrad<V>(u, d, ga, xr, gr, gamma, i, aligned);
#pragma unroll
    for (int k = 0; k < V; ++k) {
      float xhat = (u[k] - mu) * rs;
      float g = d[k] * ga[k];
      u[k] = (g - meanG - xhat * meanGX) * rs;
    }
    storeBf16At<V>(dxr + i, u, aligned);
  }
}

// --- launchers ---------------------------------------------------------------

cudaError_t addLayernormForward(bf16 *sum, bf16 *y, float *mean, float *rstd,
                                const bf16 *a, const bf16 *b,
                                const bf16 *gamma, const bf16 *beta,
                                int64_t rows, int64_t dim, float eps,
                                cudaStream_t stream) {
  if (rows == 0)
    return cudaSuccess;
  const bool aligned = aligned16(y) && aligned16(a) && aligned16(gamma) &&
                       aligned16(beta) && (!b || (aligned16(b) &&
                                                  aligned16(sum)));
  if (rowVector(dim) == 8)
    layernormForwardKernel<8><<<warpRowBlocks(rows), kBlock, 0, stream>>>(
        y, mean, rstd, sum, a, b, gamma, beta, rows, dim, eps, aligned);
  else
    layernormForwardKernel<1><<<warpRowBlocks(rows), kBlock, 0, stream>>>(
        y, mean, rstd, sum, a, b, gamma, beta, rows, dim, eps, aligned);
  return launched();
}

cudaError_t layernormForward(bf16 *y, float *mean, float *rstd, const bf16 *x,
                             const bf16 *gamma, const bf16 *beta, int64_t rows,
                             int64_t dim, float eps, cudaStream_t stream) {
  return addLayernormForward(nullptr, y, mean, rstd, x, nullptr, gamma, beta,
                             rows, dim, eps, stream);
}

cudaError_t layernormBackwardB(bf16 *dx, const bf16 *dy, const bf16 *x,
                               const float *mean, const float *rstd,
                               const bf16 *gamma, int64_t rows, int64_t dim,
                               cudaStream_t stream) {
  if (rows == 0)
    return cudaSuccess;
  const bool aligned =
      aligned16(dx) && aligned16(dy) && aligned16(x) && aligned16(gamma);
  if (rowVector(dim) == 8)
    layernormBackwardBKernel<8><<<warpRowBlocks(rows), kBlock, 0, stream>>>(
        dx, dy, x, mean, rstd, gamma, rows, dim, aligned);
  else
    layernormBackwardBKernel<1><<<warpRowBlocks(rows), kBlock, 0, stream>>>(
        dx, dy, x, mean, rstd, gamma, rows, dim, aligned);
  return launched();
}

} // namespace pipert::cuda

#endif // PIPERT_KERNELS_CUDA_LAYERNORM_CUH
