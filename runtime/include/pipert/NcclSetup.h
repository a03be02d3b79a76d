//===- NcclSetup.h - what the nccl transport is made from -------*- C++ -*-===//
//
// The runner (runtime/runner/NcclRun.cpp) knows the plan, the launcher and
// the options; the cuda target (runtime/kernels/cuda/Nccl.cpp) knows the
// device and NCCL. This is what passes between them through
// PlanTarget::createNccl (docs/NCCL.md).
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_NCCLSETUP_H
#define PIPERT_NCCLSETUP_H

#include "pipert/Rendezvous.h"
#include "pipert/Stream.h"

#include <chrono>
#include <string>
#include <vector>

namespace pipert {

struct NcclSetup {
  /// This process's rank's stream, whose table holds its communicators
  /// (the compiler's, CommLayout.h), and the manifest's groups.
  const Stream *stream = nullptr;
  const std::vector<std::vector<int32_t>> *groups = nullptr;
  /// This process's place in the job; its rank is the plan rank it runs.
  LaunchEnv env;
  /// chooseRendezvous's answer, the key of this job (the launcher's job
  /// id; "" without one) and the plan's id, which every process of the
  /// job must share (Rendezvous.h's shareBlob).
  std::string rendezvous, jobKey, planId;
  /// The bound on the rendezvous and the communicators' creation.
  std::chrono::milliseconds timeout{60000};
  /// An operation unfinished this long names its peer and ends the run.
  std::chrono::milliseconds watchdog{20000};
  /// Prints what the transport is doing (rank 0: the layout, the library).
  bool verbose = false;
};

} // namespace pipert

#endif // PIPERT_NCCLSETUP_H
