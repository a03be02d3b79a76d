//===- AdamW.cuh - AdamW on fp32 masters, refreshing their bf16 copies -------===//
//
// The update of runtime/kernels/cpu/AdamW.h (optax.adamw), per element in
// fp32 on the fp32 master weights, gradients and moments; the bf16 working
// copy the kernels read is the master rounded once (RNE). The values that
// change per step (learning rate, clip scale, step) are read from device
// memory (the learning rate, clip scale and step that Optimizer.cuh's
// kernels left there), so the step can be captured as a CUDA graph
// (docs/CUDA.md); the bias corrections are computed in double from them.
// Included by Kernels.cu only.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CUDA_ADAMW_CUH
#define PIPERT_KERNELS_CUDA_ADAMW_CUH

#include "kernels/cuda/Kernels.h"
#include "kernels/cuda/Launch.cuh"

namespace pipert::cuda {

// --- kernels -----------------------------------------------------------------

/// The step's scalars, the same for every element of a tensor.
struct AdamWScalars {
  float lr, clip, b1, b2, b1c, b2c, oneMinusB1, oneMinusB2;
};

/// The scalars of step *stepPtr for betas beta1, beta2, as cpu/AdamW.h
/// makes them: 1 - beta and the bias corrections in double from the
/// double betas, then rounded to fp32 (two double pows).
__device__ inline AdamWScalars adamwScalars(const double *lrPtr,
                                            const double *clipPtr,
                                            const int64_t *stepPtr,
                                            double beta1, double beta2) {
  const double t = double(*stepPtr + 1);
  AdamWScalars k;
  k.lr = float(*lrPtr);
  k.clip = float(*clipPtr);
  k.b1 = float(beta1);
  k.b2 = float(beta2);
  k.b1c = float(1.0 - pow(beta1, t));
  k.b2c = float(1.0 - pow(beta2, t));
  k.oneMinusB1 = float(1.0 - beta1);
  k.oneMinusB2 = float(1.0 - beta2);
  return k;
}

/// The update of one element of t (fp32; the order of the cpu's AdamW.h).
__device__ inline void adamwElement(float &p, float &m, float &v, float g,
                                    const AdamWScalars &k,
                                    const AdamWTensor &t) {
  g = g * k.clip;
  m = k.b1 * m + k.oneMinusB1 * g;
  v = k.b2 * v + k.oneMinusB2 * (g * g);
  p = p - k.lr * (m / k.b1c / (sqrtf(v / k.b2c) + t.eps) + t.weightDecay * p);
}

/// One thread's V elements from `first` of tensor t (V = 4: 16-byte
/// accesses to the fp32 arrays, 8 to the copy; the same arithmetic per
/// element as V = 1).
template <int V>
__device__ inline void adamwThread(const AdamWTensor &t, int64_t first,
                                   const AdamWScalars &k) {
  if (first >= t.n)
    return;
  if constexpr (V == 4) {
    float4 p = *reinterpret_cast<const float4 *>(t.param + first);
    float4 mi = *reinterpret_cast<const float4 *>(t.m + first);
    float4 vi = *reinterpret_cast<const float4 *>(t.v + first);
    const float4 g = *reinterpret_cast<const float4 *>(t.grad + first);
    adamwElement(p.x, mi.x, vi.x, g.x, k, t);
    adamwElement(p.y, mi.y, vi.y, g.y, k, t);
    adamwElement(p.z, mi.z, vi.z, g.z, k, t);
    adamwElement(p.w, mi.w, vi.w, g.w, k, t);
    *reinterpret_cast<float4 *>(t.param + first) = p;
    *reinterpret_cast<float4 *>(t.m + first) = mi;
    *reinterpret_cast<float4 *>(t.v + first) = vi;
    __nv_bfloat162 lo = __floats2bfloat162_rn(p.x, p.y);
    __nv_bfloat162 hi = __floats2bfloat162_rn(p.z, p.w);
    uint2 packed;
    packed.x = *reinterpret_cast<const uint32_t *>(&lo);
    packed.y = *reinterpret_cast<const uint32_t *>(&hi);
    *reinterpret_cast<uint2 *>(t.copy + first) = packed;
  } else {
    float p = t.param[first], mi = t.m[first], vi = t.v[first];
    adamwElement(p, mi, vi, t.grad[first], k, t);
    t.param[first] = p;
    t.m[first] = mi;
    t.v[first] = vi;
    t.copy[first] = __float2bfloat16_rn(p);
  }
}

/// V elements a thread of one tensor; the step's scalars computed once a
/// block and shared.
template <int V>
__global__ void adamwKernel(AdamWTensor t, const double *lrPtr,
                            const double *clipPtr, const int64_t *stepPtr) {
  __shared__ AdamWScalars shared;
  if (threadIdx.x == 0)
    shared = adamwScalars(lrPtr, clipPtr, stepPtr, t.beta1, t.beta2);
  __syncthreads();
  const AdamWScalars k = shared;
  adamwThread<V>(t, (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) * V, k);
}

/// Tensors a multi-tensor launch takes (kernel parameters: 16 of 72 bytes,
/// within CUDA's 4 KiB).
constexpr int kAdamWPack = 16;

/// The tensors of one launch: block b updates tensor k where
/// firstBlock[k] <= b < firstBlock[k + 1], 4 elements a thread where bit k
/// of `vector4` is set.
struct AdamWPack {
  AdamWTensor t[kAdamWPack];
  int64_t firstBlock[kAdamWPack + 1];
  uint32_t vector4;
  int count;
};

/// Several tensors in one launch (the optimizer step's AdamW): each block
/// one tensor's, the same arithmetic and bits as adamwKernel's.
__global__ void adamwMultiKernel(AdamWPack pack, const double *lrPtr,
                                 const double *clipPtr,
                                 const int64_t *stepPtr) {
  int k = 0;
  while (k + 1 < pack.count && int64_t(blockIdx.x) >= pack.firstBlock[k + 1])
    ++k;
  const AdamWTensor &t = pack.t[k];
  __shared__ AdamWScalars shared;
  if (threadIdx.x == 0)
    shared = adamwScalars(lrPtr, clipPtr, stepPtr, t.beta1, t.beta2);
  __syncthreads();
  const AdamWScalars s = shared;
  const int64_t block = int64_t(blockIdx.x) - pack.firstBlock[k];
  if (pack.vector4 >> k & 1u)
    adamwThread<4>(t, (block * blockDim.x + threadIdx.x) * 4, s);
  else
    adamwThread<1>(t, block * blockDim.x + threadIdx.x, s);
}

// --- launchers ---------------------------------------------------------------

/// Whether t takes 4 elements a thread: a multiple of 4, 16-byte aligned
/// fp32 arrays and an 8-byte aligned copy.
inline bool adamwVector4(const AdamWTensor &t) {
  return t.n % 4 == 0 && aligned16(t.param) && aligned16(t.grad) &&
         aligned16(t.m) && aligned16(t.v) && alignedTo(t.copy, 8);
}

cudaError_t adamw(float *param, bf16 *copy, const float *grad, float *m,
                  float *v, int64_t n, const double *lr, const double *clip,
                  const int64_t *step, double beta1, double beta2, float eps,
                  float weightDecay, cudaStream_t stream) {
  if (n == 0)
    return cudaSuccess;
  const AdamWTensor t{param, copy, grad,  m,   v,
                      n,     beta1, beta2, eps, weightDecay};
  if (adamwVector4(t))
    adamwKernel<4><<<blocksFor(n / 4), kBlock, 0, stream>>>(t, lr, clip,
                                                            step);
  else
    adamwKernel<1><<<blocksFor(n), kBlock, 0, stream>>>(t, lr, clip, step);
  return launched();
}

cudaError_t adamwMulti(const AdamWTensor *tensors, int64_t count,
                       const double *lr, const double *clip,
                       const int64_t *step, cudaStream_t stream) {
  AdamWPack pack{};
  auto flush = [&]() -> cudaError_t {
    if (pack.count == 0 || pack.firstBlock[pack.count] == 0)
      return cudaSuccess;
    adamwMultiKernel<<<unsigned(pack.firstBlock[pack.count]), kBlock, 0,
                       stream>>>(pack, lr, clip, step);
    pack = AdamWPack{};
    return launched();
  };
  for (int64_t i = 0; i < count; ++i) {
    const AdamWTensor &t = tensors[i];
    if (t.n == 0)
      continue;
    const bool four = adamwVector4(t);
    const int64_t blocks = blocksFor(four ? t.n / 4 : t.n);
    // A launch's blocks stay within grid.x's 2^31 - 1.
    if (pack.count == kAdamWPack ||
        pack.firstBlock[pack.count] + blocks > int64_t(INT32_MAX))
      if (cudaError_t e = flush(); e != cudaSuccess)
        return e;
    pack.t[pack.count] = t;
    pack.vector4 |= four ? 1u << pack.count : 0u;
    pack.firstBlock[pack.count + 1] = pack.firstBlock[pack.count] + blocks;
    ++pack.count;
  }
  return flush();
}

} // namespace pipert::cuda

#endif // PIPERT_KERNELS_CUDA_ADAMW_CUH
