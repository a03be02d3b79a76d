//===- HostInputs.h - a rank's host-to-device inputs, from pinned slots -*- C++ -*-===//
//
// What the generated code copies from the host into a rank's arena on its
// stream: the micro-batch's tokens and targets and its loss scale (F), the
// step (the optimizer). The sources are the runtime's pageable buffers,
// rewritten for the next micro-batch as soon as the call returns, and a
// copy from pageable memory may wait for the stream to reach it, which
// would stop the host running ahead of the device (call::endFunction). So
// each input goes through a ring of pinned slots: the bytes are copied
// into the next slot on the host, the slot is copied to the arena on the
// stream, and an event after that copy says when the slot may be written
// again (the host waits for it only when it is a whole ring ahead).
// The ring is sized by the largest input, all slots at once (in practice
// at the rank's first F, by its tokens), so nothing is allocated once
// steps run; where pinned memory cannot be had the inputs are copied from
// their sources (said once on stderr).
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CUDA_HOSTINPUTS_H
#define PIPERT_KERNELS_CUDA_HOSTINPUTS_H

#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

namespace pipert::cuda {

class HostInputs {
public:
  /// Inputs in flight at most: F copies three, so about five micro-batches.
  static constexpr int kSlots = 16;

  HostInputs() = default;
  ~HostInputs();
  HostInputs(const HostInputs &) = delete;
  HostInputs &operator=(const HostInputs &) = delete;

  /// `n` bytes from host memory `src` to device memory `dst` on `stream`;
  /// `src` may be rewritten as soon as this returns.
  cudaError_t copy(void *dst, const void *src, int64_t n,
                   cudaStream_t stream);

  /// Whole-step graphs (StepGraph.h). A warm step counts its inputs and
  /// their largest size from here on.
  void countStep() { counted = 0; }
  /// From here on the k-th input of each step goes to its own pinned slot
  /// k (made at the first call, as the last warm step counted), whose
  /// address the step's graph reads: `replaying`, the graph copies it and
  /// the host only fills the slot; otherwise (the capture) the copy is
  /// launched as always. The slots are rewritten only after the graph that
  /// read them has finished (the executor drains each step).
  cudaError_t beginGraphStep(bool replaying);
  /// The end of such a step: back to the ring (a copy outside the steps,
  /// a sample after training, is launched as always). cudaErrorInvalidValue
  /// when the step gave fewer inputs than the captured one.
  cudaError_t endGraphStep();

private:
  struct Slot {
    void *pinned = nullptr;
    cudaEvent_t free = nullptr; ///< recorded after the slot's last copy
    bool inFlight = false;
  };
  /// Every slot of at least `n` bytes (after their copies).
  cudaError_t grow(int64_t n);
  /// Waits for the slots' copies and frees them.
  void release();
  Slot slots[kSlots];
  int next = 0;
  // Whole-step graphs.
  int64_t counted = 0, countedBytes = 0; ///< a warm step's inputs, largest
  std::vector<void *> stepSlots;         ///< pinned, countedBytes each
  std::vector<int64_t> stepSizes;        ///< each slot's bytes, as captured
  size_t cursor = 0;                     ///< the step's next input
  bool stepMode = false, replaying = false;
  int64_t capacity = 0; ///< bytes of every slot
  bool unpinned = false; ///< pinned memory failed: copies from the source
};

} // namespace pipert::cuda

#endif // PIPERT_KERNELS_CUDA_HOSTINPUTS_H
