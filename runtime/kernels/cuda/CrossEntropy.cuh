//===- CrossEntropy.cuh - the classifier: softmax cross-entropy and its B ---===//
//
// logits are bf16 [rows, stride]: the first `vocab` columns are the model's,
// the rest (stride - vocab, the cuda lowering's padding of the vocabulary
// to a multiple of 128) are excluded from the softmax and get a zero
// gradient. One block per row, two passes over it (llm.c's fused
// classifier: the probabilities are never stored):
//   1. the maximum and the sum of exp(x - max) together (an online
//      softmax): each thread walks its columns in order keeping its own
//      (max, sum), rescaling the sum when the max grows; the block's pairs
//      are combined by a fixed tree in shared memory;
//   2. dlogits = (softmax - onehot) * (lossScale / rows), the division in
//      double as on the cpu (docs/AUTODIFF.md), rounded once to bf16,
//      walking the row from its end, so the columns read last in pass 1
//      are read first while they are still in L2.
// A thread takes 8 columns at a time (16-byte accesses) where the stride
// is a multiple of 8, else one: thread t's columns are (256 j + t) V + v,
// in that order, an order fixed by vocab and stride (an unaligned row is
// read one element at a time in the same order), so the bits depend on the
// row only. rowLoss[r] = max + log(sum) - x[target] (fp32).
// dlogits may alias logits (every thread reads its own columns before it
// writes them, and the target's logit is read by every thread before the
// block's first barrier). The mean loss adds rowLoss in ascending rows in
// double from zero, the cpu's meanLoss, one thread adding while the block
// stages the next rows. A target outside [0, vocab) gives a NaN row loss
// (so a NaN mean: the runner's loss check names the step) and a zero
// gradient row. Included by Kernels.cu only.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CUDA_CROSSENTROPY_CUH
#define PIPERT_KERNELS_CUDA_CROSSENTROPY_CUH

#include "kernels/cuda/Launch.cuh"

