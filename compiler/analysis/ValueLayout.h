//===- ValueLayout.h - what a compiled plan keeps, and where -----*- C++ -*-===//
//
// The values of a partitioned @train_step, read once for both the memory
// plan and the emitter (docs/EMIT.md "Arena layout"): per chunk, which
// values cross a cut (the messages), which a later phase reads (kept per
// micro-batch in a region), which live only inside one phase (temporaries in
// the rank's scratch), and which regions each of F, B and W reads and
// writes; per rank, the static blocks (parameter state, accumulators,
// all-reduce operands, scratch, metric slots). --pipe-plan-memory turns the
// regions into buffers with lifetimes and packs them; the emitter reads
// the packed offsets back, so both agree on every byte.
//
//===----------------------------------------------------------------------===//
#ifndef PIPEC_COMPILER_ANALYSIS_VALUELAYOUT_H
#define PIPEC_COMPILER_ANALYSIS_VALUELAYOUT_H

#include "pipert/PlanAbi.h"
#include "compiler/plan/MemoryPlan.h"
#include "dialects/nn/NNOps.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"

#include <map>
#include <string>
#include <tuple>
#include <vector>

namespace pipec::layout {

/// Every region starts on a cache line (and any element type is aligned).
inline int64_t align64(int64_t x) { return (x + 63) / 64 * 64; }
/// The alignment of every block, region and value of a target's arena: a
/// cache line on the cpu, 256 bytes on cuda (cuBLASLt's heuristic is told
/// every GEMM operand has it, runtime/kernels/cuda/Gemm.h).
int64_t arenaAlignment(llvm::StringRef target);

/// Slots of RankLayout::scalarsOffset.
constexpr int64_t kOptimizerScalars = 8;

/// A byte range inside a (chunk, slot) region.
struct SlotRegion {
  int64_t offset = 0, bytes = 0;
};

/// The regions of a (chunk, micro-batch), each with its own slots: the
/// message buffers live from their post to their wait, F's kept values
/// from F to their last reader, B's from B to W, so a message posted early
/// or a micro-batch waiting for its backward does not hold more than it
/// needs.
/// The plan ABI's (PlanAbi.h), with the manifest's names.
using pipert::kBData;
using pipert::kData;
using pipert::kInAct;
using pipert::kInGrad;
using pipert::kOutAct;
using pipert::kOutGrad;
using pipert::kRegions;
using Region = pipert::PlanRegion;
using pipert::regionName;

/// The memory plan's buffer role of a region (plan::BufferRole).
int32_t roleOfRegion(int region);

/// The phases of a chunk, as bits.
enum PhaseBit : uint8_t { kPhaseF = 1, kPhaseB = 2, kPhaseW = 4 };

/// Where a value of a (chunk, micro-batch) lives: a region and an offset.
struct Place {
  int region = kData;
  int64_t offset = 0;
};

/// A copy between regions of one micro-batch (a value a chunk passes on).
struct Copy {
  Place from, to;
  int64_t bytes = 0;
};

/// A function argument of @train_step the host writes before F.
struct HostInput {
  enum Kind { Tokens, Targets, LossScale } kind;
  int64_t offset = 0, bytes = 0;
};

/// One chunk: its ops and where its values sit in its slot region.
struct ChunkLayout {
  std::string sym; ///< the pipe.chunk symbol
  int32_t rank = 0;
  int64_t firstOp = 0, lastOp = 0;
  std::vector<mlir::Operation *> ops[3]; ///< F, B, W in @train_step order
  /// Bytes of each region; kData holds the host inputs and F's kept
  /// values (fData), kBData B's values W reads (bData).
  int64_t regionBytes[kRegions] = {0, 0, 0, 0, 0, 0};
  SlotRegion fData, bData;
  /// Per phase (F, B, W), the regions it reads and writes, as bits
  /// (1 << Region); the memory plan's lifetimes and the runtime's shadow
  /// accesses both come from these.
  uint8_t reads[3] = {0, 0, 0}, writes[3] = {0, 0, 0};
  /// Where every value the chunk keeps per micro-batch lives.
  llvm::DenseMap<mlir::Value, Place> loc;
  /// Offset in the rank's scratch of every temporary (read only within the
  /// phase that makes it), and the scratch the chunk needs.
  llvm::DenseMap<mlir::Value, int64_t> scratch;
  int64_t scratchBytes = 0;
  std::vector<HostInput> hostInputs;
  bool usesData = false;
  /// Forwarded activations (copied at the end of F) and gradients (at the
  /// end of B).
  std::vector<Copy> forwardCopies[2];
  /// The micro-batch loss, when this chunk computes it.
  mlir::Value lossValue;
  /// Per region, the slot of each micro-batch and the number of slots
  /// (from the memory plan).
  std::vector<int32_t> slotOf[kRegions];
  int32_t slots[kRegions] = {0, 0, 0, 0, 0, 0};

