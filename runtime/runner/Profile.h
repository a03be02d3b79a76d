//===- Profile.h - pipec-plan --profile: kernels against the machine -*- C++ -*-===//
//
// The discipline of issue 19 for every kernel change: count the floor
// (FLOPs and bytes, which the compiler wrote beside each kernel
// instantiation: compiler/analysis/KernelCosts.h), measure the ceilings of
// the machine in the same run (the target's GEMM, a large copy), time each
// kernel (--trace-kernels: wall clock around the cpu wrappers, CUDA events
// around the cuda calls), and print them side by side: which kernels take
// the step, and how far each is from its floor.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_RUNNER_PROFILE_H
#define PIPERT_RUNNER_PROFILE_H

#include "pipert/Executor.h"
#include "pipert/Manifest.h"

#include <string>
#include <vector>

namespace pipecrun {

/// What the machine showed before the first step.
struct Ceilings {
  double flopsPerSecond = 0, bytesPerSecond = 0;
  int32_t threads = 0;
};

/// One kernel instantiation over every rank and timed step.
struct ProfileRow {
  std::string name;  ///< the instantiation (kernel_times.json's name)
  std::string label; ///< "kernel shape" for people
  double seconds = 0;
  int64_t calls = 0;
  double flops = 0, bytes = 0; ///< per call
};

/// Measures the ceilings of this machine with the plan's target (cpu: a
/// rank's thread team, `cores` shared by `ranks`); "" or why not.
std::string measureCeilings(int32_t cores, int32_t ranks, Ceilings &out);

/// The rows of `result` (every rank summed), by time, largest first.
std::vector<ProfileRow> profileRows(const pipert::RunResult &result,
                                    const char *const *names,
                                    const double *costs);

/// "matmul_forward 256x64x192x0" from "pipec_k_matmul_forward_256x64x192x0_1a2b3c4d".
std::string kernelLabel(const std::string &name);

/// Prints the table to stdout; with `jsonPath`, writes it there too (""
/// or why not).
std::string reportProfile(const std::vector<ProfileRow> &rows,
                          const Ceilings &ceilings,
                          const pipert::RunResult &result,
                          const std::string &jsonPath);

} // namespace pipecrun

#endif // PIPERT_RUNNER_PROFILE_H
