//===- Lower.h - compute plans to instruction streams -----------*- C++ -*-===//
//
// Adds the communication to a compute plan, the same way for every kind and
// for imported CSV files:
//  - a recv is posted one compute step before the step that consumes it
//    (earlier where the sender's order on that channel demands it), and
//    waited right before the consumer: transfers overlap the previous step;
//  - a send is posted right after its producer (after B in zero-bubble
//    kinds, after B and W for a full backward);
//  - a send is waited just before the first receive whose arrival already
//    proves the send completed (so the wait never blocks on its own), else
//    at the end of the step;
//  - each tied group g (LowerOptions::groups) gets allreduce(group g,
//    bucket 0) on exactly its member ranks, after the rank's last W (every
//    gradient accumulator of the step is final) and before the step-wide
//    collective, in ascending group order on every rank;
//  - the step ends with allreduce(group 0, bucket 0) over all ranks (the
//    global gradient norm) and opt_step.
// Under the communication model (docs/SCHEDULES.md) a rank then blocks only
// on data it needs, so a plan whose dependencies have no cycle cannot
// deadlock; runMachine proves it for each schedule.
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_COMPILER_SCHEDULE_LOWER_H
#define PIPEC_COMPILER_SCHEDULE_LOWER_H

#include "compiler/schedule/Schedule.h"

#include <string>
#include <vector>

namespace pipec::schedule {

/// Checks a compute plan: the placement is a valid table, each rank runs only
/// its own chunks, and every (chunk, micro-batch) has exactly one F, one B
/// and one W, on one rank, with B after F and W after B. Returns an empty
/// string or a message naming the rank and the step.
std::string checkPlan(const ComputePlan &plan);

/// Options of the lowering.
struct LowerOptions {
  /// How many compute steps ahead of its consumer a recv is posted.
  int32_t recvLookahead = 1;
  /// End the step with allreduce + opt_step: the optimizer synchronises
  /// every rank (global gradient norm for clipping).
  bool optimizerStep = true;
  /// Post-validation (Zero Bubble paper, section 5): each rank runs opt_step
  /// as soon as its own gradients are done, without the allreduce, and the
  /// global checks are validated afterwards (rolled back if they fail), so
  /// the optimizer overlaps the step boundary. Needs optimizerStep.
  bool postValidation = false;
  /// Collective groups after group 0, one per tied parameter (a parameter
  /// read on several ranks, whose per-rank gradient accumulators must be
  /// summed): groups[i] is group i + 1, its member ranks ascending. Each
  /// member runs allreduce(group i + 1, bucket 0) once per step, after its
  /// last W and before the step-wide allreduce / opt_step. Needs
  /// optimizerStep (the sum feeds the optimizer); kept with post-validation.
  std::vector<std::vector<int32_t>> groups;
};

/// The streams of `steps` consecutive training steps, one after another on
/// each rank (request ids renumbered), to replay the steady state.
Schedule repeatSteps(const Schedule &schedule, int32_t steps);

/// Lowers a plan that passed checkPlan into streams.
Schedule lowerPlan(const ComputePlan &plan, const LowerOptions &options = {});

} // namespace pipec::schedule

#endif // PIPEC_COMPILER_SCHEDULE_LOWER_H
