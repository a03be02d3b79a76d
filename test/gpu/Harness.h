//===- Harness.h - what the kernel harness's checks share ------------------===//
//
// Device buffers poisoned at allocation, bf16 random data, the bf16 bit
// helpers and the JSON report of test/gpu's checks (docs/CUDA.md).
//
//===----------------------------------------------------------------------===//
#ifndef PIPEC_TEST_GPU_HARNESS_H
#define PIPEC_TEST_GPU_HARNESS_H

#include "kernels/cuda/Bf16.h"
#include "kernels/cuda/RowOrder.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace harness {

using pipert::bf16::fromFloat;
using pipert::bf16::toFloat;
using bf16 = __nv_bfloat16;

inline int failures = 0, checks = 0;

inline void fail(const char *what, cudaError_t e) {
  std::printf("{\"error\": \"%s: %s\"}\n", what, cudaGetErrorString(e));
  std::exit(1);
}
#define CHECK(x)                                                               \
  do {                                                                         \
    cudaError_t e_ = (x);                                                      \
    if (e_ != cudaSuccess)                                                     \
      fail(#x, e_);                                                            \
  } while (0)

/// A device buffer filled from / read back into host vectors.
template <typename T> struct Device {
  T *p = nullptr;
  size_t n = 0;
  explicit Device(size_t count) : n(count) {
    CHECK(cudaMalloc(&p, n * sizeof(T) + 1));
    poison();
  }
  ~Device() { cudaFree(p); }
  void poison() { CHECK(cudaMemset(p, 0xff, n * sizeof(T))); }
  void put(const std::vector<T> &h) {
    CHECK(cudaMemcpy(p, h.data(), n * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> get() const {
    std::vector<T> h(n);
    CHECK(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }
};

inline std::vector<bf16> randomBf16(std::mt19937_64 &rng, size_t n, float scale) {
  std::uniform_real_distribution<float> d(-scale, scale);
  std::vector<bf16> v(n);
  for (auto &x : v) {
    uint16_t b = fromFloat(d(rng));
    std::memcpy(&x, &b, 2);
  }
  return v;
}
inline float f(bf16 x) {
  uint16_t b;
  std::memcpy(&b, &x, 2);
  return toFloat(b);
}
inline uint16_t bits(bf16 x) {
  uint16_t b;
  std::memcpy(&b, &x, 2);
  return b;
}
/// The bf16 of the given bits.
inline bf16 toBf16(uint16_t b) {
  bf16 x;
  std::memcpy(&x, &b, 2);
  return x;
}

/// Distance in bf16 ulps between two finite values of one sign, else large.
inline int ulps(uint16_t a, uint16_t b) {
  if (a == b)
    return 0;
  if ((a ^ b) & 0x8000)
    return ((a & 0x7fff) == 0 && (b & 0x7fff) == 0) ? 0 : 1 << 20;
  return std::abs(int(a & 0x7fff) - int(b & 0x7fff));
}

inline void report(const std::string &name, const std::string &shape, bool ok,
            const std::string &detail) {
  ++checks;
  failures += !ok;
  std::printf("{\"check\": \"%s\", \"shape\": \"%s\", \"pass\": %s, %s}\n",
              name.c_str(), shape.c_str(), ok ? "true" : "false",
              detail.c_str());
  std::fflush(stdout);
}

/// The xor-butterfly of Launch.cuh's warpSum over 32 lane sums (all lanes
/// end equal; lane 0's).
inline float butterflyRef(float (&lane)[32]) {
  for (int offset = 16; offset > 0; offset /= 2) {
    float next[32];
    for (int l = 0; l < 32; ++l)
      next[l] = lane[l] + lane[l ^ offset];
    std::memcpy(lane, next, sizeof lane);
  }
  return lane[0];
}

/// The warp's sum: 32 lanes adding their strided elements in order (l,
/// l + 32, ...), then the butterfly (Softmax.cuh).
template <typename F> inline float warpSumRef(int64_t dim, F term) {
  float lane[32] = {};
  for (int l = 0; l < 32; ++l)
    for (int64_t i = l; i < dim; i += 32)
      lane[l] += term(i);
  return butterflyRef(lane);
}

/// The norms' row sum (RowOrder.h): lane l adds V elements at a time from
/// (32 j + l) V, then the butterfly.
template <typename F> inline float rowSumRef(int64_t dim, F term) {
  const int V = pipert::cuda::rowVector(dim);
  float lane[32] = {};
  for (int l = 0; l < 32; ++l)
    for (int64_t i = int64_t(l) * V; i < dim; i += 32 * V)
      for (int v = 0; v < V; ++v)
        lane[l] += term(i + v);
  return butterflyRef(lane);
}

/// The largest |got - want| over the largest finite |want|: the error of a
/// result whose summation order differs from the reference's (GEMM,
/// attention). Where the reference is not finite (a row that sees no key
/// has lse -inf) the result must be the same value; a NaN result fails.
inline double relativeError(const std::vector<float> &got,
                            const std::vector<double> &want) {
  double err = 0, scale = 1e-30;
  for (size_t i = 0; i < want.size(); ++i) {
    if (std::isnan(got[i]))
      return INFINITY;
    if (!std::isfinite(want[i])) {
      if (double(got[i]) != want[i])
        return INFINITY;
      continue;
    }
    scale = std::max(scale, std::fabs(want[i]));
    err = std::max(err, std::fabs(double(got[i]) - want[i]));
  }
  return err / scale;
}
inline std::vector<float> floats(const std::vector<bf16> &v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i)
    out[i] = f(v[i]);
  return out;
}

// The families' checks (one file each), run by main in KernelHarness.cu.
void runShapeChecks();
void runModelChecks();

} // namespace harness

#endif // PIPEC_TEST_GPU_HARNESS_H
