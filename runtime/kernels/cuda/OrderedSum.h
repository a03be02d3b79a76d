//===- OrderedSum.h - the exact collectives' sums on the device -*- C++ -*-===//
//
// pipert::OrderedSum (ExactCollectives.h) on a stream: operand[offset,
// +bytes) becomes the sum, member by member in order, of the members'
// copies (this member's is the operand itself, the others' are staged), in
// the operand's type, one element per thread, no contraction: the bits of
// the host's sum (runCollectiveOnHost, the local transport).
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CUDA_ORDEREDSUM_H
#define PIPERT_KERNELS_CUDA_ORDEREDSUM_H

#include "pipert/ExactCollectives.h"

#include <cuda_runtime_api.h>

namespace pipert::cuda {

/// Enqueues the sum on `stream`; the launch's error.
cudaError_t launchOrderedSum(cudaStream_t stream, DType dtype, void *operand,
                             const void *staging, const OrderedSum &sum,
                             int32_t members, int32_t me);

} // namespace pipert::cuda

#endif // PIPERT_KERNELS_CUDA_ORDEREDSUM_H
