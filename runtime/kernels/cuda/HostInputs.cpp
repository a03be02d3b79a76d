//===- HostInputs.cpp - a rank's host-to-device inputs, from pinned slots -===//

#include "kernels/cuda/HostInputs.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace pipert::cuda {

HostInputs::~HostInputs() {
  release();
  for (void *p : stepSlots)
    cudaFreeHost(p);
}

cudaError_t HostInputs::beginGraphStep(bool replay) {
  if (stepSlots.empty() && counted > 0) {
    if (unpinned)
      return cudaErrorMemoryAllocation; // the graph needs fixed addresses
    for (int64_t k = 0; k < counted; ++k) {
      void *p = nullptr;
      if (cudaError_t e = cudaMallocHost(&p, size_t(countedBytes));
          e != cudaSuccess)
        return e;
      stepSlots.push_back(p);
    }
    stepSizes.assign(stepSlots.size(), -1);
  }
  stepMode = true;
  replaying = replay;
  cursor = 0;
  return cudaSuccess;
}

cudaError_t HostInputs::endGraphStep() {
  const bool complete = cursor == stepSlots.size();
  stepMode = replaying = false;
  return complete ? cudaSuccess : cudaErrorInvalidValue;
}

void HostInputs::release() {
  for (Slot &s : slots) {
    if (s.free) {
      cudaEventSynchronize(s.free);
      cudaEventDestroy(s.free);
      s.free = nullptr;
    }
    if (s.pinned)
      cudaFreeHost(s.pinned);
    s.pinned = nullptr;
    s.inFlight = false;
  }
  capacity = 0;
}

cudaError_t HostInputs::grow(int64_t n) {
  // Every slot at once, after their copies: the first input (a rank's
  // tokens, at its first F) sizes the ring, so nothing is allocated (a
  // device-wide wait) once steps are running, nor while another rank's
  // function is being captured.
  const int64_t bytes = std::max<int64_t>(n, 4096);
  release();
  for (Slot &s : slots) {
    if (cudaMallocHost(&s.pinned, size_t(bytes)) != cudaSuccess) {
      cudaGetLastError();
      s.pinned = nullptr;
      release();
      unpinned = true;
      std::fprintf(stderr,
                   "pipec: no pinned host memory for a rank's inputs (%lld "
                   "bytes a slot); they are copied from pageable memory, "
                   "which may wait for the device\n",
                   (long long)bytes);
      return cudaSuccess;
    }
    if (cudaError_t e = cudaEventCreateWithFlags(&s.free,
                                                 cudaEventDisableTiming);
        e != cudaSuccess)
      return e;
  }
  capacity = bytes;
  return cudaSuccess;
}

cudaError_t HostInputs::copy(void *dst, const void *src, int64_t n,
                             cudaStream_t stream) {
  if (n <= 0)
    return cudaSuccess;
  if (stepMode) {
    // Every step of a plan runs the same calls: a step whose inputs differ
    // from the captured step's in number or size cannot be replayed (the
    // capture records each slot's size; a capture that left one unfilled
    // failed at its end).
    if (cursor >= stepSlots.size() || n > countedBytes ||
        (stepSizes[cursor] >= 0 && n != stepSizes[cursor]))
      return cudaErrorInvalidValue;
    stepSizes[cursor] = n;
    void *slot = stepSlots[cursor++];
    std::memcpy(slot, src, size_t(n));
    return replaying ? cudaSuccess
                     : cudaMemcpyAsync(dst, slot, size_t(n),
                                       cudaMemcpyHostToDevice, stream);
  }
  ++counted;
  countedBytes = std::max(countedBytes, n);
  if (!unpinned && n > capacity)
    if (cudaError_t e = grow(n); e != cudaSuccess)
      return e;
  if (unpinned)
    // From the source, which the driver stages before it returns.
    return cudaMemcpyAsync(dst, src, size_t(n), cudaMemcpyHostToDevice,
                           stream);
  Slot &s = slots[next];
  next = (next + 1) % kSlots;
  // The slot's previous copy has read it (at once unless the host is a
  // whole ring of inputs ahead of the device).
  if (s.inFlight) {
    if (cudaError_t e = cudaEventSynchronize(s.free); e != cudaSuccess)
      return e;
    s.inFlight = false;
  }
  std::memcpy(s.pinned, src, size_t(n));
  if (cudaError_t e = cudaMemcpyAsync(dst, s.pinned, size_t(n),
                                      cudaMemcpyHostToDevice, stream);
      e != cudaSuccess)
    return e;
  if (cudaError_t e = cudaEventRecord(s.free, stream); e != cudaSuccess) {
    // No event behind the copy: wait for it here, so that the slot is
    // never rewritten under it.
    cudaStreamSynchronize(stream);
    return e;
  }
  s.inFlight = true;
  return cudaSuccess;
}

} // namespace pipert::cuda
