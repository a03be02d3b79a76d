//===- Schedule.h - pipeline schedules as compact per-rank tables -*- C++ -*-===//
//
// The data every schedule tool shares: chunk placement, compute-only plans
// (what a CSV file or a schedule kind says each rank computes) and the full
// instruction streams with their communication. Plain C++17, no MLIR, so the
// `--pipe-schedule` pass, `pipec schedule` and the runtime can all use it.
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_COMPILER_SCHEDULE_SCHEDULE_H
#define PIPEC_COMPILER_SCHEDULE_SCHEDULE_H

#include "pipert/PlanAbi.h"

#include <cstdint>
#include <string>
#include <vector>

namespace pipec::schedule {

/// The schedule families pipec generates, plus `Csv` for imported files.
enum class Kind : uint8_t { GPipe, OneFOneB, Interleaved, ZBH1, ZBV, DualPipeV, Csv };

/// The name used on the command line and in reports ("1f1b", "zb-v", ...).
const char *kindName(Kind kind);
/// Parses a kind name; returns false for an unknown name.
bool parseKind(const std::string &name, Kind &kind);
/// Every generated kind's name, comma separated, for help and errors.
std::string allKindNames();

/// The most (chunk, micro-batch) pairs a plan may have: the streams hold
/// about ten instructions a pair and the tables are indexed by them (4.2M
/// pairs took 2.7 GB), so a mistyped count is refused rather than run out
/// of memory. 2^20 is far beyond any real pipeline (GPT-3's 96 x 2 chunks
/// with 4096 micro-batches is 2^19.6).
constexpr int64_t kMaxChunkMicrobatches = int64_t(1) << 20;

/// One compute step of a compute-only plan. `FullBackward` is B immediately
/// followed by W with the gradient sent only after W (Megatron's order);
/// a separate `B` sends its gradient at once and its W comes later.
enum class Phase : uint8_t { F, B, W, FullBackward };

/// A compute step: phase, chunk (global index 0..chunks-1), micro-batch.
struct Action {
  Phase phase;
  int32_t chunk;
  int32_t mb;
};

/// Chunk -> rank table plus sizes; data rather than a formula so that the
/// partitioner (and CSV files) can place chunks any way they like.
struct Placement {
  int32_t ranks = 0;
  int32_t chunks = 0;
  std::vector<int32_t> rankOf; ///< rankOf[chunk]
  /// The chunks a rank holds, ascending.
  std::vector<int32_t> chunksOf(int32_t rank) const;
};

/// What each rank computes and in which order; no communication yet.
struct ComputePlan {
  Kind kind = Kind::Csv;
  int32_t microbatches = 0;
  int32_t chunksPerRank = 1;
  Placement placement;
  std::vector<std::vector<Action>> order; ///< order[rank]
};

/// Instruction opcodes of a rank's stream: the plan ABI's (PlanAbi.h).
using Op = pipert::Opcode;

/// One instruction, 20 bytes: streams are flat tables of these so that a
/// 96 x 512 schedule stays a few megabytes.
///
/// Fields by opcode: compute ops use chunk/mb. Posts use peer (the other
/// rank), chunk (the chunk that produced the message) and mb, and carry a
/// request id `req` unique within the rank. `Wait` repeats its post's opcode
/// in `sub` and its peer/chunk/mb, and names the post by `req`. `AllReduce`
/// uses chunk as the group and mb as the bucket.
struct Instr {
  Op op;
  Op sub;
  int32_t peer;
  int32_t chunk;
  int32_t mb;
  int32_t req;
};

/// Every rank's instruction stream plus the plan facts needed to check it.
struct Schedule {
  Kind kind = Kind::Csv;
  int32_t microbatches = 0;
  int32_t chunksPerRank = 1;
  Placement placement;
  std::vector<std::vector<Instr>> streams; ///< streams[rank]
  /// Collective groups: groups[g] lists, ascending, the ranks that join
  /// `allreduce(group g, ...)`. Group 0 is every rank (of replica 0 when
  /// replicated); the groups of tied parameters follow, then those of the
  /// replicas (Replicate.h). An empty table means group 0 alone.
  std::vector<std::vector<int32_t>> groups;
  /// Data-parallel replicas of the pipeline (Replicate.h): rank
  /// `replica * placement.ranks + stage` runs the stage's chunks, so the
  /// placement describes replica 0 and every replica has the same one.
  int32_t replicas = 1;
  int32_t ranks() const { return placement.ranks * replicas; }
  /// The pipeline rank (replica 0's) whose chunks rank r runs.
  int32_t stageOf(int32_t r) const { return r % placement.ranks; }
  /// How many groups exist (at least 1: group 0).
  int32_t groupCount() const;
  /// The ranks of group g, ascending; empty if g is not a group.
  std::vector<int32_t> groupMembers(int32_t g) const;
};

/// True for the opcodes that compute (F, B, W, optimizer step).
bool isCompute(Op op);
/// True for the asynchronous point-to-point posts.
bool isPost(Op op);
/// The stream name of an opcode ("recv_act", "bwd_w", ...).
const char *opName(Op op);

/// One instruction in the long, unambiguous form used in error messages,
/// e.g. `wait(recv_grad from 2, chunk 3, mb 5)`.
std::string describe(const Instr &instr);
/// One instruction in the compact token form of `pipec schedule`, e.g.
/// `F1.3`, `<A0:0.3` (post recv of an activation from rank 0, chunk 0,
/// mb 3), `~>G2:1.3` (wait for a gradient send to rank 2).
std::string compactToken(const Instr &instr);
/// A compute-only action as a token: `F1.3`, `B1.3`, `W1.3`, `BW1.3`.
std::string compactToken(const Action &action);

/// Prints every rank's stream, one line per rank, in compact tokens.
std::string formatStreams(const Schedule &schedule);
/// Prints every rank's compute order only, one line per rank.
std::string formatComputeOrder(const Schedule &schedule);

} // namespace pipec::schedule

#endif // PIPEC_COMPILER_SCHEDULE_SCHEDULE_H
