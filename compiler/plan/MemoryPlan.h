//===- MemoryPlan.h - one static arena per rank ------------------*- C++ -*-===//
//
// Every buffer a rank needs in a training step gets a fixed offset in one
// arena. Weights, gradient accumulators, optimizer state and the workspace
// live all step; kept activations, output gradients a deferred W reads, and
// the buffers of messages live over an interval of the rank's instruction
// stream (positions are instruction indices, so "happens before" is the
// stream order). Intervals are per (chunk, micro-batch), never per op, so a
// 96 x 512 plan stays small. docs/PARTITION.md has the rules.
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_COMPILER_PLAN_MEMORYPLAN_H
#define PIPEC_COMPILER_PLAN_MEMORYPLAN_H

#include "compiler/schedule/Schedule.h"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace pipec::plan {

/// What a buffer holds.
enum class BufferKind : uint8_t {
  Weights,     ///< parameters the rank's chunks read
  Gradients,   ///< one accumulator per parameter use on the rank
  Optimizer,   ///< AdamW's m and v for every parameter the rank holds
  Workspace,   ///< the largest transient of any op the rank runs
  Activations, ///< kept from F until B (or W), per micro-batch
  OutputGrads, ///< output gradients a deferred W reads, from B until W
  Receive,     ///< received activations and gradients, from post to use
  Send,        ///< produced messages, until the send's wait completed
};
constexpr int kBufferKinds = 8;
/// "weights", "gradients", ... (the JSON keys).
const char *bufferKindName(BufferKind kind);

/// The buffers a (chunk, micro-batch) can have; each role has one size per
/// chunk, so the micro-batches of a (role, chunk) share slots.
enum BufferRole : int32_t {
  RoleSaved,      ///< F's kept activations (not those recomputed)
  RoleRecomputed, ///< what B rebuilds, kept until W (or the end of B)
  RoleOutGrad,    ///< output gradients a deferred W reads
  RoleInAct,      ///< the chunk's input: received or handed over on the rank
  RoleInGrad,     ///< its output's gradient: received or handed over
  RoleOutAct,     ///< the output activation until its send completed
  RoleOutGradMsg, ///< the input gradient until its send completed
  RoleRecomputeIn, ///< the input a recomputation starts from, F until B
  RoleSavedForB,   ///< F's kept activations only B reads, F until B
  kBufferRoles
};
/// "saved", "recomputed", ... for reports and IR attributes; "static" for
/// a role below 0 (a block that lives the whole step).
const char *bufferRoleName(int32_t role);
/// The role named `name` (bufferRoleName's inverse: -1 for "static");
/// false for an unknown name.
bool bufferRoleOf(const std::string &name, int32_t &role);

/// What the planner needs to know about one chunk's memory, per micro-batch.
struct ChunkMemory {
  /// Activations F keeps for the backward, until W when the chunk has a
  /// deferred W (else until B).
  int64_t savedBytes = 0;
  /// Activations F keeps that only B reads: until B.
  int64_t savedForBBytes = 0;
  /// Recomputation: F keeps `recomputeInBytes` (the input of the recomputed
  /// ops) until B, and B rebuilds `recomputedBytes`, which live until W.
  int64_t recomputeInBytes = 0, recomputedBytes = 0;
  int64_t wGradBytes = 0;   ///< output gradients a deferred W reads
  bool deferredW = false;   ///< some W of the chunk runs after its B
  int64_t inBytes = 0;      ///< the chunk's input activation (its message)
  int64_t outBytes = 0;     ///< its output activation
  int64_t workspaceBytes = 0;
};

/// The static part of a rank's arena.
struct StaticMemory {
  int64_t weights = 0, gradients = 0, optimizer = 0;
  /// A workspace the rank holds besides its chunks' scratch (the cuda
  /// target's cuBLASLt workspace, pipert::kCudaWorkspaceBytes).
  int64_t deviceWorkspace = 0;
};

/// The instructions of a rank that can touch a buffer of (chunk c,
/// micro-batch j), as bits. A buffer lives from the first to the last
/// instruction whose bit it has.
enum Touch : uint32_t {
  TouchF = 1u << 0, ///< F of (c, j)
  TouchB = 1u << 1, ///< B of (c, j)
  TouchW = 1u << 2, ///< W of (c, j)
  TouchRecvIn = 1u << 3,      ///< post and wait of the recv of c's input
  TouchRecvGradIn = 1u << 4,  ///< ... of the gradient of c's output
  TouchSendOut = 1u << 5,     ///< post and wait of the send of c's output
  TouchSendGradOut = 1u << 6, ///< ... of c's input gradient
  TouchPrevF = 1u << 7,       ///< F of (c - 1, j) when on the same rank
  TouchNextF = 1u << 8,       ///< F of (c + 1, j) when on the same rank
  TouchPrevB = 1u << 9,       ///< B of (c - 1, j) when on the same rank
  TouchNextB = 1u << 10,      ///< B of (c + 1, j) when on the same rank
};

/// One buffer every micro-batch of a chunk has.
struct ChunkBuffer {
  int32_t role = 0;  ///< a BufferRole; at most one buffer per role
  int64_t bytes = 0; ///< per micro-batch
  uint32_t touches = 0; ///< Touch bits: the instructions that use it
  /// Touch bits of which one must happen on the rank for the buffer to
  /// exist (0: it always exists); a chunk's input buffer exists only when
  /// a recv or a same-rank neighbour fills it.
  uint32_t needs = 0;
};

/// A rank-wide block at the front of the arena.
struct StaticBlock {
  BufferKind kind;
  int64_t bytes = 0;
};

/// One buffer with its place in the arena.
struct Block {
  BufferKind kind;
  int32_t role = -1;  ///< a BufferRole; -1 for the rank-wide static blocks
  int32_t chunk = -1; ///< -1 for the rank-wide static blocks
  int32_t slot = 0;   ///< the slot micro-batches of this (kind, chunk) share
  int64_t offset = 0, bytes = 0;
  int32_t start = 0, end = 0; ///< first and last stream position it is live
};

/// The plan of one rank.
struct RankMemory {
  int64_t arenaBytes = 0;    ///< the arena's size: what the rank needs
  int64_t peakLiveBytes = 0; ///< most bytes live at one instruction
  int32_t peakPosition = 0;  ///< the instruction where that happens
  /// Bytes per kind at the peak instruction (static kinds: their size).
  std::array<int64_t, kBufferKinds> atPeak{};
  std::vector<Block> blocks; ///< static blocks first, then the slots
  /// slotOf[role * chunks + chunk][mb]: which slot a micro-batch uses.
  std::vector<std::vector<int32_t>> slotOf;
};

/// Plans every rank of `schedule`. `chunks[c]` describes chunk c; `statics`
/// is per rank.
std::vector<RankMemory> planMemory(const schedule::Schedule &schedule,
                                   const std::vector<ChunkMemory> &chunks,
                                   const std::vector<StaticMemory> &statics);

/// Plans every rank of `schedule` from exact buffers: `buffers[c]` are
/// chunk c's, `statics[r]` rank r's static blocks in arena order (placed
/// back to back from offset 0). planMemory is this with the estimated
/// ChunkMemory turned into buffers.
std::vector<RankMemory>
planBuffers(const schedule::Schedule &schedule,
            const std::vector<std::vector<ChunkBuffer>> &buffers,
            const std::vector<std::vector<StaticBlock>> &statics);

} // namespace pipec::plan

#endif // PIPEC_COMPILER_PLAN_MEMORYPLAN_H
