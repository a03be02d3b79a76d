//===- EmitLayout.h - arenas of a compiled plan, per rank -------*- C++ -*-===//
//
// Where every byte of a compiled plan lives (docs/EMIT.md): per rank, the
// static part (parameter values, summed gradients, AdamW m and v, per-use
// accumulators, all-reduce operands, the scratch of F and B temporaries,
// gradient norm, per-micro-batch losses), then per (chunk, micro-batch) six
// regions: activations and gradients received and sent, the values F keeps
// for B and W, the values B keeps for W. Each region has its own slots,
// shared by micro-batches whose lifetimes in the rank's stream do not
// overlap (interval colouring over stream positions).
//
//===----------------------------------------------------------------------===//
#ifndef PIPEC_COMPILER_EMIT_EMITLAYOUT_H
#define PIPEC_COMPILER_EMIT_EMITLAYOUT_H

#include "dialects/nn/NNOps.h"
#include "dialects/pipe/PipeOps.h"
#include "pipert/LrSchedule.h"
#include "pipert/Manifest.h"
#include "pipert/Stream.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"

#include <map>
#include <tuple>
#include <string>
#include <vector>

namespace pipec::emit {

/// A byte range inside a (chunk, slot) region.
struct SlotRegion {
  int64_t offset = 0, bytes = 0;
};

/// The regions of a (chunk, micro-batch), each with its own slots: the
/// message buffers live from their post to their wait, F's kept values
/// from F to W, B's from B to W, so a message posted early or a micro-batch
/// waiting for its backward does not hold more than it needs.
enum Region { kInAct, kInGrad, kOutAct, kOutGrad, kData, kBData, kRegions };

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
  /// Per region, the slot of each micro-batch and the number of slots.
  std::vector<int32_t> slotOf[kRegions];
  int32_t slots[kRegions] = {0, 0, 0, 0, 0, 0};
};

/// A parameter and its offset inside each static block of a rank.
struct ParamLayout {
  std::string name;
  std::vector<int64_t> shape;
  int64_t elements = 0, bytes = 0;
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
  std::vector<int> params; ///< indices into PlanLayout::params, held here
  /// Offset of each held parameter inside the values, grads, m, v blocks.
  std::map<int, int64_t> paramOffset;
  int64_t valuesBase = 0, gradsBase = 0, mBase = 0, vBase = 0;
  int64_t paramBlockBytes = 0;
  int64_t accBase = 0, accBytes = 0;
  std::map<std::pair<std::string, int64_t>, int64_t> accOffset;
  int64_t normBase = 0; ///< f64 per parameter: the group-0 operand
  std::map<int32_t, int64_t> tiedBase;
  int64_t scratchBase = 0, scratchBytes = 0; ///< temporaries of F and B
  int64_t gradNormOffset = 0, lossOffset = 0;
  int64_t staticEnd = 0;
  /// (chunk, region, slot) -> absolute offset of the region's slot.
  std::map<std::tuple<int32_t, int32_t, int32_t>, int64_t> slotBase;
  int64_t arenaBytes = 0;
};

/// Everything the emitter prints.
struct PlanLayout {
  std::string modelName;
  int32_t stages = 1, microbatches = 1, chunksPerRank = 1;
  int64_t batch = 0, seq = 0, vocab = 0;
  std::vector<ParamLayout> params;
  llvm::StringMap<int> paramIndex;
  std::vector<ChunkLayout> chunks;
  std::vector<RankLayout> ranks;
  std::vector<TiedGroup> tied;
  pipert::LrSchedule lr;
  double gradClip = 0;
  uint64_t seed = 0; ///< the initialiser's (nn.train seed)
  bool debugOneSlot = false; ///< EmitOptions::debugOneSlot
  pipe::ScheduleOp schedule;
  std::vector<pipe::ProgramOp> programs;
  /// pipe.group symbol -> the tied parameter it all-reduces (pipe.param).
  std::map<std::string, std::string> groupParam;
  pipert::Manifest manifest;

  const TiedGroup *tiedGroupOf(int param) const;
};

/// Lays out the plan of a module that went through the training pipeline.
bool buildPlanLayout(mlir::ModuleOp module, PlanLayout &layout,
                     std::string &error);

/// Slots per (chunk, micro-batch) from the programs, slot regions, arena
/// sizes (StreamWriter.cpp).
bool assignSlots(PlanLayout &layout, std::string &error);

/// The manifest of the laid-out plan (ManifestWriter.cpp).
void fillManifest(PlanLayout &layout);

/// The runtime streams of every rank (StreamWriter.cpp).
bool buildStreams(const PlanLayout &layout, std::vector<pipert::Stream> &out,
                  std::string &error);

} // namespace pipec::emit

#endif // PIPEC_COMPILER_EMIT_EMITLAYOUT_H
