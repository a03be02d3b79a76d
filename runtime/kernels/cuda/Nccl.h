//===- Nccl.h - the cuda target's nccl transport ----------------*- C++ -*-===//
//
// PlanTarget::createNccl: the transport of this process's rank, one
// process per GPU, over NCCL (Nccl.cpp, docs/NCCL.md).
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CUDA_NCCL_H
#define PIPERT_KERNELS_CUDA_NCCL_H

#include "pipert/NcclSetup.h"
#include "pipert/Transport.h"

#include <string>

namespace pipert::cuda {

/// The transport, its communicators made (collective: every process of the
/// job calls it); null with why in `error`. `rankState` is createRank's.
pipert::Transport *createNccl(const NcclSetup &setup, void *rankState,
                              char *error, int64_t errorBytes);

/// pipec-plan --step-graph under --transport nccl: the rank's whole step,
/// its NCCL calls included, captured once and replayed (StepGraph.h); ""
/// or why not.
std::string enableNcclStepGraphs(pipert::Transport *transport, int64_t from);

} // namespace pipert::cuda

#endif // PIPERT_KERNELS_CUDA_NCCL_H
