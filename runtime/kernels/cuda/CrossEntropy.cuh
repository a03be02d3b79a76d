//===- CrossEntropy.cuh - the classifier: softmax cross-entropy and its B ---===//
//
// logits are bf16 [rows, stride]: the first `vocab` columns are the model's,
// the rest (stride - vocab, the cuda lowering's padding of the vocabulary
// to a multiple of 128) are excluded from the softmax and get a zero
// gradient. One block per row: the maximum, then the sum of exp(x - max),
// each thread adding its strided columns in ascending order and the
// block's partial sums combined by a fixed tree in shared memory, so the
// bits depend on the row only. rowLoss[r] = max + log(sum) - x[target]
// (fp32); dlogits = (softmax - onehot) * (lossScale / rows), the division in
// double as on the cpu (docs/AUTODIFF.md), rounded once to bf16; dlogits
// may alias logits (every thread reads its own columns before it writes
// them, and the target's logit is read by every thread before the block's
// last barrier). The mean loss is one thread adding rowLoss in ascending rows in
// double, the cpu's meanLoss. A target outside [0, vocab) gives a NaN row
// loss (so a NaN mean: the runner's loss check names the step) and a zero
// gradient row. Included by Kernels.cu only.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CUDA_CROSSENTROPY_CUH
#define PIPERT_KERNELS_CUDA_CROSSENTROPY_CUH

#include "kernels/cuda/Launch.cuh"

namespace pipert::cuda {

/// The fixed tree over the block's kBlock partial values in `scratch`;
/// every thread returns the same total.
template <bool Max>
__device__ inline float blockReduce(float v, float *scratch) {
  scratch[threadIdx.x] = v;
  __syncthreads();
  for (int half = kBlock / 2; half > 0; half /= 2) {
    if (int(threadIdx.x) < half) {
      float o = scratch[threadIdx.x + half];
      scratch[threadIdx.x] =
          Max ? fmaxf(scratch[threadIdx.x], o) : scratch[threadIdx.x] + o;
    }
    __syncthreads();
  }
  float total = scratch[0];
  __syncthreads();
  return total;
}

// --- kernels -----------------------------------------------------------------

__global__ void __launch_bounds__(kBlock)
    softmaxCrossEntropyKernel(float *rowLoss, bf16 *dlogits,
                              const bf16 *logits, const int32_t *targets,
                              const double *lossScale, int64_t rows,
                              int64_t vocab, int64_t stride) {
  __shared__ float scratch[kBlock];
  int64_t row = blockIdx.x;
  const bf16 *x = logits + row * stride;
  float mx = -INFINITY;
  for (int64_t i = threadIdx.x; i < vocab; i += kBlock)
    mx = fmaxf(mx, __bfloat162float(x[i]));
  mx = blockReduce<true>(mx, scratch);
  float part = 0.0f;
  for (int64_t i = threadIdx.x; i < vocab; i += kBlock)
    part += expf(__bfloat162float(x[i]) - mx);
  const int32_t target = targets[row];
  const bool valid = target >= 0 && target < vocab;
  // Read before the barrier of the next reduction: in place, another
  // thread overwrites x[target] with its gradient after it.
  const float xTarget = valid ? __bfloat162float(x[target]) : 0.0f;
  const float sum = blockReduce<false>(part, scratch);
  if (threadIdx.x == 0)
    rowLoss[row] = valid ? (mx + logf(sum)) - xTarget : NAN;
  if (!dlogits)
    return;
  const float sc = float(*lossScale / double(rows));
  bf16 *g = dlogits + row * stride;
  for (int64_t i = threadIdx.x; i < stride; i += kBlock) {
    float gi = 0.0f;
    if (i < vocab && valid) {
      float p = expf(__bfloat162float(x[i]) - mx) / sum;
      gi = (i == target ? p - 1.0f : p) * sc;
    }
    g[i] = __float2bfloat16_rn(gi);
  }
}

__global__ void meanLossKernel(float *loss, const float *rowLoss,
                               int64_t rows) {
  double total = 0;
  for (int64_t r = 0; r < rows; ++r)
    total += double(rowLoss[r]);
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
    softmaxCrossEntropyKernel<<<unsigned(rows), kBlock, 0, stream>>>(
        rowLoss, dlogits, logits, targets, lossScale, rows, vocab, stride);
    if (cudaError_t e = launched(); e != cudaSuccess)
      return e;
  }
  meanLossKernel<<<1, 1, 0, stream>>>(loss, rowLoss, rows);
  return launched();
}

} // namespace pipert::cuda

#endif // PIPERT_KERNELS_CUDA_CROSSENTROPY_CUH
