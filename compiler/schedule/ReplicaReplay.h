//===- ReplicaReplay.h - D replicas replayed one at a time --------*- C++ -*-===//
//
// The whole data-parallel job replayed without holding D copies of the
// streams (issue 21, item 2): replicas differ only in their jitter and
// stragglers and meet only in their data-parallel collectives, so each is
// run alone on the abstract machine with those collectives completing no
// earlier than the latest join of any replica (Costs::notBefore). Joins
// can only move later as that bound does, so starting from no bound and
// repeating until the latest joins stop moving reaches the least fixed
// point: exactly the step the machine gives the full D-replica streams
// (test/unit/schedule/ReplicaReplayTest.cpp checks it against them). One
// replica's streams in memory, D machine runs a round, a few rounds.
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_COMPILER_SCHEDULE_REPLICAREPLAY_H
#define PIPEC_COMPILER_SCHEDULE_REPLICAREPLAY_H

#include "compiler/schedule/Machine.h"
#include "compiler/schedule/Schedule.h"

#include <cstdint>
#include <vector>

namespace pipec::schedule {

/// A rank slowed down: replica, stage and the factor on its compute.
struct Straggler {
  int64_t replica = 0;
  int32_t stage = 0;
  double factor = 1;
};

/// A rank that fails: replica, stage and the time into the step.
struct Failure {
  int64_t replica = 0;
  int32_t stage = 0;
  double time = 0;
};

/// With failures: the ranks that did not finish the step (failed, or
/// stalled behind a failure), the first and last time one stopped, and
/// the last end of a rank that did finish (0: none did).
struct Stops {
  int64_t stopped = 0;
  double firstStop = 0, lastStop = 0, lastFinish = 0;
  /// Counts ranks [first, first + count) of a machine run.
  void add(const MachineResult &r, int64_t first, int64_t count);
};

struct ReplicaReplayResult : Stops {
  Verdict verdict = Verdict::Completed;
  std::string message;
  double stepTime = 0;      ///< the slowest replica's end
  double fastestReplica = 0; ///< the fastest replica's end
  int32_t rounds = 0;       ///< machine passes over all replicas
  int64_t instructions = 0; ///< executed, over all rounds
};

/// Replays `replicas` copies of `twoReplicas` (schedule::replicate(pipeline,
/// 2, ...): its data-parallel groups tell which collectives join the
/// replicas) with `costs` (jitter drawn per global rank). Costs'
/// collective times for the data-parallel groups are those of all the
/// replicas' collective (the caller prices it for D members). With
/// `failures`, a collective some replica never joins never completes
/// (Costs::failAt, Costs::notBefore): the verdict is Failed and the result
/// says who stopped when, exactly as the full machine's.
ReplicaReplayResult replayReplicas(const Schedule &twoReplicas,
                                   int64_t replicas, const Costs &costs,
                                   const std::vector<Straggler> &stragglers,
                                   const std::vector<Failure> &failures = {});

} // namespace pipec::schedule

#endif // PIPEC_COMPILER_SCHEDULE_REPLICAREPLAY_H
