//===- FsdpTp.h - JAX's strategy at scale, as a documented model --*- C++ -*-===//
//
// What the comparison of issue 21 (item 5) holds pipec's plans against: the
// strategy JAX uses at scale (MaxText and the like): fully sharded data
// parallelism (ZeRO-3: parameters, gradients and optimizer state sharded
// over the data-parallel ranks, each layer's parameters all-gathered
// before its forward and again before its backward, its gradients
// reduce-scattered after) with tensor parallelism of degree t inside the
// NVLink domain (sequence parallel: every op's work split t ways, four
// activation collectives a layer), no pipeline. A model, not a replay:
//
//   compute   C = work(n sequences) / t at the GPU's rooflines (Cluster.h)
//   TP        T = 4 L x allreduce(t GPUs of one domain, n x seq x hidden x 2)
//   FSDP      F = 2 x allgather(bf16 layer shards) + reducescatter(fp32
//               gradients), over f = N / t GPUs, t of them a domain apart
//   step      max(C + T, F) + F / L (the first layer's gather is exposed)
//             + AdamW on a 1/N share of the state
//
// with n = floor(global sequences / f) per TP group (every group the same
// whole number, as pipec's replicas get the same micro-batches; the step's
// tokens are n x f sequences'). It fits when the sharded
// state (16 bytes a parameter over N) plus the activations of the n
// sequences (34 bytes x seq x hidden a layer over t, flash attention) fit
// the GPU's memory; otherwise with full recomputation (the forward again:
// compute x 4/3, 2 bytes x seq x hidden a layer kept), or not at all.
// Plain C++17.
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_COMPILER_CLUSTER_FSDPTP_H
#define PIPEC_COMPILER_CLUSTER_FSDPTP_H

#include "compiler/cluster/Cluster.h"

#include <cstdint>
#include <string>
#include <vector>

namespace pipec::cluster {

/// The model as the FSDP + TP model needs it: one sequence's F + B + W
/// work through the whole model (an S = 1 plan's work.json, micro-batch of
/// one sequence), its parameters and shape.
struct ModelWork {
  plan::Work perSequence;
  double paramBytes = 0;  ///< fp32 masters
  double copyBytes = 0;   ///< bf16 working copies
  int32_t layers = 0;
  int64_t seq = 0, hidden = 0;
  double flopsPerSequence = 0; ///< model FLOPs (pipec stats' 3 x forward)
};

struct FsdpTpResult {
  bool fits = false;
  bool recompute = false;
  int32_t tp = 0;             ///< tensor-parallel degree
  int64_t fsdp = 0;           ///< data-parallel (sharding) degree
  double sequencesPerGroup = 0; ///< whole: floor(sequences / fsdp)
  double sequences = 0;         ///< a step's: sequencesPerGroup x fsdp
  double compute = 0, tensorParallel = 0, fsdpComm = 0, optimizer = 0;
  double stepTime = 0, mfu = 0;
  double memoryBytes = 0;     ///< per GPU
  std::string why;            ///< when it does not fit
};

/// The step of `gpus` GPUs at tensor-parallel degree `tp` (a divisor of
/// the NVLink domain) and at most `sequences` a step.
FsdpTpResult fsdpTpStep(const Cluster &c, const ModelWork &m, int64_t gpus,
                        int32_t tp, double sequences);

/// The tensor-parallel degrees the model tries: the powers of two that
/// divide the NVLink domain, and the domain itself.
std::vector<int32_t> tensorParallelDegrees(const Cluster &c);

/// The degree with the most sequences a second among the powers of two
/// up to the domain (and the domain itself) that fit; fits == false when
/// none does.
FsdpTpResult bestFsdpTp(const Cluster &c, const ModelWork &m, int64_t gpus,
                        double sequences);

} // namespace pipec::cluster

#endif // PIPEC_COMPILER_CLUSTER_FSDPTP_H
