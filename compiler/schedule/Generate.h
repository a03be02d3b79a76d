//===- Generate.h - compute orders of the built-in schedule kinds -*- C++ -*-===//
//
// Each kind yields a ComputePlan: the chunk placement it implies (one chunk
// per rank, looped chunks for interleaved 1F1B, the V shape for zb-v and
// dualpipe-v) and every rank's order of F, B and W steps. Communication is
// added afterwards by lowerPlan (Lower.h), the same way for every kind and
// for imported CSV files.
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_COMPILER_SCHEDULE_GENERATE_H
#define PIPEC_COMPILER_SCHEDULE_GENERATE_H

#include "compiler/schedule/Schedule.h"

#include <string>

namespace pipec::schedule {

/// What to generate. chunksPerRank 0 means the kind's default (2 for the
/// interleaved and V-shaped kinds, 1 otherwise); modelOps > 0 refuses plans
/// with more chunks than the model has ops.
struct GenerateOptions {
  Kind kind = Kind::OneFOneB;
  int32_t stages = 0;
  int32_t microbatches = 0;
  int32_t chunksPerRank = 0;
  int32_t modelOps = 0;
};

/// Builds the compute plan of a kind. Returns an empty string on success, or
/// a message saying why the combination cannot be served.
std::string generatePlan(const GenerateOptions &options, ComputePlan &plan);

/// The published bubble fraction of a kind with F = B = W (a full backward
/// costing 2): (p-1)/(m+p-1) for GPipe and 1F1B, (p-1)/(vm+p-1) for
/// interleaved 1F1B, (p-1)/(3m+p-1) for ZB-H1, and the start-up estimate
/// (p-1)/(6m+p-1) for ZB-V and DualPipe-V. Negative for CSV plans.
double closedFormBubble(Kind kind, int32_t stages, int32_t microbatches,
                        int32_t chunksPerRank);
/// The formula closedFormBubble uses, as text ("(p-1)/(m+p-1)").
const char *closedFormText(Kind kind);

/// The placements the kinds use, exposed for the partitioner and tests.
Placement linearPlacement(int32_t ranks);
Placement loopedPlacement(int32_t ranks, int32_t chunksPerRank);
Placement vShapePlacement(int32_t ranks);

} // namespace pipec::schedule

#endif // PIPEC_COMPILER_SCHEDULE_GENERATE_H
