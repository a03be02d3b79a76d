//===- VariedReplay.h - every replica replayed, with jitter and stragglers -*- C++ -*-===//
//
// pipec-sim --cluster ... --jitter SIGMA --stragglers N,FACTOR: the step
// of the whole data-parallel job when replicas are not identical. Plans
// whose streams hold every replica run on the abstract machine at once;
// two replicas standing for D (the symmetry mode) run replica by replica
// (schedule::replayReplicas: one replica's streams in memory, the full
// replay's step exactly). --fail RANK@SECONDS stops ranks mid-step: who
// stalls behind them, and when (Costs::failAt).
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_TOOLS_PIPEC_SIM_VARIEDREPLAY_H
#define PIPEC_TOOLS_PIPEC_SIM_VARIEDREPLAY_H

#include "compiler/schedule/Machine.h"
#include "compiler/schedule/ReplicaReplay.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace pipec::sim {

/// The replay's figures; with --fail, who stopped when (schedule::Stops).
struct VariedReplay : schedule::Stops {
  bool ran = false;
  double stepTime = 0, fastestReplica = 0, wallSeconds = 0;
  int32_t rounds = 0;       ///< passes over the replicas (1: all at once)
  int64_t instructions = 0; ///< executed over all passes
  int64_t replicas = 0, stragglers = 0;
  double jitter = 0, factor = 1;
  /// --fail: how many ranks fail, and when the first does.
  int64_t failures = 0;
  double firstFailure = 0;
  /// When every rank has exited under a `watchdog`-second watchdog: a
  /// stopped rank's fires after its endless wait began and not before the
  /// failure made it endless; a rank that finished the step stops at the
  /// next one's first exchange with a stopped rank, after its finish.
  double exitedBy(double watchdog) const {
    return std::max({lastStop, lastFinish, firstFailure}) + watchdog;
  }
};

/// A rank that fails: its global rank (replica x stages + stage) and the
/// seconds into the step.
struct RankFailure {
  int64_t rank = 0;
  double time = 0;
};

/// Replays `s` (priced by `costs`) as `replicas` replicas with the jitter
/// and `count` stragglers drawn from `seed`. "" or why not.
std::string replayVaried(const schedule::Schedule &s,
                         const schedule::Costs &costs, int64_t replicas,
                         double jitter, int64_t count, double factor,
                         uint64_t seed, VariedReplay &out,
                         const std::vector<RankFailure> &fail = {});

} // namespace pipec::sim

#endif // PIPEC_TOOLS_PIPEC_SIM_VARIEDREPLAY_H
