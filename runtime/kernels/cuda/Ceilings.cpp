//===- Ceilings.cpp - the GPU's measured ceilings (--profile) --------------===//
//
// What pipec-plan --profile sets the cuda kernels against, measured on the
// card in the same run: the bf16 GEMM rate of this library's own GEMM
// (Gemm.h: cuBLASLt under the fixed, deterministic preferences) at 8192^3,
// and the device's copy bandwidth (1 GiB device to device: read and
// written). Both on the device of rank 0, before the first step.
//
//===----------------------------------------------------------------------===//

#include "kernels/cuda/Target.h"

#include "kernels/cuda/Gemm.h"
#include "kernels/cuda/Kernels.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace pipert::cuda {

namespace {

/// Frees what it holds, on every path.
struct DeviceBuffers {
  void *p[5] = {};
  cudaStream_t stream = nullptr;
  cudaEvent_t begin = nullptr, end = nullptr;
  ~DeviceBuffers() {
    for (void *q : p)
      if (q)
        cudaFree(q);
    if (begin)
      cudaEventDestroy(begin);
    if (end)
      cudaEventDestroy(end);
    if (stream)
      cudaStreamDestroy(stream);
  }
};

} // namespace

bool measureCeilings(int32_t, double *flopsPerSecond, double *bytesPerSecond,
                     char *error, int64_t errorBytes) {
  auto fail = [&](const std::string &what) {
    if (error && errorBytes > 0)
      std::snprintf(error, size_t(errorBytes), "measuring the ceilings: %s",
                    what.c_str());
    return false;
  };
  const int device = 0;
  DeviceBuffers d;
  cudaError_t e = cudaSetDevice(device);
  const int64_t n = 8192;
  const size_t matrix = size_t(n * n) * 2, copyBytes = size_t(1) << 30;
  if (e == cudaSuccess)
    e = cudaStreamCreateWithFlags(&d.stream, cudaStreamNonBlocking);
  if (e == cudaSuccess)
    e = cudaEventCreate(&d.begin);
  if (e == cudaSuccess)
    e = cudaEventCreate(&d.end);
  for (int i = 0; i < 3 && e == cudaSuccess; ++i)
    e = cudaMalloc(&d.p[i], matrix);
  if (e == cudaSuccess)
    e = cudaMalloc(&d.p[3], size_t(kGemmWorkspaceBytes));
  if (e == cudaSuccess)
    e = cudaMalloc(&d.p[4], copyBytes);
  if (e != cudaSuccess)
    return fail(cudaGetErrorString(e));
  // Non-zero operands: bf16 1/64 everywhere (0x3c80), so that the 8192
  // products of a dot product stay finite.
  std::vector<uint16_t> fill(size_t(n) * size_t(n), 0x3c80);
  for (int i = 0; i < 2 && e == cudaSuccess; ++i)
    e = cudaMemcpyAsync(d.p[i], fill.data(), matrix, cudaMemcpyHostToDevice,
                        d.stream);
  if (e == cudaSuccess)
    e = cudaStreamSynchronize(d.stream);
  if (e != cudaSuccess)
    return fail(cudaGetErrorString(e));
  std::string why;
  std::unique_ptr<Gemm> gemm =
      Gemm::create(d.p[3], size_t(kGemmWorkspaceBytes), why);
  if (!gemm)
    return fail(why);
  auto timed = [&](auto &&run, double &best) -> bool {
    best = 1e30;
    for (int rep = 0; rep < 4; ++rep) { // the first is the warm-up
      if ((e = cudaEventRecord(d.begin, d.stream)) != cudaSuccess)
        return false;
      if (!run())
        return false;
      if ((e = cudaEventRecord(d.end, d.stream)) != cudaSuccess ||
          (e = cudaEventSynchronize(d.end)) != cudaSuccess)
        return false;
      float ms = 0;
      if ((e = cudaEventElapsedTime(&ms, d.begin, d.end)) != cudaSuccess)
        return false;
      if (rep > 0)
        best = std::min(best, double(ms) * 1e-3);
    }
    return true;
  };
  cublasStatus_t gs = CUBLAS_STATUS_SUCCESS;
  auto bf = [](void *p) { return static_cast<__nv_bfloat16 *>(p); };
  double gemmS = 0, copyS = 0;
  if (!timed(
          [&] {
            gs = gemm->forward(bf(d.p[2]), bf(d.p[0]), bf(d.p[1]), nullptr, n,
                               n, n, false, d.stream);
            return gs == CUBLAS_STATUS_SUCCESS;
          },
          gemmS))
    return fail(gs != CUBLAS_STATUS_SUCCESS
                    ? std::string("the bf16 GEMM: cuBLASLt ") +
                          gemmStatusString(gs)
                    : std::string(cudaGetErrorString(e)));
  if (!timed(
          [&] {
            e = cudaMemcpyAsync(d.p[4], static_cast<char *>(d.p[4]) + copyBytes / 2,
                                copyBytes / 2, cudaMemcpyDeviceToDevice,
                                d.stream);
            return e == cudaSuccess;
          },
          copyS))
    return fail(cudaGetErrorString(e));
  *flopsPerSecond = 2.0 * double(n) * double(n) * double(n) / gemmS;
  *bytesPerSecond = double(copyBytes) / copyS; // half read, half written
  return true;
}

} // namespace pipert::cuda
