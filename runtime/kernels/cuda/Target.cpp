//===- Target.cpp - per-rank device state and managed arenas --------------===//

#include "kernels/cuda/Target.h"

#include "kernels/cuda/Calls.h"

#include <cuda_runtime_api.h>

#include <cstdio>
#include <string>

namespace pipert::cuda {
namespace {

/// A rank's state: the Context the generated code reads (its base: the
/// pointer the runtime holds is the Context's), and what it owns.
struct RankState : call::Context {
  void *workspace = nullptr;
  std::unique_ptr<Gemm> gemmOwner;
  call::RopeTables ropeTables;
};

void setError(char *error, int64_t bytes, const std::string &text) {
  if (error && bytes > 0)
    std::snprintf(error, size_t(bytes), "%s", text.c_str());
}

void destroyRank(void *state) {
  auto *s = static_cast<RankState *>(static_cast<call::Context *>(state));
  if (!s)
    return;
  cudaSetDevice(s->device);
  s->gemmOwner.reset();
  if (s->workspace)
    cudaFree(s->workspace);
  if (s->stream)
    cudaStreamDestroy(s->stream);
  delete s;
}

void *createRank(int32_t rank, char *error, int64_t errorBytes) {
  int devices = 0;
  cudaError_t e = cudaGetDeviceCount(&devices);
  if (e != cudaSuccess || devices == 0) {
    setError(error, errorBytes,
             std::string("no CUDA device: ") +
                 (e != cudaSuccess ? cudaGetErrorString(e) : "0 devices"));
    return nullptr;
  }
  auto *s = new RankState;
  s->device = rank % devices;
  auto fail = [&](const std::string &what) -> void * {
    setError(error, errorBytes, what);
    destroyRank(static_cast<call::Context *>(s));
    return nullptr;
  };
  if ((e = cudaSetDevice(s->device)) != cudaSuccess)
    return fail(std::string("cudaSetDevice: ") + cudaGetErrorString(e));
  // The ranks of a process share its managed arenas: the host (the local
  // transport, another rank's thread) may touch one while a kernel of
  // another rank runs on the device, which needs concurrent managed access
  // (Linux, Pascal and later; not Windows, not some virtualized GPUs).
  int concurrent = 0;
  cudaDeviceGetAttribute(&concurrent, cudaDevAttrConcurrentManagedAccess,
                         s->device);
  if (!concurrent)
    return fail("device " + std::to_string(s->device) +
                " has no concurrent managed access, which the cuda target's "
                "managed arenas need (docs/CUDA.md)");
  if ((e = cudaStreamCreateWithFlags(&s->stream,
                                     cudaStreamNonBlocking)) != cudaSuccess)
    return fail(std::string("cudaStreamCreate: ") + cudaGetErrorString(e));
  if ((e = cudaMalloc(&s->workspace, size_t(kGemmWorkspaceBytes))) !=
      cudaSuccess)
    return fail(std::string("the cuBLASLt workspace: ") +
                cudaGetErrorString(e));
  std::string why;
  s->gemmOwner = Gemm::create(s->workspace, size_t(kGemmWorkspaceBytes), why);
  if (!s->gemmOwner)
    return fail(why);
  s->gemm = s->gemmOwner.get();
  s->rope = &s->ropeTables;
  return static_cast<call::Context *>(s);
}

void *allocateArena(int64_t bytes, char *error, int64_t errorBytes) {
  void *p = nullptr;
  cudaError_t e = cudaMallocManaged(&p, size_t(bytes));
  if (e == cudaSuccess && (e = cudaMemset(p, 0, size_t(bytes))) == cudaSuccess)
    e = cudaDeviceSynchronize();
  if (e != cudaSuccess) {
    setError(error, errorBytes,
             std::string("cuda managed memory: ") + cudaGetErrorString(e));
    if (p)
      cudaFree(p);
    return nullptr;
  }
  return p;
}

void freeArena(void *arena) { cudaFree(arena); }

} // namespace

pipecrun::PlanTarget planTarget() {
  return {createRank, destroyRank, allocateArena, freeArena, "cuda"};
}

} // namespace pipert::cuda
