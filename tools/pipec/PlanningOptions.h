//===- PlanningOptions.h - the options `pipec plan` and `compile` share -*- C++ -*-===//
//
// One set of planning options registered on both subcommands, so that what
// `pipec plan` prints for a set of options is what `pipec compile` builds
// with them: the schedule (a kind, auto, or a CSV file), stages,
// micro-batches, chunks per rank, replicas and ZeRO, the target, the
// memory cap and the recomputation that fits it, the LM head's W, fusion.
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_TOOLS_PIPEC_PLANNINGOPTIONS_H
#define PIPEC_TOOLS_PIPEC_PLANNINGOPTIONS_H

#include "compiler/passes/Pipeline.h"
#include "compiler/plan/Planner.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdint>
#include <string>

namespace pipec::tool {

/// The two subcommands, made on first use so that the shared options can
/// name them from another file.
llvm::cl::SubCommand &planSubcommand();
llvm::cl::SubCommand &compileSubcommand();

/// The shared options, read and checked.
struct Planning {
  /// The pass pipeline's options (kind "auto" for --schedule auto; csv the
  /// file's path; microbatches resolved: 0 only with a schedule file,
  /// whose count then applies).
  TrainingPipelineOptions pipeline;
  std::string csvText; ///< the schedule file's contents
  /// The same request as the planner takes it.
  plan::PlanOptions planner;
  /// The cap in effect and where it came from ("" when none).
  std::string capSource;
};

/// Reads the shared options; returns "" or what is wrong (for
/// "pipec SUB: error: ...").
std::string readPlanningOptions(Planning &out);

/// Every option that shapes the plan, as text (the plan's identity).
std::string describePlanning(const Planning &p);

/// The partition in one line per chunk, printed alike by `pipec plan` and
/// `pipec compile` so the two can be compared:
///   schedule: zb-v, 2 chunks per rank, 8 micro-batches
///   chunk c0: rank 0, ops 0-37, recomputes ops 0-12 in B
void printScheduleLine(llvm::raw_ostream &os, llvm::StringRef kind,
                       int64_t chunksPerRank, int64_t microbatches);
void printChunkLine(llvm::raw_ostream &os, int64_t chunk, int64_t rank,
                    int64_t firstOp, int64_t lastOp, int64_t recomputeFirst,
                    int64_t recomputeLast);

/// "memory cap: C bytes per rank (SOURCE)", and the partitioner's tighter
/// cap when fitPartitionerCap lowered it; nothing without a cap.
void printCapLine(llvm::raw_ostream &os, const Planning &p,
                  int64_t partitionerCap);

} // namespace pipec::tool

#endif // PIPEC_TOOLS_PIPEC_PLANNINGOPTIONS_H
