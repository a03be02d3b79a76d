//===- StepGraph.h - a process's whole step as one CUDA graph -*- C++ -*-===//
//
// pipec-plan --step-graph (issue 19 item 3, issue 20 item 1): every rank
// of a process (cuda-local: all on one GPU; nccl: the process's one rank,
// its NCCL calls included) runs its step into one stream capture, and the
// steps after it replay the graph with one launch. A step already waits
// for nothing on the host (the functions end without a synchronize, the
// messages and collectives are copies, NCCL calls and sums ordered by
// events; docs/CUDA.md), so the streams' order is the graph's edges:
//
//   warm     the run's first step (and the steps --trace-steps traces,
//            which synchronize) run as they are: modules load, cuBLASLt
//            plans its shapes, the host inputs are counted
//   capture  the ranks meet at the step's start (every warm step, with
//            its synchronizes and lazy module loads, is over), and the
//            last to arrive starts a capture on the origin stream and
//            records `forked`; each rank's compute stream waits for it,
//            joining the capture, and its transfer stream joins when it
//            first waits on a captured event. Relaxed mode: the capture is
//            ended by another thread than the one that began it, and the
//            launchers may still set a kernel's attributes. The ranks run
//            the step as always; at its end they meet, and the last one
//            joins every captured stream back into the origin, ends the
//            capture, instantiates the graph and launches it
//   replay   the functions skip their launches (GraphReplay.h's skipping
//            cache) and only put the step's host inputs into their pinned
//            slots (HostInputs.h's step mode: the k-th input of a step in
//            slot k, whose address the graph's copy reads); the executor
//            leaves the transport out; at the end the last rank launches
//            the graph
//
// After the launch each rank's compute stream waits for `launched`, so the
// executor's drain at the end of the step waits for the graph, before the
// metric slots are read and before the next step's inputs overwrite the
// slots. A replay is the captured launches with the same arguments in the
// same order: the uncaptured run's bits (gpu-check compares them). The
// meeting at a step's end gives up once the run is abandoned.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CUDA_STEPGRAPH_H
#define PIPERT_KERNELS_CUDA_STEPGRAPH_H

#include "kernels/cuda/GraphReplay.h"

#include <cuda_runtime_api.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace pipert::cuda {

namespace call {
struct Context;
} // namespace call

class StepGraph {
public:
  /// One rank of the process: its context and the streams besides its
  /// compute stream that its step's work may use (cuda-local: its
  /// transfer stream; nccl: its communicators' streams).
  struct Member {
    call::Context *context = nullptr;
    std::vector<cudaStream_t> others;
  };

  /// The ranks `members` (all on `device`) run the first max(1, `from`)
  /// steps of the run as they are (the traced steps synchronize) and
  /// capture the next; `abandoned` is the queues' flag. "" or why not,
  /// from init().
  StepGraph(std::vector<Member> members, int device, int64_t from,
            const std::atomic<bool> *abandoned);
  ~StepGraph();
  StepGraph(const StepGraph &) = delete;
  StepGraph &operator=(const StepGraph &) = delete;
  std::string init();

  /// At the start of step `step` of the rank whose context is `c`:
  /// `replayed` when the graph does the step's device work. "" or why not.
  std::string beginStep(call::Context &c, int64_t step, bool &replayed);
  /// After the rank's last instruction of the step. "" or why not.
  std::string endStep(call::Context &c);

  /// Called by the last rank around each launch (nccl: the watchdog
  /// stops watching the last launch, then watches this one's `launched`,
  /// since a peer that died hangs the graph's NCCL kernels).
  std::function<void()> beforeLaunch;
  std::function<void(cudaEvent_t launched)> afterLaunch;

private:
  enum class Phase { Warm, Capture, Replay };
  /// The ranks meet at the end of a step; the last one runs `last` (under
  /// the lock). "" or why not (abandoned, or what `last` said).
  template <typename Last> std::string meet(Last &&last);
  std::string endCapture();
  std::string launch();

  std::vector<Member> members;
  const int device;
  const int64_t from;
  const std::atomic<bool> *abandoned;
  cudaStream_t origin = nullptr;
  cudaEvent_t forked = nullptr, launched = nullptr;
  std::vector<cudaEvent_t> joins; ///< per member: compute, then others
  cudaGraphExec_t exec = nullptr;
  GraphCache skipping; ///< a replayed step's functions skip their launches

  std::mutex mu;
  std::condition_variable cv;
  int64_t firstStep = -1;
  bool capturing = false;
  int32_t arrived = 0;
  int64_t generation = 0;
  std::string error; ///< of the last meeting
};

} // namespace pipert::cuda

#endif // PIPERT_KERNELS_CUDA_STEPGRAPH_H
