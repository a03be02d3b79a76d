//===- Machine.h - the abstract machine that runs all streams ---*- C++ -*-===//
//
// Executes every rank's stream together under pipec's communication model
// (docs/SCHEDULES.md): posts never block; a send completes when its recv is
// posted and a recv when its send is posted (rendezvous); messages match in
// posting order per (sender, receiver, kind); a collective completes when
// every member of its group joined (the k-th collective of a group on each
// member meet; each group is its own channel, and a rank outside the group
// posting one is malformed); point-to-point and collectives are separate
// channels.
//
// Every blocking condition, once true, stays true and matching is fixed by
// posting order, so all executions reach the same final state: one run that
// completes proves that no interleaving deadlocks, and one that gets stuck
// shows a deadlock every execution reaches. The same run times the schedule
// with per-chunk costs, which gives step time and bubble fraction.
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_COMPILER_SCHEDULE_MACHINE_H
#define PIPEC_COMPILER_SCHEDULE_MACHINE_H

#include "compiler/schedule/Schedule.h"

#include <string>
#include <vector>

namespace pipec::schedule {

/// Time per chunk and phase (the partitioner fills real figures), plus the
/// cost of each message, collective and optimizer step (0 by default:
/// communication is free unless given a cost).
struct Costs {
  std::vector<double> f, b, w; ///< indexed by chunk
  double actComm = 0, gradComm = 0, allReduce = 0, optStep = 0;
  /// Per chunk (the chunk its send and recv name), a point-to-point
  /// message's time where it is given (pipec-sim --link: alpha plus its
  /// bytes over the bandwidth); actComm and gradComm elsewhere.
  std::vector<double> actCommOf, gradCommOf;
  /// Per group and bucket, a collective's time where it is given (a
  /// data-parallel chunk's gradients: Replicate.h); allReduce elsewhere.
  std::vector<std::vector<double>> collective;
  /// Per group and bucket, the earliest a collective may complete before
  /// its own time is added: members outside this run (other replicas,
  /// ReplicaReplay.h) joined then. Empty or 0: no bound.
  std::vector<std::vector<double>> notBefore;
  /// Per rank, a factor on its compute spans (a straggler: 1.3 is 30%
  /// slower); empty: 1.
  std::vector<double> rankSlowdown;
  /// Per-instruction jitter: each compute span's cost times
  /// exp(sigma z - sigma^2 / 2), z a standard normal drawn from a hash of
  /// (jitterSeed, jitterRankBase + rank, the instruction's index), so a
  /// run and its replica-by-replica replay draw alike. 0: none.
  double jitterSigma = 0;
  uint64_t jitterSeed = 0;
  int64_t jitterRankBase = 0;
  /// Per rank, when it fails (pipec-sim --fail): from then on it executes
  /// and posts nothing, a compute span in progress is cut there, and the
  /// ranks that need it stall. Empty or infinite: never. A Costs::notBefore
  /// that is infinite is a collective a member outside this run never
  /// joins (a failed replica): it never completes.
  std::vector<double> failAt;
  /// The same F, B, W for every chunk.
  static Costs uniform(int32_t chunks, double f, double b, double w);
};

/// The factor Costs::jitterSigma puts on one compute span.
double jitterFactor(double sigma, uint64_t seed, int64_t rank, int64_t instr);

/// How a run of the machine ended.
enum class Verdict : uint8_t {
  Completed, ///< every rank reached the end of its stream
  Deadlock,  ///< some rank waits forever
  Mismatch,  ///< a send and the recv it matched disagree on the message
  Malformed, ///< a wait names a request never posted, or a field is invalid
  Failed     ///< a rank failed (Costs::failAt); the others stalled or ended
};
const char *verdictName(Verdict verdict);

/// One executed compute instruction, or a collective's own time (op
/// AllReduce, chunk = the group, mb = the bucket), for pictures.
struct Span {
  int32_t rank;
  Op op;
  int32_t chunk, mb;
  double start, end;
  /// The span whose end this one's start waited for (index into
  /// MachineResult::spans; -1: none, the path starts here, at 0 or after
  /// messages from a rank that had computed nothing yet): the rank's own
  /// previous span, or, when a message or a collective held the rank
  /// longer, the span that ended last before the message was sent or the
  /// collective's last member joined. Following it from the last span is
  /// the step's critical path.
  int32_t pred = -1;
};

/// What the machine found and measured.
struct MachineResult {
  Verdict verdict = Verdict::Completed;
  std::string message;        ///< names the ranks and instructions involved
  double stepTime = 0;        ///< when the last rank finished
  double bubbleFraction = 0;  ///< idle time / (ranks x step time)
  std::vector<double> busy;   ///< compute time per rank
  /// End time per rank; for a rank that did not reach its stream's end, the
  /// time it stopped (failed, or began the wait that never ended).
  std::vector<double> finish;
  /// Per rank: 1 when it did not reach its stream's end.
  std::vector<uint8_t> stopped;
  std::vector<Span> spans;    ///< compute spans, if recorded
  /// Every collective instance: its group, bucket and when its last member
  /// joined (before Costs::notBefore and its own time).
  struct Joined {
    int32_t group, bucket;
    double time;
  };
  std::vector<Joined> joins;
};

/// Runs all streams together. Costs must hold one entry per chunk.
MachineResult runMachine(const Schedule &schedule, const Costs &costs,
                         bool recordSpans = false);

/// The step's critical path of a recorded run: indices into `r.spans` from
/// the first span to the one that ends last, each the `pred` of the next.
/// Empty when no span was recorded.
std::vector<int32_t> criticalPath(const MachineResult &r);

} // namespace pipec::schedule

#endif // PIPEC_COMPILER_SCHEDULE_MACHINE_H
