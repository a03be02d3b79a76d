//===- Elementwise.cuh - broadcasts, copies and shapes -----------------------===//
//
// The small kernels of the cuda target: binary ops with a broadcast right
// operand (b[i % bn]), their gradients, the fp32 accumulators' adds, and
// the data movements (copy, slice, transpose, position embedding). bf16 in
// and out with fp32 arithmetic, rounded once at the store. The broadcast
// operand's gradients are column sums (ColumnSums.cuh). Included by
// Kernels.cu only.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CUDA_ELEMENTWISE_CUH
#define PIPERT_KERNELS_CUDA_ELEMENTWISE_CUH

#include "kernels/cuda/Launch.cuh"

namespace pipert::cuda {

// --- kernels -----------------------------------------------------------------

/// y[i] = a[i] (op) b[i % bn]; op 0 adds, 1 multiplies (bn > 0 divides n:
/// the launchers refuse anything else).
__global__ void binaryBroadcastKernel(bf16 *y, const bf16 *a, const bf16 *b,
                                      int64_t n, int64_t bn, int op) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n)
    return;
  float x = __bfloat162float(a[i]), z = __bfloat162float(b[i % bn]);
  y[i] = __float2bfloat16_rn(op == 0 ? x + z : x * z);
}

/// x[i] = bf16(x[i] * factor) (bf16) or x[i] * factor (fp32): pipec
/// compile --debug-perturb-vjp's change on the cuda target.
__global__ void scaleKernel(void *x, int64_t n, float factor, bool isBf16) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n)
    return;
  if (isBf16) {
    bf16 *y = static_cast<bf16 *>(x);
    y[i] = __float2bfloat16_rn(__bfloat162float(y[i]) * factor);
  } else {
    float *y = static_cast<float *>(x);
    y[i] = y[i] * factor;
  }
}

/// acc[i] += x[i].
__global__ void accumulateKernel(float *acc, const bf16 *x, int64_t n) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n)
    acc[i] = acc[i] + __bfloat162float(x[i]);
}

/// y[i] = x[i] of n bf16 values (a plain copy kernel rather than a memcpy
/// node, so the step stays one kind of graph node).
__global__ void copyKernel(bf16 *y, const bf16 *x, int64_t n) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n)
    y[i] = x[i];
}

/// y[i] = bf16(x[i]), round to nearest even.
__global__ void roundToBf16Kernel(bf16 *y, const float *x, int64_t n) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n)
    y[i] = __float2bfloat16_rn(x[i]);
}

/// *loss = double(*value), one thread.
__global__ void storeLossKernel(double *loss, const float *value) {
  *loss = double(*value);
}

/// Slice of [outer, dim, inner] along dim: y [outer, size, inner] =
/// x[:, offset:offset+size, :] (forward), or its B: dx = zeros with dy
/// placed there (every element of dx written once).
__global__ void sliceKernel(bf16 *y, const bf16 *x, int64_t outer, int64_t dim,
                            int64_t inner, int64_t offset, int64_t size,
                            bool backward) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (!backward) {
    if (i >= outer * size * inner)
      return;
    int64_t in = i % inner, s = (i / inner) % size, o = i / (inner * size);
    y[i] = x[(o * dim + offset + s) * inner + in];
    return;
  }
  // backward: y is dx [outer, dim, inner], x is dy [outer, size, inner].
  if (i >= outer * dim * inner)
    return;
  int64_t in = i % inner, d = (i / inner) % dim, o = i / (inner * dim);
  int64_t s = d - offset;
  y[i] = (s >= 0 && s < size) ? x[(o * size + s) * inner + in]
                              : __float2bfloat16_rn(0.0f);
}

/// The three windows of slices3 (passed by value: no indexing at run time
/// into local memory).
struct Windows3 {
  const bf16 *dy[3];
  int64_t off[3], size[3];
};

/// dx [outer, dim, inner]: dy_w + 0 where d falls in window w, else zero.
__global__ void slices3Kernel(bf16 *dx, Windows3 w, int64_t outer,
                              int64_t dim, int64_t inner) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= outer * dim * inner)
    return;
  int64_t in = i % inner, d = (i / inner) % dim, o = i / (inner * dim);
  float v = 0.0f;
#pragma unroll
  for (int k = 0; k < 3; ++k) {
    int64_t s = d - w.off[k];
    if (s >= 0 && s < w.size[k])
      v = __bfloat162float(w.dy[k][(o * w.size[k] + s) * inner + in]) + 0.0f;
  }
  dx[i] = __float2bfloat16_rn(v); // dy + 0, as the two adds it replaces
}

/// The 6-axis transpose as the host precomputes it: y's axis a has extent
/// extent[a] and steps x by xStride[a] (x's stride of axis perm[a]), so the
/// kernel indexes nothing at run time (no local memory).
struct Transpose6 {
  int64_t extent[6];
  int64_t xStride[6];
};

