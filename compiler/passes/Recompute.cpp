//===- Recompute.cpp - --pipe-recompute: the partitioner's recomputation ---===//
//
// --pipe-partition chooses, per chunk, a prefix of ops whose forward the
// backward runs again (a memory cap, or recompute=full); this pass makes
// @train_step do it: the prefix's F ops are copied in front of the chunk's
// backward and the chunk's B and W ops read the copies, so no F result of
// the prefix stays alive until the backward (docs/PARTITION.md
// "Recomputation").
//
//===----------------------------------------------------------------------===//

#include "compiler/passes/Passes.h"

#include "dialects/nn/NNGradInterface.h"
#include "dialects/nn/NNGradOps.h"
#include "dialects/nn/NNOps.h"
#include "dialects/pipe/PipeOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/DenseSet.h"

namespace pipec {
#define GEN_PASS_DEF_PIPERECOMPUTEPASS
#include "compiler/passes/Passes.h.inc"
} // namespace pipec

using namespace mlir;
using namespace pipec;
using pipec::nn::kOpIdAttrName;
using pipec::nn::kRecomputeAttrName;
using pipec::nn::kRoleAttrName;

namespace {

/// An op's role and op id, or {"", -1}.
std::pair<StringRef, int64_t> roleAndId(Operation *op) {
  auto role = op->getAttrOfType<StringAttr>(kRoleAttrName);
  auto id = op->getAttrOfType<IntegerAttr>(kOpIdAttrName);
  if (!role || !id)
    return {"", -1};
  return {role.getValue(), id.getInt()};
}

/// Whether an F op is run again by a recomputing chunk: every computation
/// except the parameter reads (static, never kept per micro-batch) and the
/// loss, whose dlogits F writes over the logits (the head's backward reads
/// them from F, as without recomputation).
bool isRecomputable(Operation *op) {
  return !isa<nn::ParamOp, nn::SoftmaxCrossEntropyOp>(op) &&
         !op->hasAttr(kRecomputeAttrName);
}

struct PipeRecomputePass
    : public pipec::impl::PipeRecomputePassBase<PipeRecomputePass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto step = module.lookupSymbol<func::FuncOp>("train_step");
    for (pipe::ChunkOp chunk : module.getOps<pipe::ChunkOp>()) {
      auto range = chunk->getAttrOfType<DenseI64ArrayAttr>("pipe.recompute_ops");
      if (!range)
        continue;
      auto ids = chunk->getAttrOfType<DenseI64ArrayAttr>("pipe.op_ids");
      if (!step || !ids || ids.size() != 2 || range.size() != 2 ||
          range[0] < ids[0] || range[1] > ids[1] || range[0] > range[1]) {
        chunk.emitError("--pipe-recompute: needs @train_step (--nn-autodiff) "
                        "and pipe.recompute_ops within the chunk's "
                        "pipe.op_ids");
        return signalPassFailure();
      }
      recomputeChunk(step, ids[0], ids[1], range[0], range[1]);
    }
  }

  /// Copies the F ops with op ids first..last in front of the first B or W
  /// op of the chunk with op ids chunkFirst..chunkLast and redirects that
  /// chunk's backward reads to the copies.
  void recomputeChunk(func::FuncOp step, int64_t chunkFirst, int64_t chunkLast,
                      int64_t first, int64_t last) {
    Block &body = step.getBody().front();
    auto inChunk = [&](Operation *op) {
      auto [role, id] = roleAndId(op);
      return (role == "B" || role == "W") && id >= chunkFirst &&
             id <= chunkLast;
    };
    Operation *backward = nullptr;
    SmallVector<Operation *> prefix;
    for (Operation &op : body) {
      auto [role, id] = roleAndId(&op);
      if (role == "F" && id >= first && id <= last && isRecomputable(&op))
        prefix.push_back(&op);
      if (!backward && inChunk(&op))
        backward = &op;
    }
    if (!backward || prefix.empty())
      return;

    OpBuilder b(backward);
    IRMapping copies;
    SmallVector<Operation *> made;
    MLIRContext *ctx = &getContext();
    for (Operation *op : prefix) {
      Operation *copy = b.clone(*op, copies);
      copy->setAttr(kRoleAttrName, StringAttr::get(ctx, "B"));
      copy->setAttr(kRecomputeAttrName, UnitAttr::get(ctx));
      made.push_back(copy);
    }
    llvm::DenseSet<Operation *> isCopy(made.begin(), made.end());
    for (Operation *op : prefix)
      for (Value v : op->getResults())
        v.replaceUsesWithIf(copies.lookup(v), [&](OpOperand &use) {
          Operation *user = use.getOwner();
          return !isCopy.contains(user) && inChunk(user);
        });
    // Copies nothing reads (a gelu feeding a residual add, whose backward
    // needs no value), last first so that their operands' copies go too.
    for (Operation *copy : llvm::reverse(made))
      if (copy->use_empty())
        copy->erase();
  }
};

} // namespace
