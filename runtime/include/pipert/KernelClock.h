//===- KernelClock.h - per-kernel times of a rank (--trace-kernels) -*- C++ -*-===//
//
// `pipec-run --trace-kernels` times every call of every kernel
// instantiation of a cpu plan on the warm steps (all but the first): each
// wrapper of the plan's kernels.cpp opens a KernelScope with its index in
// the plan's kernel table, and the executor points the rank thread's table
// at that rank's KernelTimes while it runs a timed step. Off, a scope costs
// one thread-local load and a branch. The times go to kernel_times.json
// beside trace.json; pipec-sim --calibrate reads them (docs/SIMULATION.md).
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELCLOCK_H
#define PIPERT_KERNELCLOCK_H

#include <chrono>
#include <cstdint>
#include <vector>

namespace pipert {

/// One rank's seconds and calls per kernel instantiation (indexed as the
/// plan's kernel table).
struct KernelTimes {
  std::vector<double> seconds;
  std::vector<int64_t> calls;
};

/// The calling thread's table while its rank times kernels; null otherwise.
extern thread_local KernelTimes *threadKernelTimes;

/// Whether the calling thread's rank is in a step the executor traces
/// (its first --trace-steps): a device's kernels then finish within their
/// instruction (cuda's endFunction waits), so the trace's spans, busy times
/// and the calibration pipec-sim takes from them are the kernels' own.
extern thread_local bool threadStepTraced;

/// Times the enclosing kernel call into the thread's table, if any.
class KernelScope {
public:
  explicit KernelScope(int32_t id) : times(threadKernelTimes), id(id) {
    if (times)
      start = std::chrono::steady_clock::now();
  }
  ~KernelScope() {
    if (!times || size_t(id) >= times->seconds.size())
      return;
    times->seconds[size_t(id)] +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    ++times->calls[size_t(id)];
  }
  KernelScope(const KernelScope &) = delete;
  KernelScope &operator=(const KernelScope &) = delete;

private:
  KernelTimes *times;
  int32_t id;
  std::chrono::steady_clock::time_point start;
};

} // namespace pipert

#endif // PIPERT_KERNELCLOCK_H
