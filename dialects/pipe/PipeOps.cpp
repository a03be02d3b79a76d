//===- PipeOps.cpp - verifiers of chunks, groups and schedules --*- C++ -*-===//
//
// The program op, with its table syntax and checks, is in PipeProgram.cpp;
// this file holds the smaller ops and the generated definitions.
//
//===----------------------------------------------------------------------===//

#include "dialects/pipe/PipeOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/OpImplementation.h"

#include <cmath>

using namespace mlir;
using namespace pipec::pipe;

#define GET_OP_CLASSES
#include "dialects/pipe/PipeOps.cpp.inc"

LogicalResult ChunkOp::verify() {
  if (getRank() < 0)
    return emitOpError("rank must be non-negative, got ") << getRank();
  ArrayRef<double> costs = getCosts();
  if (costs.size() != 3)
    return emitOpError("costs must hold 3 values [F, B, W], got ")
           << costs.size();
  static const char *names[] = {"F", "B", "W"};
  for (auto [i, c] : llvm::enumerate(costs))
    if (!std::isfinite(c) || c < 0)
      return emitOpError("cost of ")
             << names[i] << " must be finite and non-negative, got " << c;
  return success();
}

LogicalResult GroupOp::verify() {
  ArrayRef<int32_t> ranks = getRanks();
  if (ranks.empty())
    return emitOpError("must hold at least one rank");
  for (auto [i, r] : llvm::enumerate(ranks)) {
    if (r < 0)
      return emitOpError("rank ") << r << " is negative";
    if (i > 0 && r <= ranks[i - 1])
      return emitOpError("ranks must be strictly ascending, but ")
             << r << " follows " << ranks[i - 1];
  }
  return success();
}

LogicalResult ScheduleOp::verify() {
  // The names compiler/schedule gives its kinds, plus imported CSV files.
  static const char *kinds[] = {"gpipe", "1f1b", "interleaved-1f1b",
                                "zb-h1", "zb-v", "dualpipe-v",
                                "csv"};
  if (!llvm::is_contained(kinds, getKind()))
    return emitOpError("unknown schedule kind '")
           << getKind()
           << "'; expected gpipe, 1f1b, interleaved-1f1b, zb-h1, zb-v, "
              "dualpipe-v or csv";
  if (getStages() < 1)
    return emitOpError("stages must be at least 1, got ") << getStages();
  if (getMicrobatches() < 1)
    return emitOpError("microbatches must be at least 1, got ")
           << getMicrobatches();
  if (getChunksPerRank() < 1)
    return emitOpError("chunks_per_rank must be at least 1, got ")
           << getChunksPerRank();
  if (getReplicas() < 1)
    return emitOpError("replicas must be at least 1, got ") << getReplicas();
  if (getZero() != 0 && (getZero() != 1 || getReplicas() < 2))
    return emitOpError("zero must be 0, or 1 with replicas of at least 2; "
                       "got zero = ")
           << getZero() << " with " << getReplicas() << " replicas";
  double bubble = getBubble().convertToDouble();
  if (!(bubble >= 0 && bubble <= 1))
    return emitOpError("bubble must be a fraction in [0, 1], got ") << bubble;
  double step = getStepTime().convertToDouble();
  if (!std::isfinite(step) || step < 0)
    return emitOpError("step_time must be finite and non-negative, got ")
           << step;
  return success();
}
