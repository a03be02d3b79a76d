//===- KernelEvents.cpp - per-kernel GPU times of a rank (--profile) -------===//

#include "kernels/cuda/KernelEvents.h"

namespace pipert::cuda {

KernelEvents::~KernelEvents() {
  for (const Pair &p : pending) {
    if (p.begin)
      cudaEventDestroy(p.begin);
    if (p.end)
      cudaEventDestroy(p.end);
  }
  for (cudaEvent_t e : pool)
    cudaEventDestroy(e);
}

cudaEvent_t KernelEvents::take() {
  if (!pool.empty()) {
    cudaEvent_t e = pool.back();
    pool.pop_back();
    return e;
  }
  cudaEvent_t e = nullptr;
  cudaError_t err = cudaEventCreate(&e); // timing events
  if (err != cudaSuccess) {
    if (error.empty())
      error = std::string("cudaEventCreate: ") + cudaGetErrorString(err);
    return nullptr;
  }
  return e;
}

void KernelEvents::start(cudaStream_t stream, int32_t id) {
  Pair p{id, take(), nullptr};
  if (p.begin) {
    cudaError_t err = cudaEventRecord(p.begin, stream);
    if (err != cudaSuccess && error.empty())
      error = std::string("cudaEventRecord: ") + cudaGetErrorString(err);
  }
  pending.push_back(p);
}

void KernelEvents::stop(cudaStream_t stream) {
  if (pending.empty() || pending.back().end)
    return;
  Pair &p = pending.back();
  p.end = take();
  if (p.end) {
    cudaError_t err = cudaEventRecord(p.end, stream);
    if (err != cudaSuccess && error.empty())
      error = std::string("cudaEventRecord: ") + cudaGetErrorString(err);
  }
}

pipert::cpu::Status KernelEvents::harvest(KernelTimes &times) {
  for (Pair &p : pending) {
    if (p.begin && p.end && error.empty() && p.id >= 0 &&
        size_t(p.id) < times.seconds.size()) {
      float ms = 0;
      cudaError_t err = cudaEventSynchronize(p.end);
      if (err == cudaSuccess)
        err = cudaEventElapsedTime(&ms, p.begin, p.end);
      if (err != cudaSuccess)
        error = std::string("cudaEventElapsedTime: ") + cudaGetErrorString(err);
      else {
        times.seconds[size_t(p.id)] += double(ms) * 1e-3;
        ++times.calls[size_t(p.id)];
      }
    }
    if (p.begin)
      pool.push_back(p.begin);
    if (p.end)
      pool.push_back(p.end);
  }
  pending.clear();
  if (error.empty())
    return pipert::cpu::Status::success();
  pipert::cpu::Status st =
      pipert::cpu::Status::failure("timing the kernels: " + error);
  error.clear();
  return st;
}

} // namespace pipert::cuda
