//===- GraphReplay.cpp - a generated function's launches as one CUDA graph -===//

#include "kernels/cuda/GraphReplay.h"

#include <cstdio>

namespace pipert::cuda {

GraphCache::~GraphCache() {
  for (auto &entry : execs)
    cudaGraphExecDestroy(entry.second);
}

cudaGraphExec_t GraphCache::find(const std::string &key) const {
  auto it = execs.find(key);
  return it == execs.end() ? nullptr : it->second;
}

void GraphCache::add(const std::string &key, cudaGraphExec_t exec) {
  execs[key] = exec;
}

Replay::Replay(GraphCache *cache, cudaStream_t stream, const char *what,
               std::initializer_list<const void *> args, bool uncaptured)
    : cache(uncaptured ? nullptr : cache), stream(stream), what(what) {
  if (cache && cache->skipping) {
    // The whole step's graph launches these calls (before `uncaptured`:
    // a timed call must not run a second time beside the graph).
    replayed = true;
    this->cache = nullptr;
    return;
  }
  if (!this->cache)
    return;
  key = what;
  char hex[24];
  for (const void *a : args) {
    std::snprintf(hex, sizeof hex, "/%p", a);
    key += hex;
  }
  if (cudaGraphExec_t exec = this->cache->find(key)) {
    error = cudaGraphLaunch(exec, stream);
    stage = "launch";
    replayed = true;
    return;
  }
  if (this->cache->firstRun(key)) {
    this->cache = nullptr; // this call runs as it is
    return;
  }
  // Relaxed: the calls may still make host-side requests that a global
  // capture refuses (cudaFuncSetAttribute, cudaDeviceGetAttribute).
  error = cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed);
  stage = "begin capture";
  capturing = error == cudaSuccess;
  if (!capturing) {
    // Skip the calls; finish() reports the error under this function's
    // name (cleared here, so no launch reports it as its own).
    (void)cudaGetLastError();
    replayed = true;
  }
}

Replay::~Replay() {
  if (!capturing)
    return;
  // A call failed mid-capture: end it, so the stream is usable for the
  // failure's report.
  cudaGraph_t graph = nullptr;
  cudaStreamEndCapture(stream, &graph);
  if (graph)
    cudaGraphDestroy(graph);
  (void)cudaGetLastError(); // the invalidated capture's, not the failure's
}

pipert::cpu::Status Replay::finish() {
  auto failed = [&](const char *step) {
    return pipert::cpu::Status::failure(std::string(what) + ": CUDA graph (" +
                                        step + "): " +
                                        cudaGetErrorString(error));
  };
  if (error != cudaSuccess)
    return failed(stage);
  if (!capturing)
    return pipert::cpu::Status::success();
  cudaGraph_t graph = nullptr;
  error = cudaStreamEndCapture(stream, &graph);
  capturing = false;
  if (error != cudaSuccess)
    return failed("end of capture");
  cudaGraphExec_t exec = nullptr;
  error = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  if (error != cudaSuccess)
    return failed("instantiate");
  cache->add(key, exec);
  error = cudaGraphLaunch(exec, stream);
  if (error != cudaSuccess)
    return failed("first launch");
  return pipert::cpu::Status::success();
}

} // namespace pipert::cuda
