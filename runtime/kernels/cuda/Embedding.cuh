//===- Embedding.cuh - token embedding forward and its W gradient ------------===//
//
// Forward: out[t, :] = table[ids[t], :] (bf16, a copy: exact). The W
// gradient adds dout into the fp32 accumulator without float atomics:
// each thread owns one column and walks the tokens in ascending order, so
// every dtable element receives its tokens' contributions in token order,
// the order of the cpu kernel (Embedding.h), for any launch. Ids are
// checked by the caller's data checks; an id outside [0, vocab) is
// skipped here rather than written out of bounds. Included by Kernels.cu
// only.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CUDA_EMBEDDING_CUH
#define PIPERT_KERNELS_CUDA_EMBEDDING_CUH

#include "kernels/cuda/Launch.cuh"

namespace pipert::cuda {

// --- kernels -----------------------------------------------------------------

__global__ void embeddingForwardKernel(bf16 *out, const bf16 *table,
                                       const int32_t *ids, int64_t tokens,
                                       int64_t vocab, int64_t dim) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= tokens * dim)
    return;
  int64_t t = i / dim, c = i % dim;
  int32_t id = ids[t];
  out[i] = (id >= 0 && id < vocab) ? table[int64_t(id) * dim + c]
                                   : __float2bfloat16_rn(0.0f);
}

__global__ void embeddingBackwardWKernel(float *dtable, const bf16 *dout,
                                         const int32_t *ids, int64_t tokens,
                                         int64_t vocab, int64_t dim) {
  int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= dim)
    return;
  for (int64_t t = 0; t < tokens; ++t) {
    int32_t id = ids[t];
    if (id < 0 || id >= vocab)
      continue;
    float *cell = dtable + int64_t(id) * dim + c;
    *cell = *cell + __bfloat162float(dout[t * dim + c]);
  }
}

// --- launchers ---------------------------------------------------------------

cudaError_t embeddingForward(bf16 *out, const bf16 *table, const int32_t *ids,
                             int64_t tokens, int64_t vocab, int64_t dim,
                             cudaStream_t stream) {
  if (tokens * dim == 0)
    return cudaSuccess;
  embeddingForwardKernel<<<blocksFor(tokens * dim), kBlock, 0, stream>>>(
      out, table, ids, tokens, vocab, dim);
  return launched();
}

cudaError_t embeddingBackwardW(float *dtable, const bf16 *dout,
                               const int32_t *ids, int64_t tokens,
                               int64_t vocab, int64_t dim,
                               cudaStream_t stream) {
  if (dim == 0)
    return cudaSuccess;
  embeddingBackwardWKernel<<<blocksFor(dim), kBlock, 0, stream>>>(
      dtable, dout, ids, tokens, vocab, dim);
  return launched();
}

} // namespace pipert::cuda

#endif // PIPERT_KERNELS_CUDA_EMBEDDING_CUH
