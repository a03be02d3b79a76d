//===- Replicate.h - data-parallel replicas of a pipeline's streams -*- C++ -*-===//
//
// D replicas of one pipeline of S ranks: rank `replica * S + stage` runs the
// stage's stream, its peers moved into its replica. Each replica keeps its
// own copies of the pipeline's collective groups (group 0, the gradient
// norm, and the tied parameters'), and every stage gets one more group, its
// D ranks, over which each chunk's gradient accumulators are all-reduced
// (bucket = the chunk) right after the chunk's last W of the step and the
// posts that follow it: as soon as they are final, before the tied groups
// and the norm, which then see the replicas' sum. The posts go first
// because a collective blocks its rank: in 1F1B a rank posts the last
// micro-batch's gradient send upstream after its W, and an all-reduce
// ahead of it would hold every upstream rank's last backward, one stage
// after another (pipec-sim --cluster found it: 96 stages of GPT-3 175B
// spent 30 of a 41 s step in all-reduces queued behind each other).
//
// Group numbering, with G the pipeline's groups (group 0 and the tied):
// replica r's copy of group g is r * G + g (replica 0 keeps the pipeline's
// numbers), and the data-parallel group of stage s is D * G + s.
//
// ZeRO-1 (`zero`, docs/NUMERICS.md): each chunk's accumulators are
// reduce-scattered instead (each replica gets the sum of its own part,
// pipert/ZeroShard.h); right after group 0's all-reduce, whose operand now
// holds each replica's partial sums of squares, the stage's replicas
// all-reduce it too (bucket zeroNormBucket), so every rank sees the whole
// norm; after opt_step, each replica's updated parts of the parameters are
// all-gathered (bucket zeroWeightsBucket) on every stage with gradients.
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_COMPILER_SCHEDULE_REPLICATE_H
#define PIPEC_COMPILER_SCHEDULE_REPLICATE_H

#include "compiler/schedule/Schedule.h"

#include <cstdint>
#include <vector>

namespace pipec::schedule {

/// Replica r's number of the pipeline's group g (G groups per pipeline).
inline int32_t replicaGroup(int32_t g, int32_t replica, int32_t G) {
  return replica * G + g;
}
/// The data-parallel group of `stage` among D replicas of G groups each.
inline int32_t dataParallelGroup(int32_t stage, int32_t replicas, int32_t G) {
  return replicas * G + stage;
}

/// The data-parallel buckets ZeRO-1 adds after the C chunks' buckets: the
/// norm's partial sums, and the updated parameters.
inline int32_t zeroNormBucket(int32_t chunks) { return chunks; }
inline int32_t zeroWeightsBucket(int32_t chunks) { return chunks + 1; }

/// The group table of D replicas of a pipeline of S ranks whose groups
/// are `pipeline` (group 0 first): replica 0's, replica 1's, ..., then the
/// data-parallel group of each stage.
std::vector<std::vector<int32_t>>
replicateGroups(const std::vector<std::vector<int32_t>> &pipeline, int32_t S,
                int32_t replicas);

/// D replicas of `pipeline` (a schedule of one replica, replicas == 1):
/// streams, groups and the replica count as described above, each chunk's
/// all-reduce right after its last W (and the posts after it), none for a
/// chunk whose `reduced`
/// entry is 0 (a chunk without gradients; an empty `reduced` reduces
/// every chunk). Request ids are unchanged. D = 1 returns the pipeline
/// unchanged. `zero`: ZeRO-1's collectives, as described above.
Schedule replicate(const Schedule &pipeline, int32_t replicas,
                   const std::vector<uint8_t> &reduced = {},
                   bool zero = false);

/// Replica 0 of `replicate(pipeline, D, reduced, zero)`, alone, for every
/// D >= 2 at once: its S streams with each stage's data-parallel
/// collectives on a group of that stage alone, numbered G + s (what
/// dataParallelGroup gives for one replica; replica 0's streams differ
/// from the D-replica plan's in that number only), the pipeline's groups
/// first. replicas == 1.
///
/// Why proving it proves the plan of any D (docs/SCHEDULES.md "Proving
/// D replicas by proving one"): every replica runs replica 0's streams
/// moved into it, so the replicas are copies of one program that meet
/// only in the data-parallel collectives, one member of each replica at
/// the same position of the same stream. Run in lockstep, D replicas do
/// what replica 0 alone does, each collective completing when replica 0's
/// member reaches it; the abstract machine is confluent (each rank runs a
/// fixed sequence, and what enables an instruction stays enabled until it
/// runs), so if one execution completes every execution does, and a
/// deadlock of one replica alone is a deadlock of all. With equal costs
/// the replicas' times are replica 0's too. The proof and the timing then
/// cost S ranks, not D S: 221,184 ranks (D = 4096, S = 54) prove as 54.
Schedule replicaZeroAlone(const Schedule &pipeline,
                          const std::vector<uint8_t> &reduced = {},
                          bool zero = false);

} // namespace pipec::schedule

#endif // PIPEC_COMPILER_SCHEDULE_REPLICATE_H
