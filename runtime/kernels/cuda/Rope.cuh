//===- Rope.cuh - rotary position embedding (Llama rotate-half) --------------===//
//
// Each thread rotates one (row, head, i < headDim / 2) pair: lo = a c - b s,
// hi = b c + a s (the B, the transpose: lo = a c + b s, hi = b c - a s),
// in fp32 from bf16 inputs, rounded once to bf16. The angle tables are
// fp32 [seq, half], computed once by the caller in double and rounded once
// (cpu Rope.cpp's ropeAngles), so no transcendental runs on the GPU.
// Included by Kernels.cu only.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CUDA_ROPE_CUH
#define PIPERT_KERNELS_CUDA_ROPE_CUH

#include "kernels/cuda/Launch.cuh"

namespace pipert::cuda {

// --- kernels -----------------------------------------------------------------

__global__ void ropeKernel(bf16 *y, const bf16 *x, const float *cosT,
                           const float *sinT, int64_t rows, int64_t seq,
                           int64_t heads, int64_t headDim, bool transpose) {
  const int64_t half = headDim / 2;
  int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= rows * heads * half)
    return;
  int64_t i = k % half, h = (k / half) % heads, r = k / (half * heads);
  int64_t t = r % seq;
  const float c = cosT[t * half + i], s = sinT[t * half + i];
  const int64_t base = (r * heads + h) * headDim;
  float a = __bfloat162float(x[base + i]), b = __bfloat162float(x[base + i + half]);
  float lo = transpose ? a * c + b * s : a * c - b * s;
  float hi = transpose ? b * c - a * s : b * c + a * s;
  y[base + i] = __float2bfloat16_rn(lo);
  y[base + i + half] = __float2bfloat16_rn(hi);
}

// --- launchers ---------------------------------------------------------------

cudaError_t rope(bf16 *y, const bf16 *x, const float *cosT, const float *sinT,
                 int64_t batch, int64_t seq, int64_t heads, int64_t headDim,
                 bool transpose, cudaStream_t stream) {
  int64_t work = batch * seq * heads * (headDim / 2);
  if (work == 0)
    return cudaSuccess;
  ropeKernel<<<blocksFor(work), kBlock, 0, stream>>>(
      y, x, cosT, sinT, batch * seq, seq, heads, headDim, transpose);
  return launched();
}

} // namespace pipert::cuda

#endif // PIPERT_KERNELS_CUDA_ROPE_CUH
