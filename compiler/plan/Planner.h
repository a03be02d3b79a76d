//===- Planner.h - partition, schedule and memory plan together --*- C++ -*-===//
//
// The whole plan of a training step from per-op costs: the placement of the
// schedule kind decides which chunks share a rank, the partitioner balances
// per-rank time under that placement, the abstract machine times the
// schedule with the chunks' costs, and the memory planner sizes every rank's
// arena. `auto` tries every kind, chunks-per-rank and recomputation choice
// and keeps the fastest plan that fits the memory cap. Plain C++17.
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_COMPILER_PLAN_PLANNER_H
#define PIPEC_COMPILER_PLAN_PLANNER_H

#include "compiler/plan/CostModel.h"
#include "compiler/plan/MemoryPlan.h"
#include "compiler/plan/Partition.h"
#include "compiler/plan/Work.h"
#include "compiler/schedule/Machine.h"
#include "compiler/schedule/Schedule.h"

#include <cstdint>
#include <string>
#include <vector>

namespace pipec::plan {

/// One indivisible piece of the model: a compute op of @forward together
/// with the nn.param reads right before it (op ids firstOp..lastOp).
struct Piece {
  int32_t firstOp = 0, lastOp = 0;
  int32_t layer = -1;  ///< repeat iteration; -1 outside repeat blocks
  std::string name;    ///< the compute op's name, e.g. "nn.matmul"
  double f = 0, b = 0, w = 0; ///< modelled seconds per micro-batch
  bool wWithB = false; ///< its W runs inside B (the LM head by default)
  int64_t savedBytes = 0;     ///< activations kept for its backward
  int64_t wGradBytes = 0;     ///< output gradient a deferred W reads
  int64_t workspaceBytes = 0; ///< transient bytes while it runs
  /// F, B and W work of @train_step's ops (empty without @train_step); W
  /// as the ops' role has it, also when wWithB moves its time into B.
  Work work[3];
};

/// A parameter and the pieces that read it (several: tied weights).
struct ParamUse {
  std::string name;
  /// The parameter as declared (the fp32 master; its gradient accumulators
  /// and AdamW moments have this size too).
  int64_t bytes = 0;
  /// The working copy the kernels read when it is narrower than the master
  /// (bf16 storage, docs/NUMERICS.md); 0 when they read the master.
  int64_t copyBytes = 0;
  std::vector<int32_t> pieces; ///< one entry per use, in use order
};

/// A value @train_step's backward reads, from its liveness: each chunk
/// that holds one of its readers keeps it once.
struct KeptValue {
  int64_t bytes = 0;
  /// Made by a B op (an output gradient a W reads: kept from B to W);
  /// otherwise made in F or a function argument (kept from F).
  bool fromBackward = false;
  int32_t defPiece = -1;       ///< the maker's piece; -1 for an argument
  std::vector<int32_t> bPieces; ///< pieces of its B readers, ascending
  std::vector<int32_t> wPieces; ///< pieces of its W readers, ascending
};

/// The model as the planner sees it.
struct ModelCosts {
  std::vector<Piece> pieces;
  /// crossBytes[i]: bytes of activations made before piece i and read at or
  /// after it (what a cut before piece i sends, forwarded values included);
  /// n + 1 entries, 0 at both ends.
  std::vector<int64_t> crossBytes;
  std::vector<ParamUse> params;
  /// With @train_step: what the backward keeps, value by value, replacing
  /// the pieces' savedBytes and wGradBytes (which count a value once per
  /// op that keeps it).
  bool exactKept = false;
  std::vector<KeptValue> kept;
};

/// Recomputation choices: none; every chunk's whole forward; or (Auto, only
/// under a memory cap) layer by layer on the ranks over the cap, from the
/// start of each of their chunks, until they fit.
enum class Recompute : uint8_t { None, Full, Auto };

/// "none", "full" or "auto"; false for anything else.
bool parseRecompute(const std::string &text, Recompute &out);

struct PlanOptions {
  schedule::Kind kind = schedule::Kind::OneFOneB;
  bool autoSchedule = false; ///< try every kind, V and recomputation
  int32_t stages = 0, microbatches = 0, chunksPerRank = 0;
  std::string csvText, csvName; ///< a compute-only CSV schedule instead
  int64_t memoryCap = 0;        ///< bytes per rank; 0: no cap
  Recompute recompute = Recompute::Auto;
  Rates rates;
  /// Data-parallel replicas of the pipeline (Replicate.h): the streams and
  /// timing are replica 0's, which every replica runs (replicaZeroAlone),
  /// each chunk's gradients all-reduced
  /// over its replicas (a ring: 2 (D-1) messages of a D-th each); the
  /// memory is a pipeline's (the reduction is in place).
  int32_t replicas = 1;
  /// ZeRO-1 (with replicas > 1): each rank keeps about a D-th of its AdamW
  /// moments; the gradients are reduce-scattered ((D-1) messages of a
  /// D-th) and the parameters all-gathered after the step (the same).
  int32_t zero = 0;
  /// Bytes each rank holds besides its chunks' scratch as a workspace
  /// (the cuda target's cuBLASLt workspace, which the exact memory plan
  /// places in the arena); 0 on the cpu.
  int64_t deviceWorkspaceBytes = 0;
};

/// One chunk of the plan.
struct ChunkPlan {
  int32_t rank = 0;
  int32_t firstPiece = 0, endPiece = 0; ///< pieces [first, end)
  int32_t firstOp = 0, lastOp = 0;      ///< @forward op ids, inclusive
  int32_t firstLayer = -1, lastLayer = -1;
  double f = 0, b = 0, w = 0;
  /// Pieces [firstPiece, recomputeEnd) run their forward again in B; the
  /// chunk keeps only their input. recomputeEnd == firstPiece: none.
  int32_t recomputeEnd = 0;
  /// F, B and W work as the chunk runs them: recomputed forwards in B, a
  /// W that runs with its B (the LM head) in B.
  Work work[3];
  ChunkMemory memory;
  bool recomputes() const { return recomputeEnd > firstPiece; }
};

struct Plan {
  /// Replica 0's with its data-parallel collectives (replicaZeroAlone:
  /// its stage s's data-parallel group is G + s), which every replica runs.
  schedule::Schedule streams;
  int32_t replicas = 1; ///< of the pipeline (PlanOptions::replicas)
  schedule::MachineResult timing;
  /// The costs the machine timed the streams with (for pictures).
  schedule::Costs costs;
  /// Per chunk, the bytes of its gradient accumulators.
  std::vector<int64_t> gradientBytes;
  std::vector<ChunkPlan> chunks;
  std::vector<double> rankTime; ///< F + B + W per micro-batch, per rank
  double balanceBound = 0;      ///< same units as rankTime
  std::vector<RankMemory> memory;
  /// Parameters read on more than one rank, with those ranks: their
  /// gradients are all-reduced among them before the optimizer step.
  std::vector<std::pair<std::string, std::vector<int32_t>>> tied;
  bool recompute = false; ///< some chunk recomputes
  schedule::ComputePlan computePlan; ///< what the streams were lowered from
};

/// Plans one configuration, or (autoSchedule) the best one. Returns an
/// empty string, or why no plan can be made (a refused combination, a rank
/// over the memory cap with the rank, its need and the cap).
std::string makePlan(const ModelCosts &model, const PlanOptions &options,
                     Plan &plan);

/// The largest rank's peak memory of a plan.
int64_t maxPeak(const Plan &plan);

} // namespace pipec::plan

#endif // PIPEC_COMPILER_PLAN_PLANNER_H
