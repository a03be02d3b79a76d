//===- OrderedSum.cu - sums of the exact collectives, in member order -----===//

#include "kernels/cuda/OrderedSum.h"

namespace pipert::cuda {
namespace {

template <typename T>
__global__ void orderedSum(T *dst, const T *staged, int64_t n,
                           int64_t slotElems, int32_t members, int32_t me) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n)
    return;
  // Member 0's copy first, then each in order: the host's sum exactly
  // (the build forbids contraction, -fmad=false).
  // Staged copies: the members before `me`, then those after (no slot of
  // its own: pipert::stagingSlot).
  T sum = me == 0 ? dst[i] : staged[i];
  for (int32_t m = 1; m < members; ++m)
    sum += m == me ? dst[i]
                   : staged[int64_t(m < me ? m : m - 1) * slotElems + i];
  dst[i] = sum;
}

} // namespace

cudaError_t launchOrderedSum(cudaStream_t stream, DType dtype, void *operand,
                             const void *staging, const OrderedSum &sum,
                             int32_t members, int32_t me) {
  const int64_t e = dtype == DType::F64 ? 8 : 4;
  const int64_t n = sum.bytes / e;
  if (n == 0)
    return cudaSuccess;
  const int threads = 256;
  const unsigned blocks = unsigned((n + threads - 1) / threads);
  auto *base = static_cast<uint8_t *>(operand) + sum.offset;
  const auto *slots = static_cast<const uint8_t *>(staging) + sum.stage;
  if (dtype == DType::F64)
    orderedSum<double><<<blocks, threads, 0, stream>>>(
        reinterpret_cast<double *>(base),
        reinterpret_cast<const double *>(slots), n, n, members, me);
  else
    orderedSum<float><<<blocks, threads, 0, stream>>>(
        reinterpret_cast<float *>(base), reinterpret_cast<const float *>(slots),
        n, n, members, me);
  return cudaGetLastError();
}

} // namespace pipert::cuda
