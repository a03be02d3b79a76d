//===- Ceilings.h - the machine's measured ceilings (--profile) -*- C++ -*-===//
//
// pipec-plan --profile sets every kernel's time beside the time its floor
// (FLOPs and bytes, compiler/analysis/KernelCosts.h) takes at the ceilings
// of the machine it runs on, measured in the same run (never a constant):
// here the cpu's, with the team of threads a rank gets.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CPU_CEILINGS_H
#define PIPERT_KERNELS_CPU_CEILINGS_H

#include <cstdint>

namespace pipert::cpu {

/// The best of a few runs of pipec's float GEMM at 1024^3 (the matmul
/// kernels' GEMM) on `threads` OpenMP threads, in FLOP/s, and of a copy of
/// 256 MiB over the same threads, in bytes read and written per second.
/// False with why in `error` (of `errorBytes`).
bool measureCeilings(int32_t threads, double *flopsPerSecond,
                     double *bytesPerSecond, char *error, int64_t errorBytes);

} // namespace pipert::cpu

#endif // PIPERT_KERNELS_CPU_CEILINGS_H
