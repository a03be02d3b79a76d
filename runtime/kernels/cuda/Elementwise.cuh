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

/// The same, 8 elements a thread with 16-byte accesses (n and bn multiples
/// of 8, so b's 8 are contiguous; one index computation per 8, none where
/// bn = n, the backward's gradient sums): the same bits per element.
__global__ void binaryBroadcast8Kernel(bf16 *y, const bf16 *a, const bf16 *b,
                                       int64_t n, int64_t bn, int op) {
  const int64_t i = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) * 8;
  if (i >= n)
    return;
  float x[8], z[8];
  loadBf16<8>(x, a + i);
  loadBf16<8>(z, b + (bn == n ? i : i % bn));
#pragma unroll
  for (int k = 0; k < 8; ++k)
    x[k] = op == 0 ? x[k] + z[k] : x[k] * z[k];
  storeBf16<8>(y + i, x);
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

/// sliceKernel where inner = 1 and dim, offset and size are multiples of 8
/// (q, k and v out of the fused qkv): 16 bytes a thread, a copy (forward)
/// or a copy or zeros (B: a window's edges fall between 8s), the same
/// bits; one index computation per 8 elements.
__global__ void slice8Kernel(bf16 *y, const bf16 *x, int64_t outer,
                             int64_t dim, int64_t offset, int64_t size,
                             bool backward) {
  const int64_t v = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t width = backward ? dim / 8 : size / 8;
  if (v >= outer * width)
    return;
  const int64_t o = v / width, c = (v % width) * 8;
  uint4 *to = reinterpret_cast<uint4 *>(y + o * (backward ? dim : size) + c);
  if (!backward) {
    *to = *reinterpret_cast<const uint4 *>(x + o * dim + offset + c);
    return;
  }
  const int64_t s = c - offset;
  *to = s >= 0 && s < size
            ? *reinterpret_cast<const uint4 *>(x + o * size + s)
            : make_uint4(0u, 0u, 0u, 0u); // bf16 +0.0: the scalar kernel's
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

/// slices3Kernel where inner = 1 and dim and every offset and size are
/// multiples of 8: 8 elements a thread, each window's 8 inside it or
/// outside, the same arithmetic (dy + 0, the later window winning).
__global__ void slices3x8Kernel(bf16 *dx, Windows3 w, int64_t outer,
                                int64_t dim) {
  const int64_t v = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (v >= outer * (dim / 8))
    return;
  const int64_t o = v / (dim / 8), d = (v % (dim / 8)) * 8;
  float u[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
  for (int k = 0; k < 3; ++k) {
    const int64_t s = d - w.off[k];
    if (s >= 0 && s < w.size[k]) {
      loadBf16<8>(u, w.dy[k] + o * w.size[k] + s);
#pragma unroll
      for (int e = 0; e < 8; ++e)
        u[e] = u[e] + 0.0f;
    }
  }
  storeBf16<8>(dx + o * dim + d, u);
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
  if (bn % 8 == 0 && aligned16(y) && aligned16(a) && aligned16(b))
    binaryBroadcast8Kernel<<<blocksFor(n / 8), kBlock, 0, stream>>>(
        y, a, b, n, bn, op);
  else
    binaryBroadcastKernel<<<blocksFor(n), kBlock, 0, stream>>>(y, a, b, n,
                                                               bn, op);
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
  if (inner == 1 && dim % 8 == 0 && offset % 8 == 0 && size % 8 == 0 &&
      aligned16(y) && aligned16(x))
    slice8Kernel<<<blocksFor(n / 8), kBlock, 0, stream>>>(
        y, x, outer, dim, offset, size, backward);
  else
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
  bool by8 = inner == 1 && dim % 8 == 0 && aligned16(dx);
  for (int k = 0; k < 3; ++k)
    by8 = by8 && off[k] % 8 == 0 && size[k] % 8 == 0 &&
          (size[k] == 0 || aligned16(w.dy[k]));
  if (by8)
    slices3x8Kernel<<<blocksFor(n / 8), kBlock, 0, stream>>>(dx, w, outer,
                                                             dim);
  else
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
