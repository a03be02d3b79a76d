//===- HostInputs.cpp - a rank's host-to-device inputs, from pinned slots -===//

#include "kernels/cuda/HostInputs.h"

#include <algorithm>
#include <cstring>

namespace pipert::cuda {

HostInputs::~HostInputs() {
  for (Slot &s : slots) {
    if (s.free) {
      cudaEventSynchronize(s.free);
      cudaEventDestroy(s.free);
    }
    if (s.pinned)
      cudaFreeHost(s.pinned);
  }
}

cudaError_t HostInputs::copy(void *dst, const void *src, int64_t n,
                             cudaStream_t stream) {
  if (n <= 0)
    return cudaSuccess;
  Slot &s = slots[next];
  next = (next + 1) % kSlots;
  // The slot's previous copy has read it (at once unless the host is a
  // whole ring of inputs ahead of the device).
  if (s.inFlight) {
    if (cudaError_t e = cudaEventSynchronize(s.free); e != cudaSuccess)
      return e;
    s.inFlight = false;
  }
  if (!s.free)
    if (cudaError_t e = cudaEventCreateWithFlags(&s.free,
                                                 cudaEventDisableTiming);
        e != cudaSuccess)
      return e;
  if (s.capacity < n) {
    if (s.pinned)
      cudaFreeHost(s.pinned);
    s.pinned = nullptr;
    s.capacity = 0;
    const int64_t bytes = std::max<int64_t>(n, 4096);
    if (cudaMallocHost(&s.pinned, size_t(bytes)) != cudaSuccess) {
      // No pinned memory: from the source, which the driver stages before
      // it returns.
      cudaGetLastError();
      s.pinned = nullptr;
      return cudaMemcpyAsync(dst, src, size_t(n), cudaMemcpyHostToDevice,
                             stream);
    }
    s.capacity = bytes;
  }
  std::memcpy(s.pinned, src, size_t(n));
  if (cudaError_t e = cudaMemcpyAsync(dst, s.pinned, size_t(n),
                                      cudaMemcpyHostToDevice, stream);
      e != cudaSuccess)
    return e;
  if (cudaError_t e = cudaEventRecord(s.free, stream); e != cudaSuccess)
    return e;
  s.inFlight = true;
  return cudaSuccess;
}

} // namespace pipert::cuda
