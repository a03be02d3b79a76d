//===- CostModel.h - FLOPs and bytes to seconds, per target ------*- C++ -*-===//
//
// The partitioner balances time, not FLOPs: an op takes the longer of its
// arithmetic (FLOPs over the target's rate) and its memory traffic (bytes
// over the target's bandwidth), plus a fixed launch overhead, a roofline.
// Messages between ranks take their bytes over the link bandwidth plus a
// latency. Plain C++17, no MLIR, so it can be unit-tested.
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_COMPILER_PLAN_COSTMODEL_H
#define PIPEC_COMPILER_PLAN_COSTMODEL_H

#include <cstdint>
#include <string>

namespace pipec::plan {

/// The rates of one target (one rank's device and its link to a neighbour).
struct Rates {
  std::string name;        ///< "cpu" or "cuda"
  double flopsPerSec = 0;  ///< sustained f32 arithmetic rate
  double bytesPerSec = 0;  ///< sustained memory bandwidth
  double opOverheadSec = 0; ///< fixed cost of one kernel call
  double linkBytesPerSec = 0; ///< point-to-point bandwidth between ranks
  double linkLatencySec = 0;  ///< fixed cost of one message
  /// A rank's device memory, the default memory cap (`pipec compile` and
  /// `pipec plan` --memory-cap); 0: none (the cpu target: host memory).
  int64_t memoryBytes = 0;
};

/// The rates of a named target; returns false for an unknown name.
bool ratesForTarget(const std::string &name, Rates &rates);
/// The workspace a rank of the target holds besides its chunks' scratch
/// (the cuda target's cuBLASLt workspace, pipert::kCudaWorkspaceBytes;
/// 0 on the cpu), which the exact memory plan places in the arena.
int64_t deviceWorkspaceFor(const std::string &target);
/// The target names, comma separated, for help and errors.
const char *allTargetNames();

/// Roofline time of one kernel: max(flops / rate, bytes / bandwidth) plus
/// the launch overhead. Zero work (a view such as reshape) costs nothing.
double kernelTime(const Rates &rates, double flops, double bytes);
/// Time to move one message of `bytes` between ranks (0 for no bytes).
double messageTime(const Rates &rates, double bytes);

} // namespace pipec::plan

#endif // PIPEC_COMPILER_PLAN_COSTMODEL_H
