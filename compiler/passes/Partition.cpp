//===- Partition.cpp - --pipe-partition: chunks balanced per rank ---------===//
//
// Reads @forward into pieces (ModelCosts), plans the partition together
// with the schedule's placement (compiler/plan), and writes one pipe.chunk
// per chunk with the facts the memory planner and the emitter need, plus a
// pipe.group for every parameter read on several ranks (tied weights).
//
//===----------------------------------------------------------------------===//

#include "compiler/analysis/ModelCosts.h"
#include "compiler/passes/Passes.h"
#include "compiler/schedule/Csv.h"

#include "dialects/nn/NNOps.h"
#include "dialects/pipe/PipeOps.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/DenseMap.h"

namespace pipec {
#define GEN_PASS_DEF_PIPEPARTITIONPASS
#include "compiler/passes/Passes.h.inc"
} // namespace pipec

using namespace mlir;
using namespace pipec;
using namespace pipec::pipe;
using namespace pipec::plan;

namespace {

struct PipePartitionPass
    : public pipec::impl::PipePartitionPassBase<PipePartitionPass> {
  using PipePartitionPassBase::PipePartitionPassBase;
  void runOnOperation() override;
};

/// The values each chunk passes on: per chunk, (op id, result) pairs of the
/// values made before its end and read after it.
std::vector<SmallVector<int64_t>> sendsPerChunk(func::FuncOp forward,
                                                const ModelCosts &model,
                                                const Plan &plan) {
  std::vector<int32_t> pieceOfOp;
  for (size_t i = 0; i < model.pieces.size(); ++i)
    for (int32_t id = model.pieces[i].firstOp; id <= model.pieces[i].lastOp; ++id) {
      if (int32_t(pieceOfOp.size()) <= id)
        pieceOfOp.resize(id + 1, int32_t(i));
      pieceOfOp[id] = int32_t(i);
    }
  std::vector<int32_t> chunkOfPiece(model.pieces.size());
  for (size_t c = 0; c < plan.chunks.size(); ++c)
    for (int32_t i = plan.chunks[c].firstPiece; i < plan.chunks[c].endPiece; ++i)
      chunkOfPiece[i] = int32_t(c);

  llvm::DenseMap<Operation *, int32_t> idOf;
  int32_t next = 0;
  for (Operation &op : forward.getBody().front())
    if (!op.hasTrait<OpTrait::IsTerminator>())
      idOf[&op] = next++;
  std::vector<SmallVector<int64_t>> sends(plan.chunks.size());
  for (Operation &op : forward.getBody().front()) {
    if (op.hasTrait<OpTrait::IsTerminator>() || isa<nn::ParamOp>(op))
      continue;
    int32_t from = chunkOfPiece[pieceOfOp[idOf[&op]]];
    for (OpResult v : op.getResults()) {
      int32_t last = from;
      for (Operation *user : v.getUsers())
        if (auto it = idOf.find(user); it != idOf.end())
          last = std::max(last, chunkOfPiece[pieceOfOp[it->second]]);
      for (int32_t c = from; c < last; ++c) {
        sends[c].push_back(idOf[&op]);
        sends[c].push_back(v.getResultNumber());
      }
    }
  }
  return sends;
}

void PipePartitionPass::runOnOperation() {
  ModuleOp module = getOperation();
  MLIRContext *ctx = &getContext();
  if (!module.getOps<ChunkOp>().empty()) {
    emitError(module.getLoc()) << "--pipe-partition: the module already has "
                                  "pipe.chunk ops; the pass runs once";
    return signalPassFailure();
  }
  auto forward = module.lookupSymbol<func::FuncOp>("forward");
  if (!forward) {
    emitError(module.getLoc())
        << "--pipe-partition needs func.func @forward (the importer's output)";
    return signalPassFailure();
  }
  PlanOptions o;
  o.deviceWorkspaceBytes = deviceWorkspaceFor(target);
  if (!ratesForTarget(target, o.rates)) {
    emitError(module.getLoc()) << "--pipe-partition: unknown target '"
                               << target << "'; expected one of "
                               << allTargetNames();
    return signalPassFailure();
  }
  if (!csv.empty()) {
    if (std::string e = schedule::readCsvFile(csv, o.csvText); !e.empty()) {
      emitError(module.getLoc()) << "--pipe-partition: the schedule file: "
                                 << e;
      return signalPassFailure();
    }
    o.csvName = csv;
  } else if (kind == "auto") {
    o.autoSchedule = true;
  } else if (!schedule::parseKind(kind, o.kind)) {
    emitError(module.getLoc()) << "--pipe-partition: unknown kind '" << kind
                               << "'; expected one of "
                               << schedule::allKindNames() << " or auto";
    return signalPassFailure();
  }
  if (stages < 1 && csv.empty()) {
    emitError(module.getLoc())
        << "--pipe-partition needs stages=S with S >= 1 (or csv=FILE)";
    return signalPassFailure();
  }
  // 0 means "not given" for these options; a negative value is a mistake,
  // never a default.
  if (microbatches < 0 || chunksPerRank < 0 || memoryCap < 0) {
    emitError(module.getLoc())
        << "--pipe-partition: microbatches, chunks-per-rank and memory-cap "
           "must not be negative (0: the default)";
    return signalPassFailure();
  }
  o.stages = stages;
  // A schedule file has its own micro-batch count (0 takes it).
  o.microbatches =
      microbatches > 0 || !csv.empty() ? int32_t(microbatches) : 2 * stages;
  o.chunksPerRank = chunksPerRank;
  o.replicas = std::max<int32_t>(replicas, 1);
  o.zero = zero;
  if (!parseRecompute(recompute, o.recompute)) {
    emitError(module.getLoc()) << "--pipe-partition: unknown recompute '"
                               << recompute
                               << "'; expected none, full or auto";
    return signalPassFailure();
  }
  o.memoryCap = memoryCap;

  CostOptions co;
  co.rates = o.rates;
  co.deferLmHeadW = deferLmHeadW;
  ModelCosts model;
  // F, B and W from @train_step's own ops when --nn-autodiff ran first.
  auto trainStep = module.lookupSymbol<func::FuncOp>("train_step");
  if (std::string err = buildModelCosts(forward, trainStep, co, model);
      !err.empty()) {
    forward.emitError("--pipe-partition: ") << err;
    return signalPassFailure();
  }
  Plan plan;
  if (std::string err = makePlan(model, o, plan); !err.empty()) {
    emitError(module.getLoc()) << "--pipe-partition: " << err;
    return signalPassFailure();
  }

  // Parameter uses per piece, in use order.
  std::vector<SmallVector<Attribute>> paramsOfPiece(model.pieces.size());
  for (const ParamUse &p : model.params)
    for (int32_t piece : p.pieces)
      paramsOfPiece[piece].push_back(StringAttr::get(ctx, p.name));
  std::vector<SmallVector<int64_t>> sends = sendsPerChunk(forward, model, plan);

  OpBuilder b(ctx);
  module->setAttr("pipe.schedule_kind",
                  b.getStringAttr(schedule::kindName(plan.streams.kind)));
  // The planner's estimate of each rank's arena, which recomputation was
  // chosen against (fitPartitionerCap compares it with the exact plan).
  SmallVector<int64_t> estimates;
  for (const RankMemory &m : plan.memory)
    estimates.push_back(m.arenaBytes);
  module->setAttr("pipe.estimated_arena_bytes",
                  b.getDenseI64ArrayAttr(estimates));
  // The residual stream of one micro-batch, the input of the first norm
  // (for the plan folder's work.json: what tensor parallelism all-reduces
  // in pipec-sim --tp).
  int64_t activation = 0;
  forward.walk([&](Operation *op) {
    if (activation == 0 && isa<nn::LayerNormOp, nn::RMSNormOp>(op))
      if (auto t = dyn_cast<RankedTensorType>(op->getOperand(0).getType()))
        activation = t.getNumElements() * ((t.getElementTypeBitWidth() + 7) / 8);
  });
  module->setAttr("pipe.activation_bytes", b.getI64IntegerAttr(activation));
  b.setInsertionPointToEnd(module.getBody());
  Location loc = module.getLoc();
  auto i64 = [&](int64_t v) { return b.getI64IntegerAttr(v); };
  for (size_t c = 0; c < plan.chunks.size(); ++c) {
    const ChunkPlan &ch = plan.chunks[c];
    auto chunk = ChunkOp::create(
        b, loc, b.getStringAttr("c" + std::to_string(c)), ch.rank,
        b.getDenseF64ArrayAttr({ch.f, ch.b, ch.w}));
    chunk->setAttr("pipe.op_ids", b.getDenseI64ArrayAttr({ch.firstOp, ch.lastOp}));
    if (ch.firstLayer >= 0)
      chunk->setAttr("pipe.layers",
                     b.getDenseI64ArrayAttr({ch.firstLayer, ch.lastLayer}));
    chunk->setAttr("pipe.sends", b.getDenseI64ArrayAttr(sends[c]));
    chunk->setAttr("pipe.in_bytes", i64(ch.memory.inBytes));
    chunk->setAttr("pipe.out_bytes", i64(ch.memory.outBytes));
    chunk->setAttr("pipe.saved_bytes", i64(ch.memory.savedBytes));
    chunk->setAttr("pipe.saved_b_bytes", i64(ch.memory.savedForBBytes));
    chunk->setAttr("pipe.recompute_in_bytes", i64(ch.memory.recomputeInBytes));
    chunk->setAttr("pipe.recomputed_bytes", i64(ch.memory.recomputedBytes));
    if (ch.recomputes())
      chunk->setAttr("pipe.recompute_ops",
                     b.getDenseI64ArrayAttr(
                         {ch.firstOp,
                          model.pieces[ch.recomputeEnd - 1].lastOp}));
    chunk->setAttr("pipe.w_grad_bytes", i64(ch.memory.wGradBytes));
    chunk->setAttr("pipe.workspace_bytes", i64(ch.memory.workspaceBytes));
    if (ch.memory.deferredW)
      chunk->setAttr("pipe.deferred_w", b.getUnitAttr());
    // F, B and W work by kernel class, for the plan folder's work.json.
    SmallVector<double> work;
    for (const Work &w : ch.work)
      work.append({w.gemmFlops, w.gemmBytes, w.attentionFlops,
                   w.attentionBytes, w.otherFlops, w.otherBytes,
                   double(w.kernels)});
    chunk->setAttr("pipe.work", b.getDenseF64ArrayAttr(work));
    SmallVector<Attribute> params;
    for (int32_t i = ch.firstPiece; i < ch.endPiece; ++i)
      params.append(paramsOfPiece[i].begin(), paramsOfPiece[i].end());
    chunk->setAttr("pipe.params", b.getArrayAttr(params));
  }
  for (const auto &[name, ranks] : plan.tied) {
    auto group = GroupOp::create(b, loc, b.getStringAttr("tied." + name),
                                 b.getDenseI32ArrayAttr(ranks));
    group->setAttr("pipe.param", b.getStringAttr(name));
  }
}

} // namespace