__global__ void transposeKernel(bf16 *y, const bf16 *x, Transpose6 t,
                                int64_t n) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n)
    return;
  // Walk y's index from its last axis.
  int64_t rest = i, xi = 0;
#pragma unroll
  for (int a = 5; a >= 0; --a) {
    xi += (rest % t.extent[a]) * t.xStride[a];
    rest /= t.extent[a];
  }
  y[i] = x[xi];
}

// --- launchers ---------------------------------------------------------------

/// y = a (op) b[i % bn]: op 0 adds, 1 multiplies; bn must divide n.
static cudaError_t binaryBroadcast(bf16 *y, const bf16 *a, const bf16 *b,
                                   int64_t n, int64_t bn, int op,
                                   cudaStream_t stream) {
  if (bn <= 0 || n % bn != 0)
    return n == 0 ? cudaSuccess : cudaErrorInvalidValue;
  binaryBroadcastKernel<<<blocksFor(n), kBlock, 0, stream>>>(y, a, b, n, bn,
                                                             op);
  return launched();
}

cudaError_t addForward(bf16 *y, const bf16 *a, const bf16 *b, int64_t n,
                       int64_t bn, cudaStream_t stream) {
  return binaryBroadcast(y, a, b, n, bn, 0, stream);
}

cudaError_t mulForward(bf16 *y, const bf16 *a, const bf16 *b, int64_t n,
                       int64_t bn, cudaStream_t stream) {
  return binaryBroadcast(y, a, b, n, bn, 1, stream);
}

cudaError_t scaleInPlace(void *x, int64_t n, float factor, bool isBf16,
                         cudaStream_t stream) {
  if (n == 0)
    return cudaSuccess;
  scaleKernel<<<blocksFor(n), kBlock, 0, stream>>>(x, n, factor, isBf16);
  return launched();
}

cudaError_t accumulate(float *acc, const bf16 *x, int64_t n,
                       cudaStream_t stream) {
  if (n == 0)
    return cudaSuccess;
  accumulateKernel<<<blocksFor(n), kBlock, 0, stream>>>(acc, x, n);
  return launched();
}

cudaError_t copy(bf16 *y, const bf16 *x, int64_t n, cudaStream_t stream) {
  if (n == 0)
    return cudaSuccess;
  copyKernel<<<blocksFor(n), kBlock, 0, stream>>>(y, x, n);
  return launched();
}

cudaError_t roundToBf16(bf16 *y, const float *x, int64_t n,
                        cudaStream_t stream) {
  if (n == 0)
    return cudaSuccess;
  roundToBf16Kernel<<<blocksFor(n), kBlock, 0, stream>>>(y, x, n);
  return launched();
}

cudaError_t storeLoss(double *loss, const float *value, cudaStream_t stream) {
  storeLossKernel<<<1, 1, 0, stream>>>(loss, value);
  return launched();
}

cudaError_t slice(bf16 *y, const bf16 *x, int64_t outer, int64_t dim,
                  int64_t inner, int64_t offset, int64_t size, bool backward,
                  cudaStream_t stream) {
  int64_t n = outer * (backward ? dim : size) * inner;
  if (n == 0)
    return cudaSuccess;
  sliceKernel<<<blocksFor(n), kBlock, 0, stream>>>(y, x, outer, dim, inner,
                                                   offset, size, backward);
  return launched();
}

cudaError_t slices3(bf16 *dx, const bf16 *dy0, const bf16 *dy1,
                    const bf16 *dy2, int64_t outer, int64_t dim, int64_t inner,
                    const int64_t off[3], const int64_t size[3],
                    cudaStream_t stream) {
  int64_t n = outer * dim * inner;
  if (n == 0)
    return cudaSuccess;
  Windows3 w{{dy0, dy1, dy2},
             {off[0], off[1], off[2]},
             {size[0], size[1], size[2]}};
  slices3Kernel<<<blocksFor(n), kBlock, 0, stream>>>(dx, w, outer, dim,
                                                     inner);
  return launched();
}

cudaError_t transpose(bf16 *y, const bf16 *x, const int64_t dims[6],
                      const int64_t perm[6], cudaStream_t stream) {
  int64_t stride[6], n = 1;
  for (int a = 5; a >= 0; --a) {
    stride[a] = n;
    n *= dims[a];
  }
  Transpose6 t;
  bool seen[6] = {};
  for (int a = 0; a < 6; ++a) {
    if (perm[a] < 0 || perm[a] > 5 || seen[perm[a]])
      return cudaErrorInvalidValue; // not a permutation
    seen[perm[a]] = true;
    t.extent[a] = dims[perm[a]];
    t.xStride[a] = stride[perm[a]];
  }
  if (n == 0)
    return cudaSuccess;
  transposeKernel<<<blocksFor(n), kBlock, 0, stream>>>(y, x, t, n);
  return launched();
}

} // namespace pipert::cuda

#endif // PIPERT_KERNELS_CUDA_ELEMENTWISE_CUH
