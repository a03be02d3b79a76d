//===- CostModel.cpp - per-target rates and the roofline -----------------===//

#include "compiler/plan/CostModel.h"

#include "pipert/PlanAbi.h"

#include <algorithm>

namespace pipec::plan {

// The figures are sustained rates, not peaks: a CPU core pair running the
// OpenBLAS-backed kernels of runtime/kernels/cpu, and an H100 running f32
// GEMMs on TF32 tensor cores with NVLink between ranks. Only ratios matter
// for balance; absolute figures only scale the reported times.
int64_t deviceWorkspaceFor(const std::string &target) {
  return target == "cuda" ? pipert::kCudaWorkspaceBytes : 0;
}

bool ratesForTarget(const std::string &name, Rates &rates) {
  if (name == "cpu") {
    rates = {"cpu", 50e9, 20e9, 1e-6, 10e9, 5e-6};
    return true;
  }
  if (name == "cuda") {
    // An H100's 80 GB, less what the CUDA context and the runtime take:
    // about 78 GiB are free to a process (the H200's 141 GB take
    // --memory-cap 139GiB). cuBLASLt's workspace is in the arena the cap
    // bounds (ValueLayout.cpp).
    rates = {"cuda", 300e12, 2.5e12, 5e-6, 150e9, 10e-6,
             int64_t(78) << 30};
    return true;
  }
  return false;
}

const char *allTargetNames() { return "cpu, cuda"; }

double kernelTime(const Rates &rates, double flops, double bytes) {
  if (flops <= 0 && bytes <= 0)
    return 0;
  return std::max(flops / rates.flopsPerSec, bytes / rates.bytesPerSec) +
         rates.opOverheadSec;
}

double messageTime(const Rates &rates, double bytes) {
  if (bytes <= 0)
    return 0;
  return bytes / rates.linkBytesPerSec + rates.linkLatencySec;
}

} // namespace pipec::plan
