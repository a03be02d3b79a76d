//===- Activation.cuh - GELU (tanh) and SiLU, forward and B -----------------===//
//
// Numerics: elementwise; the input is read from bf16, the function is
// evaluated in fp32 (tanhf, expf), the result rounded once to bf16 (RNE). No
// reductions, so every element's bits are independent of the launch shape.
// Included by Kernels.cu only (the launchers are declared in Kernels.h).
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CUDA_ACTIVATION_CUH
#define PIPERT_KERNELS_CUDA_ACTIVATION_CUH

#include "kernels/cuda/Launch.cuh"

namespace pipert::cuda {

// --- the functions ---------------------------------------------------------

__device__ inline float geluScale() { return 0.7978845608028654f; }
__device__ inline float geluCubic() { return 0.044715f; }

struct Gelu {
  __device__ float operator()(float v) const {
    float u = geluScale() * (v + geluCubic() * v * v * v);
    return 0.5f * v * (1.0f + tanhf(u));
  }
};
/// gelu'(v), which B multiplies dy by.
struct GeluGrad {
  __device__ float operator()(float v) const {
    float u = geluScale() * (v + geluCubic() * v * v * v);
    float th = tanhf(u);
    float du = geluScale() * (1.0f + 3.0f * geluCubic() * v * v);
    return 0.5f * (1.0f + th) + 0.5f * v * (1.0f - th * th) * du;
  }
};
/// SiLU: y = x / (1 + expf(-x)); B: dx = dy * s (1 + x (1 - s)).
struct Silu {
  __device__ float operator()(float v) const {
    return v / (1.0f + expf(-v));
  }
};
struct SiluGrad {
  __device__ float operator()(float v) const {
    float s = 1.0f / (1.0f + expf(-v));
    return s * (1.0f + v * (1.0f - s));
  }
};

// --- kernels -----------------------------------------------------------------

/// y = f(x) (no dy) or dx = dy * f(x), V elements a thread: V = 8 reads
/// and writes 16 bytes at a time (the same arithmetic per element, so the
/// same bits as V = 1).
template <int V, typename F>
__global__ void activationKernel(bf16 *out, const bf16 *dy, const bf16 *x,
                                 int64_t n, F f) {
  int64_t i = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) * V;
  if (i >= n)
    return;
  float v[V], r[V];
  loadBf16<V>(v, x + i);
#pragma unroll
  for (int k = 0; k < V; ++k)
    r[k] = f(v[k]);
  if (dy) {
    float g[V];
    loadBf16<V>(g, dy + i);
#pragma unroll
    for (int k = 0; k < V; ++k)
      r[k] = g[k] * r[k];
  }
  storeBf16<V>(out + i, r);
}

// --- launchers ---------------------------------------------------------------

/// 8 elements a thread where n is a multiple of 8 and every pointer
/// 16-byte aligned, else one.
template <typename F>
cudaError_t activation(bf16 *out, const bf16 *dy, const bf16 *x, int64_t n,
                       F f, cudaStream_t stream) {
  if (n == 0)
    return cudaSuccess;
  if (n % 8 == 0 && aligned16(out) && aligned16(x) && (!dy || aligned16(dy)))
    activationKernel<8><<<blocksFor(n / 8), kBlock, 0, stream>>>(out, dy, x,
                                                                 n, f);
  else
    activationKernel<1><<<blocksFor(n), kBlock, 0, stream>>>(out, dy, x, n,
                                                             f);
  return launched();
}

cudaError_t geluForward(bf16 *y, const bf16 *x, int64_t n,
                        cudaStream_t stream) {
  return activation(y, nullptr, x, n, Gelu{}, stream);
}

cudaError_t geluBackward(bf16 *dx, const bf16 *dy, const bf16 *x, int64_t n,
                         cudaStream_t stream) {
  return activation(dx, dy, x, n, GeluGrad{}, stream);
}

cudaError_t siluForward(bf16 *y, const bf16 *x, int64_t n,
                        cudaStream_t stream) {
  return activation(y, nullptr, x, n, Silu{}, stream);
}

cudaError_t siluBackward(bf16 *dx, const bf16 *dy, const bf16 *x, int64_t n,
                         cudaStream_t stream) {
  return activation(dx, dy, x, n, SiluGrad{}, stream);
}

} // namespace pipert::cuda

#endif // PIPERT_KERNELS_CUDA_ACTIVATION_CUH