  /// Whether phase `phase` (0 F, 1 B, 2 W) touches `region`.
  bool touches(int phase, int region) const {
    return ((reads[phase] | writes[phase]) >> region) & 1;
  }
};

/// A parameter and its offset inside each static block of a rank.
struct ParamLayout {
  std::string name;
  std::vector<int64_t> shape;
  /// The model's shape of a padded parameter (--nn-pad-vocab), else empty.
  std::vector<int64_t> logicalShape;
  int64_t elements = 0, bytes = 0;
  /// The working copy the kernels read (bf16 storage), 0 when they read
  /// the master itself (docs/NUMERICS.md).
  int64_t copyBytes = 0;
  int64_t uses = 0;   ///< accumulators (nn.sum_uses)
  std::string init;
  double std = 0;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0;
  std::vector<int32_t> ranks; ///< ranks holding it, ascending
  int32_t normRank = 0;       ///< the rank that counts it in the norm
};

/// One accumulator copied into a tied group's all-reduce operand.
struct TiedSegment {
  std::string param;
  int64_t use = 0;
  int64_t offset = 0, bytes = 0;
};

/// Parameters held by several ranks whose accumulators are all-reduced.
struct TiedGroup {
  int32_t group = 0; ///< manifest group index (>= 1)
  std::vector<int32_t> ranks;
  std::vector<TiedSegment> segments;
  int64_t bytes = 0;
};

/// A rank's static blocks (absolute arena offsets).
struct RankLayout {
  std::vector<int> params; ///< indices into ValueLayout::params, held here
  /// Offset of each held parameter inside the values and grads blocks.
  std::map<int, int64_t> paramOffset;
  int64_t valuesBase = 0, gradsBase = 0, mBase = 0, vBase = 0;
  int64_t paramBlockBytes = 0;
  /// Offset of each held parameter's AdamW moments inside the m and v
  /// blocks, per replica: with ZeRO-1 each replica packs the parts it
  /// updates (pipert/ZeroShard.h), so the offsets differ by replica and
  /// the blocks are the largest replica's; without it, one entry.
  std::vector<std::map<int, int64_t>> momentOffset;
  int64_t momentBlockBytes = 0;
  /// The working copies (bf16 storage): each held parameter's offset in
  /// the block at copiesBase (empty when the kernels read the masters).
  int64_t copiesBase = 0, copiesBytes = 0;
  std::map<int, int64_t> copyOffset;
  int64_t accBase = 0, accBytes = 0;
  std::map<std::pair<std::string, int64_t>, int64_t> accOffset;
  /// Per chunk of the rank with gradients, its accumulators' range
  /// (offset from accBase, bytes): laid out chunk by chunk.
  std::map<int32_t, std::pair<int64_t, int64_t>> accRange;
  /// An accumulator two chunks write ("P (use U, chunks a and b)"): no
  /// range is then all of a chunk's; "" when there is none.
  std::string sharedAccumulator;
  /// The group-0 operand: f64 slots, ValueLayout::normSlot says whose.
  int64_t normBase = 0;
  std::map<int32_t, int64_t> tiedBase;
  int64_t scratchBase = 0, scratchBytes = 0; ///< temporaries of F and B
  int64_t gradNormOffset = 0, lossOffset = 0;
  /// The cuda target's optimizer scalars (the step, the clip scale, the
  /// learning rate: kOptimizerScalars doubles or int64s) in device-reachable
  /// memory; the cpu keeps them on the stack (-1).
  int64_t scalarsOffset = -1;
  /// The cuda target's workspace (pipert::kCudaWorkspaceBytes, PlanAbi.h):
  /// cuBLASLt's and the kernels' between GEMMs; -1 on the cpu.
  int64_t workspaceOffset = -1;
  int64_t staticEnd = 0;
  /// The static blocks in arena order, for the memory plan.
  std::vector<plan::StaticBlock> staticBlocks;
  /// (chunk, region, slot) -> absolute offset of the region's slot (from
  /// the memory plan).
  std::map<std::tuple<int32_t, int32_t, int32_t>, int64_t> slotBase;
  int64_t arenaBytes = 0;
};

/// The values of a partitioned training step.
struct ValueLayout {
  std::string modelName;
  /// The kernel library the calls were lowered for (the module's
  /// kernel.target), and its arena alignment.
  std::string target = "cpu";
  int64_t alignment = 64;
  int64_t align(int64_t x) const {
    return (x + alignment - 1) / alignment * alignment;
  }
  int32_t stages = 1, microbatches = 1;
  int64_t batch = 0, seq = 0, vocab = 0;
  std::vector<ParamLayout> params;
  llvm::StringMap<int> paramIndex;
  std::vector<ChunkLayout> chunks;
  std::vector<RankLayout> ranks;
  std::vector<TiedGroup> tied;
  /// ZeRO-1: the replicas the AdamW moments are split among (the pipe.
  /// schedule's replicas with zero = 1); 1 keeps them whole.
  int32_t zeroReplicas = 1;
  /// ZeRO-1: each parameter's key for pipert::zeroShard, chosen so that
  /// every stage's replicas update about as many elements.
  std::vector<int32_t> zeroKey;
  /// The group-0 operand's first slot of each parameter and the slot
  /// count: one slot per parameter (its sum of squares), or with ZeRO-1
  /// one per norm chunk (its partial sum, pipert::normChunks).
  std::vector<int64_t> normSlot;
  int64_t normSlots = 0;
  double gradClip = 0;
  uint64_t seed = 0; ///< the initialiser's (nn.train seed)

  const TiedGroup *tiedGroupOf(int param) const;
};

/// Lays out the values of a module that went through --nn-autodiff and
/// --pipe-partition, for `stages` ranks and `microbatches` micro-batches.
/// Returns false with `error` naming what is missing or unsupported.
bool buildValueLayout(mlir::ModuleOp module, int32_t stages,
                      int32_t microbatches, ValueLayout &layout,
                      std::string &error);

/// The memory plan's buffers of every chunk (one per non-empty region, with
/// the events that touch it; plan::ChunkBuffer).
std::vector<std::vector<plan::ChunkBuffer>>
chunkBuffers(const ValueLayout &layout);

} // namespace pipec::layout

#endif // PIPEC_COMPILER_ANALYSIS_VALUELAYOUT_H
