//===- Target.cpp - per-rank device state and device arenas ---------------===//

#include "kernels/cuda/Target.h"

#include "kernels/cuda/Calls.h"
#include "kernels/cuda/Nccl.h"

#include <cuda_runtime_api.h>

#include <cstdio>
#include <string>

namespace pipert::cuda {
namespace {

/// A rank's state: the Context the generated code reads (its base: the
/// pointer the runtime holds is the Context's), and what it owns.
struct RankState : call::Context {
  std::unique_ptr<Gemm> gemmOwner;
  call::RopeTables ropeTables;
  KernelEvents kernelEvents;
  GraphCache graphCache;
  HostInputs hostInputs; ///< waits for its copies when destroyed
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
  if (s->stream)
    cudaStreamDestroy(s->stream);
  delete s;
}

/// pinDevice's choice: the one device of this process (--transport nccl);
/// -1 when the ranks spread over the devices.
int pinnedDevice = -1;

/// The device of `rank`: the pinned one, else rank mod the devices this
/// process sees; -1 with why in `error` without one.
int deviceOf(int32_t rank, char *error, int64_t errorBytes) {
  if (pinnedDevice >= 0)
    return pinnedDevice;
  int devices = 0;
  cudaError_t e = cudaGetDeviceCount(&devices);
  if (e != cudaSuccess || devices == 0) {
    setError(error, errorBytes,
             std::string("no CUDA device: ") +
                 (e != cudaSuccess ? cudaGetErrorString(e) : "0 devices"));
    return -1;
  }
  return int(rank % devices);
}

bool pinDevice(int32_t localRank, char *error, int64_t errorBytes) {
  int device = deviceOf(localRank, error, errorBytes);
  if (device < 0)
    return false;
  pinnedDevice = device;
  return true;
}

void *createRank(int32_t rank, void *workspace, int64_t workspaceBytes,
                 char *error, int64_t errorBytes) {
  // The workspace is the plan's, in the rank's arena (PlanAbi.h): the
  // column sums' split depends on its size, so a plan compiled for another
  // size would not give the harness's bits.
  if (!workspace || workspaceBytes != kGemmWorkspaceBytes) {
    setError(error, errorBytes,
             "the plan's workspace is " + std::to_string(workspaceBytes) +
                 " bytes; this runtime needs " +
                 std::to_string(kGemmWorkspaceBytes) +
                 " in the rank's arena (recompile the plan with this pipec)");
    return nullptr;
  }
  int device = deviceOf(rank, error, errorBytes);
  if (device < 0)
    return nullptr;
  cudaError_t e = cudaSuccess;
  auto *s = new RankState;
  s->device = device;
  auto fail = [&](const std::string &what) -> void * {
    setError(error, errorBytes, what);
    destroyRank(static_cast<call::Context *>(s));
    return nullptr;
  };
  if ((e = cudaSetDevice(s->device)) != cudaSuccess)
    return fail(std::string("cudaSetDevice: ") + cudaGetErrorString(e));
  if ((e = cudaStreamCreateWithFlags(&s->stream,
                                     cudaStreamNonBlocking)) != cudaSuccess)
    return fail(std::string("cudaStreamCreate: ") + cudaGetErrorString(e));
  std::string why;
  s->gemmOwner = Gemm::create(workspace, size_t(workspaceBytes), why);
  if (!s->gemmOwner)
    return fail(why);
  s->gemm = s->gemmOwner.get();
  s->workspace = {workspace, workspaceBytes};
  s->rope = &s->ropeTables;
  s->events = &s->kernelEvents;
  s->inputs = &s->hostInputs;
  return static_cast<call::Context *>(s);
}

void *allocateArena(int32_t rank, int64_t bytes, char *error,
                    int64_t errorBytes) {
  int device = deviceOf(rank, error, errorBytes);
  if (device < 0)
    return nullptr;
  void *p = nullptr;
  cudaError_t e = cudaSetDevice(device);
  if (e == cudaSuccess)
    e = cudaMalloc(&p, size_t(bytes));
  if (e == cudaSuccess && (e = cudaMemset(p, 0, size_t(bytes))) == cudaSuccess)
    e = cudaDeviceSynchronize();
  if (e != cudaSuccess) {
    setError(error, errorBytes,
             "cudaMalloc of " + std::to_string(bytes) + " bytes on device " +
                 std::to_string(device) + ": " +
                 cudaGetErrorString(e));
    if (p)
      cudaFree(p);
    return nullptr;
  }
  return p;
}

void freeArena(void *arena) { cudaFree(arena); }

void deferSyncs(void *state) {
  auto *s = static_cast<RankState *>(static_cast<call::Context *>(state));
  if (s)
    s->deferSync = true;
}

// The same-rank hand-over (PlanTarget::copyInStream): on the rank's
// compute stream, so it follows the chunk that wrote the source and
// precedes the one that reads the copy, whether or not their functions
// synchronized.
bool copyInStream(void *state, void *dst, const void *src, int64_t bytes,
                  char *error, int64_t errorBytes) {
  const auto *c = static_cast<const call::Context *>(state);
  cudaError_t e = cudaSetDevice(c->device);
  if (e == cudaSuccess)
    e = cudaMemcpyAsync(dst, src, size_t(bytes), cudaMemcpyDeviceToDevice,
                        c->stream);
  if (e == cudaSuccess)
    return true;
  setError(error, errorBytes,
           std::string("cudaMemcpyAsync on the rank's stream: ") +
               cudaGetErrorString(e));
  return false;
}

bool beginStep(void *state, int64_t step, bool *replayed, char *error,
               int64_t errorBytes) {
  auto *c = static_cast<call::Context *>(state);
  *replayed = false;
  if (!c || !c->stepGraph)
    return true;
  std::string why = c->stepGraph->beginStep(*c, step, *replayed);
  if (why.empty())
    return true;
  setError(error, errorBytes, why);
  return false;
}

bool endStep(void *state, char *error, int64_t errorBytes) {
  auto *c = static_cast<call::Context *>(state);
  if (!c || !c->stepGraph)
    return true;
  std::string why = c->stepGraph->endStep(*c);
  if (why.empty())
    return true;
  setError(error, errorBytes, why);
  return false;
}

bool enableStepGraphs(pipert::DeviceQueues *queues, pipert::Transport *nccl,
                      int64_t from, char *error, int64_t errorBytes) {
  std::string why = queues ? enableQueueStepGraphs(queues, from)
                    : nccl ? enableNcclStepGraphs(nccl, from)
                           : "--step-graph: neither cuda-local nor nccl";
  if (why.empty())
    return true;
  setError(error, errorBytes, why);
  return false;
}

void enableGraphs(void *state) {
  auto *s = static_cast<RankState *>(static_cast<call::Context *>(state));
  if (s)
    s->graphs = &s->graphCache;
}

// Host code's way into the arenas (PlanTarget::copy), done when it
// returns. Not plain cudaMemcpy: it may return before a device-to-device
// copy lands, or while a pageable host-to-device one is still on its way
// from the driver's staging buffer, and the legacy default stream it uses
// does not order the ranks' non-blocking streams. So the copy goes on the calling thread's own
// stream, which is then synchronized; cudaMemcpyDefault lets unified
// addressing route it (host to device, device to host, between two ranks'
// arenas on one device or across devices). The rank whose stream wrote the
// source has finished it: under `--transport local` every function ends
// synchronized, and where the functions leave the stream running
// (call::endFunction: cuda-local, nccl) the device moves the messages and
// collectives and the executor drains the rank's streams at the end of
// every step before it reads the metric slots or writes a checkpoint.
bool copy(void *dst, const void *src, int64_t bytes, char *error,
          int64_t errorBytes) {
  cudaError_t e = cudaMemcpyAsync(dst, src, size_t(bytes), cudaMemcpyDefault,
                                  cudaStreamPerThread);
  if (e == cudaSuccess)
    e = cudaStreamSynchronize(cudaStreamPerThread);
  if (e == cudaSuccess)
    return true;
  setError(error, errorBytes, std::string("cudaMemcpyAsync: ") +
                                  cudaGetErrorString(e));
  return false;
}

} // namespace

pipecrun::PlanTarget planTarget() {
  return {createRank,   destroyRank,      allocateArena, freeArena,
          copy,         "cuda",           createQueues,  pinDevice,
          createNccl,   enableGraphs,     deferSyncs,    copyInStream,
          enableStepGraphs, beginStep,    endStep};
}

} // namespace pipert::cuda
