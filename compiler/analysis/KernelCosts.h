//===- KernelCosts.h - the floor of one kernel.call: FLOPs and bytes -*- C++ -*-===//
//
// What a kernel call must do at the least, for the profile of a run
// (pipec-plan --profile prints each kernel's time beside the time these
// figures take at the card's measured ceilings; docs/PERFORMANCE.md):
// the tensor-core work of the GEMMs and of attention, and every byte the
// call must read or write once. The other kernels' arithmetic is a few
// operations per byte, never their bound on a GPU or a vector CPU, so it
// is not counted: their floor is their bytes.
//
//===----------------------------------------------------------------------===//
#ifndef PIPEC_COMPILER_ANALYSIS_KERNELCOSTS_H
#define PIPEC_COMPILER_ANALYSIS_KERNELCOSTS_H

#include "dialects/kernel/KernelOps.h"

#include <cstdint>

namespace pipec {

/// FLOPs (multiply and add count two) and bytes of one call.
struct KernelCost {
  double flops = 0;
  double bytes = 0;
};

/// The floor of `call`: matmuls 2 m k n; causal or full attention 4 d per
/// (query, key) pair seen and head forward, 10 d backward (p recomputed,
/// dp, dq, dk, dv); bytes of its operands and results as typed (the
/// storage types of the target), plus its parameter state read and
/// written (accumulators, masters, moments; a working copy written), but
/// only the table rows an embedding gathers or scatters.
KernelCost kernelCallCost(kernel::CallOp call);

/// (query, key) pairs attention computes: every pair, or with `causal`
/// each query's keys up to its own position (queries aligned to the last
/// keys when seqKV > seqQ).
double attentionPairs(int64_t seqQ, int64_t seqKV, bool causal);

} // namespace pipec

#endif // PIPEC_COMPILER_ANALYSIS_KERNELCOSTS_H