namespace pipert::cuda {

/// A running (max, sum of exp(x - max)) of the online softmax.
struct SoftmaxState {
  float max, sum;
};

/// x added to the running state (a -inf logit adds nothing).
__device__ inline void softmaxAdd(SoftmaxState &s, float x) {
  if (x > s.max) {
    s.sum = s.sum * expf(s.max - x) + 1.0f;
    s.max = x;
  } else if (x != -INFINITY) {
    s.sum += expf(x - s.max);
  }
}

/// Two states merged: the larger max, each sum rescaled to it.
__device__ inline SoftmaxState softmaxMerge(SoftmaxState a, SoftmaxState b) {
  const float m = fmaxf(a.max, b.max);
  if (m == -INFINITY)
    return {m, 0.0f};
  return {m, a.sum * expf(a.max - m) + b.sum * expf(b.max - m)};
}

// --- kernels -----------------------------------------------------------------

template <int V>
__global__ void __launch_bounds__(kBlock)
    softmaxCrossEntropyKernel(float *rowLoss, bf16 *dlogits,
                              const bf16 *logits, const int32_t *targets,
                              const double *lossScale, int64_t rows,
                              int64_t vocab, int64_t stride, bool aligned) {
  __shared__ SoftmaxState scratch[kBlock];
  const int64_t row = blockIdx.x;
  const bf16 *x = logits + row * stride;
  const int32_t target = targets[row];
  const bool valid = target >= 0 && target < vocab;
  // Read before the first barrier: in place, another thread overwrites
  // x[target] with its gradient after the last one.
  const float xTarget = valid ? __bfloat162float(x[target]) : 0.0f;
  SoftmaxState s{-INFINITY, 0.0f};
  for (int64_t i = int64_t(threadIdx.x) * V; i < vocab; i += kBlock * V) {
    // V = 8 only where stride is a multiple of 8: i + 8 <= stride.
    float u[V];
    loadBf16At<V>(u, x + i, aligned);
#pragma unroll
    for (int k = 0; k < V; ++k)
      if (i + k < vocab)
        softmaxAdd(s, u[k]);
  }
  // The fixed tree over the block's states; every thread reads the root.
  scratch[threadIdx.x] = s;
  __syncthreads();
  for (int half = kBlock / 2; half > 0; half /= 2) {
    if (int(threadIdx.x) < half)
      scratch[threadIdx.x] =
          softmaxMerge(scratch[threadIdx.x], scratch[threadIdx.x + half]);
    __syncthreads();
  }
  const float mx = scratch[0].max, sum = scratch[0].sum;
  if (threadIdx.x == 0)
    rowLoss[row] = valid ? (mx + logf(sum)) - xTarget : NAN;
  if (!dlogits)
    return;
  const float sc = float(*lossScale / double(rows));
  bf16 *g = dlogits + row * stride;
  // This thread's columns from its last group back to its first.
  const int64_t first = int64_t(threadIdx.x) * V;
  const int64_t groups =
      first < stride ? (stride - first + kBlock * V - 1) / (kBlock * V) : 0;
  // Not unrolled: unrolled, the one-column form's IEEE division slow
  // path kept a value on the stack (the sm_90a check caught it).
#pragma unroll 1
  for (int64_t j = groups - 1; j >= 0; --j) {
    const int64_t i = first + j * kBlock * V;
    float u[V];
    loadBf16At<V>(u, x + i, aligned);
#pragma unroll
    for (int k = 0; k < V; ++k) {
      float gi = 0.0f;
      if (i + k < vocab && valid) {
        float p = expf(u[k] - mx) / sum;
        gi = (i + k == target ? p - 1.0f : p) * sc;
      }
      u[k] = gi;
    }
    storeBf16At<V>(g + i, u, aligned);
  }
}

/// *loss = the mean of rowLoss in double, rows ascending from zero (the
/// cpu's meanLoss): the block stages kBlock rows in shared memory, thread
/// 0 adds them in order.
__global__ void __launch_bounds__(kBlock)
    meanLossKernel(float *loss, const float *rowLoss, int64_t rows) {
  __shared__ float staged[kBlock];
  double total = 0;
  for (int64_t base = 0; base < rows; base += kBlock) {
    if (base + threadIdx.x < rows)
      staged[threadIdx.x] = rowLoss[base + threadIdx.x];
    __syncthreads();
    if (threadIdx.x == 0) {
      const int64_t n = rows - base < kBlock ? rows - base : kBlock;
      for (int64_t i = 0; i < n; ++i)
        total += double(staged[i]);
    }
    __syncthreads();
  }
  if (threadIdx.x == 0)
    *loss = float(rows ? total / double(rows) : 0.0);
}

// --- launchers ---------------------------------------------------------------

cudaError_t softmaxCrossEntropy(float *loss, float *rowLoss, bf16 *dlogits,
                                const bf16 *logits, const int32_t *targets,
                                const double *lossScale, int64_t rows,
                                int64_t vocab, int64_t stride,
                                cudaStream_t stream) {
  if (stride < vocab || (dlogits && !lossScale))
    return cudaErrorInvalidValue;
  if (rows > 0) {
    const bool aligned =
        aligned16(logits) && (!dlogits || aligned16(dlogits));
    if (stride % 8 == 0)
      softmaxCrossEntropyKernel<8><<<unsigned(rows), kBlock, 0, stream>>>(
          rowLoss, dlogits, logits, targets, lossScale, rows, vocab, stride,
          aligned);
    else
      softmaxCrossEntropyKernel<1><<<unsigned(rows), kBlock, 0, stream>>>(
          rowLoss, dlogits, logits, targets, lossScale, rows, vocab, stride,
          aligned);
    if (cudaError_t e = launched(); e != cudaSuccess)
      return e;
  }
  meanLossKernel<<<1, kBlock, 0, stream>>>(loss, rowLoss, rows);
  return launched();
}

} // namespace pipert::cuda

#endif // PIPERT_KERNELS_CUDA_CROSSENTROPY_CUH
