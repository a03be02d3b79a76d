//===- PollWait.h - waiting for a device that another rank may abandon -*- C++ -*-===//
//
// cudaStreamSynchronize cannot be interrupted. In a cuda-local run over
// several GPUs a rank's stream may wait on an event of another device;
// when that device faults, the event never completes and a host thread
// blocked on the stream would wait for ever, although the run is over.
// So where a run can be abandoned, the host polls the stream instead
// (cudaStreamQuery, a microsecond) and gives up once the run is abandoned:
// it spins (yielding) for the first 100 microseconds, the common case of a
// short wait, then sleeps in steps growing to 200 microseconds, so a long
// wait costs little processor time and ends at most 200 microseconds late.
// Host code only; the tests drive it with a fake query.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CUDA_POLLWAIT_H
#define PIPERT_KERNELS_CUDA_POLLWAIT_H

#include <atomic>
#include <chrono>
#include <thread>

namespace pipert::cuda {

/// What one query of the device says.
enum class Polled { Done, NotReady, Failed };

/// Polls `query` (returning a Polled) until it is no longer NotReady, or
/// `abandoned` (may be null: never) is set; the last answer, NotReady when
/// abandoned.
template <typename Query>
Polled pollUntilDone(Query &&query, const std::atomic<bool> *abandoned) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  std::chrono::microseconds nap(10);
  for (;;) {
    Polled p = query();
    if (p != Polled::NotReady)
      return p;
    if (abandoned && abandoned->load(std::memory_order_acquire))
      return Polled::NotReady;
    if (Clock::now() - start < std::chrono::microseconds(100)) {
      std::this_thread::yield();
      continue;
    }
    std::this_thread::sleep_for(nap);
    if (nap < std::chrono::microseconds(200))
      nap *= 2;
  }
}

} // namespace pipert::cuda

#endif // PIPERT_KERNELS_CUDA_POLLWAIT_H
