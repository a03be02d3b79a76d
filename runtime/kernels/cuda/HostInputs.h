//===- HostInputs.h - a rank's host-to-device inputs, from pinned slots -*- C++ -*-===//
//
// What the generated code copies from the host into a rank's arena on its
// stream: the micro-batch's tokens and targets and its loss scale (F), the
// step (the optimizer). The sources are the runtime's pageable buffers,
// rewritten for the next micro-batch as soon as the call returns, and a
// copy from pageable memory may wait for the stream to reach it, which
// would stop the host running ahead of the device (call::endChunk). So
// each input goes through a ring of pinned slots: the bytes are copied
// into the next slot on the host, the slot is copied to the arena on the
// stream, and an event after that copy says when the slot may be written
// again (the host waits for it only when it is a whole ring ahead).
// Slots grow to the largest input they carry, so after the first step
// nothing is allocated; where pinned memory cannot be had the copy is
// made from the source directly, as before.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CUDA_HOSTINPUTS_H
#define PIPERT_KERNELS_CUDA_HOSTINPUTS_H

#include <cuda_runtime_api.h>

#include <cstdint>

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

private:
  struct Slot {
    void *pinned = nullptr;
    int64_t capacity = 0;
    cudaEvent_t free = nullptr; ///< recorded after the slot's last copy
    bool inFlight = false;
  };
  Slot slots[kSlots];
  int next = 0;
};

} // namespace pipert::cuda

#endif // PIPERT_KERNELS_CUDA_HOSTINPUTS_H
