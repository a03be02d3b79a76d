//===- KernelEvents.h - per-kernel GPU times of a rank (--profile) -*- C++ -*-===//
//
// pipec-plan --profile (and --trace-kernels) on the cuda target: every
// kernel call of the generated code opens a KernelClock (Calls.h) with its
// instantiation's id; while the executor has pointed the rank thread's
// KernelTimes table at the rank (the warm steps), the clock records a CUDA
// event on the rank's stream before the launch and one after it. The
// pairs are read when the generated function synchronizes its stream (every
// one ends so), which adds each call's GPU time into the table: the same
// kernel_times.json the cpu target's wrappers fill. Off, a clock costs a
// thread-local load and a branch. Events are made once and reused.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CUDA_KERNELEVENTS_H
#define PIPERT_KERNELS_CUDA_KERNELEVENTS_H

#include "kernels/cpu/Status.h"
#include "pipert/KernelClock.h"

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>
#include <vector>

namespace pipert::cuda {

/// One rank's timing events: a pool, and the pairs recorded since the
/// last harvest.
class KernelEvents {
public:
  KernelEvents() = default;
  ~KernelEvents();
  KernelEvents(const KernelEvents &) = delete;
  KernelEvents &operator=(const KernelEvents &) = delete;

  /// Records the start of kernel `id` on `stream`.
  void start(cudaStream_t stream, int32_t id);
  /// Records the end of the kernel last started.
  void stop(cudaStream_t stream);
  /// After the stream is synchronized: adds every recorded pair's time to
  /// `times` (seconds, one call each) and returns the events to the pool;
  /// the first event error since the last harvest, named.
  pipert::cpu::Status harvest(KernelTimes &times);

private:
  cudaEvent_t take();
  struct Pair {
    int32_t id;
    cudaEvent_t begin, end;
  };
  std::vector<cudaEvent_t> pool;
  std::vector<Pair> pending;
  std::string error;
};

} // namespace pipert::cuda

#endif // PIPERT_KERNELS_CUDA_KERNELEVENTS_H
