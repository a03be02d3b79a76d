//===- Launch.cuh - what every cuda kernel family shares ---------------------===//
//
// Launchers take a cudaStream_t, launch, and return the launch's error
// (cudaPeekAtLastError), so a bad configuration is reported by the caller
// with its rank and instruction instead of surfacing at a later sync.
// Storage is bf16 (__nv_bfloat16) for activations and weight copies, fp32
// for masters, gradients, moments and statistics (docs/CUDA.md).
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CUDA_LAUNCH_CUH
#define PIPERT_KERNELS_CUDA_LAUNCH_CUH

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace pipert::cuda {

using bf16 = __nv_bfloat16;

/// Threads per block of the elementwise kernels.
constexpr int kBlock = 256;

/// Blocks for n elements at kBlock threads each.
inline unsigned blocksFor(int64_t n) {
  return unsigned((n + kBlock - 1) / kBlock);
}

/// Blocks for one warp per row over `rows` rows at kBlock threads each.
inline unsigned warpRowBlocks(int64_t rows) {
  constexpr int64_t kWarps = kBlock / 32;
  return unsigned((rows + kWarps - 1) / kWarps);
}

/// The error of the launch just made (cudaSuccess when it went out).
inline cudaError_t launched() { return cudaPeekAtLastError(); }

/// The sum over a warp by a fixed xor-butterfly: every lane ends with the
/// same bits (a + b and b + a are equal), and the order depends on nothing
/// but the 32 lane values.
__device__ inline float warpSum(float v) {
  for (int offset = 16; offset > 0; offset /= 2)
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

/// V consecutive bf16 values as floats; V = 8 is one 16-byte load.
template <int V>
__device__ inline void loadBf16(float (&out)[V], const bf16 *p) {
  if constexpr (V == 8) {
    const uint4 raw = *reinterpret_cast<const uint4 *>(p);
    const auto *pairs = reinterpret_cast<const __nv_bfloat162 *>(&raw);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 f = __bfloat1622float2(pairs[i]);
      out[2 * i] = f.x;
      out[2 * i + 1] = f.y;
    }
  } else {
#pragma unroll
    for (int v = 0; v < V; ++v)
      out[v] = __bfloat162float(p[v]);
  }
}

/// V floats rounded once each to bf16 (RNE) and stored; V = 8 is one
/// 16-byte store.
template <int V>
__device__ inline void storeBf16(bf16 *p, const float (&in)[V]) {
  if constexpr (V == 8) {
    uint4 raw;
    auto *pairs = reinterpret_cast<__nv_bfloat162 *>(&raw);
#pragma unroll
    for (int i = 0; i < 4; ++i)
      pairs[i] = __floats2bfloat162_rn(in[2 * i], in[2 * i + 1]);
    *reinterpret_cast<uint4 *>(p) = raw;
  } else {
#pragma unroll
    for (int v = 0; v < V; ++v)
      p[v] = __float2bfloat16_rn(in[v]);
  }
}

/// loadBf16 where `aligned` (16 bytes), else the same V values one at a
/// time: the same floats either way.
template <int V>
__device__ inline void loadBf16At(float (&out)[V], const bf16 *p,
                                  bool aligned) {
  if (V == 1 || aligned) {
    loadBf16<V>(out, p);
  } else {
#pragma unroll
    for (int v = 0; v < V; ++v)
      out[v] = __bfloat162float(p[v]);
  }
}

/// storeBf16 where `aligned`, else one value at a time: the same bits.
template <int V>
__device__ inline void storeBf16At(bf16 *p, const float (&in)[V],
                                   bool aligned) {
  if (V == 1 || aligned) {
    storeBf16<V>(p, in);
  } else {
#pragma unroll
    for (int v = 0; v < V; ++v)
      p[v] = __float2bfloat16_rn(in[v]);
  }
}

/// The residual norms' read of a row's V elements: u = bf16(a + b),
/// rounded once as the add kernel rounds it, and stored to s (the
/// residual stream) before the norm reads it.
template <int V>
__device__ inline void addRoundStore(float (&u)[V], const bf16 *a,
                                     const bf16 *b, bf16 *s, bool aligned) {
  float w[V];
  loadBf16At<V>(u, a, aligned);
  loadBf16At<V>(w, b, aligned);
#pragma unroll
  for (int k = 0; k < V; ++k)
    u[k] = __bfloat162float(__float2bfloat16_rn(u[k] + w[k]));
  storeBf16At<V>(s, u, aligned);
}

/// The norms' B operands at element i of a row: x, dy and gamma's V values.
template <int V>
__device__ inline void loadNormGrad(float (&x)[V], float (&dy)[V],
                                    float (&gamma)[V], const bf16 *xr,
                                    const bf16 *gr, const bf16 *g, int64_t i,
                                    bool aligned) {
  loadBf16At<V>(x, xr + i, aligned);
  loadBf16At<V>(dy, gr + i, aligned);
  loadBf16At<V>(gamma, g + i, aligned);
}

/// Whether p is a multiple of `bytes` (the vector paths' condition).
inline bool alignedTo(const void *p, uintptr_t bytes) {
  return reinterpret_cast<uintptr_t>(p) % bytes == 0;
}
inline bool aligned16(const void *p) { return alignedTo(p, 16); }

} // namespace pipert::cuda

#endif // PIPERT_KERNELS_CUDA_LAUNCH_CUH
