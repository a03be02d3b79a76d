//===- AdamW.cuh - AdamW on fp32 masters, refreshing their bf16 copies -------===//
//
// The update of runtime/kernels/cpu/AdamW.h (optax.adamw), per element in
// fp32 on the fp32 master weights, gradients and moments; the bf16 working
// copy the kernels read is the master rounded once (RNE). The values that
// change per step (learning rate, clip scale, step) are read from device
// memory (the learning rate, clip scale and step that Optimizer.cuh's
// kernels left there), so the step can be captured as a CUDA graph
// (docs/CUDA.md); the bias corrections are computed in double from them. Included by
// Kernels.cu only.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CUDA_ADAMW_CUH
#define PIPERT_KERNELS_CUDA_ADAMW_CUH

#include "kernels/cuda/Kernels.h"
#include "kernels/cuda/Launch.cuh"

namespace pipert::cuda {

// --- kernels -----------------------------------------------------------------

/// The step's scalars, the same for every element.
struct AdamWScalars {
  float lr, clip, b1c, b2c, oneMinusB1, oneMinusB2;
};

/// The update of one element (fp32; the order of the cpu's AdamW.h).
__device__ inline void adamwElement(float &p, float &m, float &v, float g,
                                    const AdamWScalars &k, float beta1,
                                    float beta2, float eps,
                                    float weightDecay) {
  g = g * k.clip;
  m = beta1 * m + k.oneMinusB1 * g;
  v = beta2 * v + k.oneMinusB2 * g * g;
  p = p - k.lr * (m / k.b1c / (sqrtf(v / k.b2c) + eps) + weightDecay * p);
}

/// V elements a thread (V = 4: 16-byte accesses to the fp32 arrays, 8 to
/// the copy; the same arithmetic per element as V = 1); the step's
/// scalars computed once a block (two double pows) and shared.
template <int V>
__global__ void adamwKernel(float *param, bf16 *copy, const float *grad,
                            float *m, float *v, int64_t n, const double *lrPtr,
                            const double *clipPtr, const int64_t *stepPtr,
                            float beta1, float beta2, float eps,
                            float weightDecay) {
  __shared__ AdamWScalars shared;
  if (threadIdx.x == 0) {
    const double t = double(*stepPtr + 1);
    shared.lr = float(*lrPtr);
    shared.clip = float(*clipPtr);
    shared.b1c = float(1.0 - pow(double(beta1), t));
    shared.b2c = float(1.0 - pow(double(beta2), t));
    shared.oneMinusB1 = float(1.0 - double(beta1));
    shared.oneMinusB2 = float(1.0 - double(beta2));
  }
  __syncthreads();
  const AdamWScalars k = shared;
  const int64_t first = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) * V;
  if (first >= n)
    return;
  if constexpr (V == 4) {
    float4 p = *reinterpret_cast<const float4 *>(param + first);
    float4 mi = *reinterpret_cast<const float4 *>(m + first);
    float4 vi = *reinterpret_cast<const float4 *>(v + first);
    const float4 g = *reinterpret_cast<const float4 *>(grad + first);
    adamwElement(p.x, mi.x, vi.x, g.x, k, beta1, beta2, eps, weightDecay);
    adamwElement(p.y, mi.y, vi.y, g.y, k, beta1, beta2, eps, weightDecay);
    adamwElement(p.z, mi.z, vi.z, g.z, k, beta1, beta2, eps, weightDecay);
    adamwElement(p.w, mi.w, vi.w, g.w, k, beta1, beta2, eps, weightDecay);
    *reinterpret_cast<float4 *>(param + first) = p;
    *reinterpret_cast<float4 *>(m + first) = mi;
    *reinterpret_cast<float4 *>(v + first) = vi;
    __nv_bfloat162 lo = __floats2bfloat162_rn(p.x, p.y);
    __nv_bfloat162 hi = __floats2bfloat162_rn(p.z, p.w);
    uint2 packed;
    packed.x = *reinterpret_cast<const uint32_t *>(&lo);
    packed.y = *reinterpret_cast<const uint32_t *>(&hi);
    *reinterpret_cast<uint2 *>(copy + first) = packed;
  } else {
    float p = param[first], mi = m[first], vi = v[first];
    adamwElement(p, mi, vi, grad[first], k, beta1, beta2, eps, weightDecay);
    param[first] = p;
    m[first] = mi;
    v[first] = vi;
    copy[first] = __float2bfloat16_rn(p);
  }
}

// --- launchers ---------------------------------------------------------------

cudaError_t adamw(float *param, bf16 *copy, const float *grad, float *m,
                  float *v, int64_t n, const double *lr, const double *clip,
                  const int64_t *step, float beta1, float beta2, float eps,
                  float weightDecay, cudaStream_t stream) {
  if (n == 0)
    return cudaSuccess;
  auto aligned = [](const void *p, uintptr_t to) {
    return reinterpret_cast<uintptr_t>(p) % to == 0;
  };
  if (n % 4 == 0 && aligned(param, 16) && aligned(grad, 16) &&
      aligned(m, 16) && aligned(v, 16) && aligned(copy, 8))
    adamwKernel<4><<<blocksFor(n / 4), kBlock, 0, stream>>>(
        param, copy, grad, m, v, n, lr, clip, step, beta1, beta2, eps,
        weightDecay);
  else
    adamwKernel<1><<<blocksFor(n), kBlock, 0, stream>>>(
        param, copy, grad, m, v, n, lr, clip, step, beta1, beta2, eps,
        weightDecay);
  return launched();
}

} // namespace pipert::cuda

#endif // PIPERT_KERNELS_CUDA_ADAMW_CUH
