//===- Embedding.cuh - token embedding forward --------------------------------===//
//
// out[t, :] = table[ids[t], :] (bf16, a copy: exact); an id outside
// [0, vocab) gives zeros. The W gradient is EmbeddingBackward.cu. Included
// by Kernels.cu only.
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

} // namespace pipert::cuda

#endif // PIPERT_KERNELS_CUDA_EMBEDDING_CUH
