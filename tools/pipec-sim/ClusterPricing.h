//===- ClusterPricing.h - a plan's streams priced on a cluster ---*- C++ -*-===//
//
// pipec-sim --cluster (docs/SIMULATION.md, "Clusters"): every chunk's F, B
// and W from the plan folder's work.json at the cluster GPU's rates, each
// rank's optimizer step from its parameter bytes, each point-to-point
// message and collective from the GPUs its ranks are placed on. With
// `replicas` above the plan's own, the data-parallel groups are priced as
// if they had that many members (the symmetry mode: identical replicas
// replay identically, so two stand for all of them; a plan of one replica
// gets its second from the schedule library, as the compiler would).
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_TOOLS_PIPEC_SIM_CLUSTERPRICING_H
#define PIPEC_TOOLS_PIPEC_SIM_CLUSTERPRICING_H

#include "compiler/cluster/Cluster.h"
#include "compiler/schedule/Machine.h"
#include "pipert/Manifest.h"
#include "pipert/Stream.h"

#include <string>
#include <vector>

namespace pipec::sim {

struct ClusterRun {
  cluster::Cluster cluster;
  cluster::Placement placement = cluster::Placement::PipelineMajor;
  /// The data-parallel replicas priced (the plan's own when 0).
  int64_t replicas = 0;
  /// Tensor parallelism of each rank over `tp` GPUs of one NVLink domain
  /// (a model, docs/SIMULATION.md: every chunk's work split tp ways plus
  /// two all-reduces of the activations a layer in F and two in B; messages,
  /// data-parallel collectives and the optimizer on a tp-th each).
  int32_t tp = 1;
};

/// What the pricing found, for the report.
struct ClusterPriced {
  int64_t gpus = 0;               ///< stages x replicas priced
  double actMessage = 0, gradMessage = 0; ///< the slowest of each kind
  double dataParallel = 0;        ///< the slowest data-parallel collective
  double optimizer = 0;           ///< the slowest rank's step
  int32_t overMemory = -1;        ///< a rank whose peak exceeds the GPU's
};

/// Fills `costs` for the plan in `dir`, whose streams `s` holds. With
/// run.replicas > 1 and a plan of one replica, `s` becomes two replicas
/// first (schedule::replicate, as the compiler makes them: each chunk's
/// gradients all-reduced after its last W, ZeRO-1's collectives when the
/// plan has --zero), their collectives' bytes from work.json. "" or what
/// is wrong (no work.json, a plan too large for the cluster).
std::string priceOnCluster(const std::string &dir, const pipert::Manifest &m,
                           const std::vector<pipert::Stream> &streams,
                           const ClusterRun &run, schedule::Schedule &s,
                           schedule::Costs &costs, ClusterPriced &priced);

/// A plan replayed on a cluster: what pipec-sim --search ranks.
struct ClusterReplay {
  double stepTime = 0, bubble = 0;
  double tokensPerStep = 0, tokensPerSec = 0, mfu = 0;
  int64_t peakBytes = 0; ///< the largest rank's (the memory plan's)
  ClusterPriced priced;
};

/// Loads the plan folder `dir`, prices it on `run` and replays it. "" or
/// why not (a plan that does not complete names its deadlock).
std::string replayOnCluster(const std::string &dir, const ClusterRun &run,
                            ClusterReplay &out);

/// The cluster's figures and, for every published measurement its
/// collectives were fitted to, the modelled time and the signed error
/// (pipec-sim --cluster F alone).
std::string describeCluster(const cluster::Cluster &c);

} // namespace pipec::sim

#endif // PIPEC_TOOLS_PIPEC_SIM_CLUSTERPRICING_H
