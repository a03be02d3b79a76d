//===- Fuse.cpp - the fused groups of the training step -------------------===//
//
// --nn-fuse finds in @forward the op pairs one fused kernel computes and
// replaces their forward ops in @train_step by the fused op. Groups are
// formed before partitioning: the second op of each pair is marked
// `nn.fused_with_previous` in @forward, and the partitioner's pieces
// (ModelCosts.cpp) keep such an op with the one before it, so every stage
// count and schedule makes the same kernel calls.
//
//===----------------------------------------------------------------------===//

#include "compiler/passes/Passes.h"

#include "dialects/nn/NNGradOps.h"
#include "dialects/nn/NNOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/DenseMap.h"

namespace pipec {
#define GEN_PASS_DEF_NNFUSEPASS
#include "compiler/passes/Passes.h.inc"
} // namespace pipec

using namespace mlir;
using namespace pipec;

/// The attribute on the @forward op that joins the compute op before it.
static constexpr llvm::StringLiteral kFusedWithPrevious =
    "nn.fused_with_previous";

static bool isParam(Value v) { return v.getDefiningOp<nn::ParamOp>(); }

/// The fusion that computes forward ops `first` then `second` (adjacent
/// compute ops of @forward), or "" when none does.
static StringRef fusionOf(Operation *first, Operation *second) {
  if (auto gelu = dyn_cast<nn::GeluOp>(second))
    if (auto mm = dyn_cast<nn::MatmulOp>(first))
      if (gelu.getInput() == mm.getResult())
        return "matmul_gelu";
  // A residual add: two activations of one shape. A broadcast add (a bias,
  // or [1, T, C] + [T, C], whose element counts agree at batch 1) or an add
  // of a parameter is not one.
  Value x;
  if (auto ln = dyn_cast<nn::LayerNormOp>(second))
    x = ln.getX();
  else if (auto rms = dyn_cast<nn::RMSNormOp>(second))
    x = rms.getX();
  auto add = dyn_cast<nn::AddOp>(first);
  if (!x || !add || x != add.getResult() ||
      add.getLhs().getType() != add.getRhs().getType() ||
      isParam(add.getLhs()) ||
      isParam(add.getRhs()))
    return "";
  return isa<nn::LayerNormOp>(second) ? "add_layernorm" : "add_rmsnorm";
}

/// The one F op of @train_step with `nn.op_id` `id` that is not a
/// recomputation, or null.
static Operation *forwardOpOf(const llvm::DenseMap<int64_t,
                                                   SmallVector<Operation *>> &f,
                              int64_t id) {
  auto it = f.find(id);
  return it != f.end() && it->second.size() == 1 ? it->second.front()
                                                  : nullptr;
}

/// Replaces the F ops `a` then `b` of @train_step by one fused op at `b`.
/// Returns false (changing nothing) when their forms do not fit.
static bool fuseInTrainStep(StringRef fusion, Operation *a, Operation *b) {
  // Between the two, nothing may read a's results: the fused op sits at b.
  for (Operation *op = a->getNextNode(); op && op != b; op = op->getNextNode())
    for (Value v : op->getOperands())
      if (v.getDefiningOp() == a)
        return false;
  OpBuilder builder(b);
  Operation *fused = nullptr;
  if (fusion == "matmul_gelu") {
    auto mm = dyn_cast<nn::MatmulOp>(a);
    auto gelu = dyn_cast<nn::GeluOp>(b);
    if (!mm || !gelu)
      return false;
    fused = nn::MatmulGeluOp::create(
        builder, b->getLoc(), mm.getResult().getType(),
        gelu.getResult().getType(), mm.getX(), mm.getW(), mm.getBias(),
        mm.getTransposeRhs());
  } else if (fusion == "add_layernorm") {
    // The training form, which keeps the statistics (a recomputed
    // layernorm runs plain in F and is not fused).
    auto add = dyn_cast<nn::AddOp>(a);
    auto ln = dyn_cast<nn::LayerNormTrainOp>(b);
    if (!add || !ln)
      return false;
    fused = nn::AddLayerNormTrainOp::create(
        builder, b->getLoc(), add.getResult().getType(),
        ln.getResult().getType(), ln.getMean().getType(),
        ln.getRstd().getType(), add.getLhs(), add.getRhs(), ln.getGamma(),
        ln.getBeta(), ln.getEpsAttr());
  } else if (fusion == "add_rmsnorm") {
    auto add = dyn_cast<nn::AddOp>(a);
    auto rms = dyn_cast<nn::RMSNormTrainOp>(b);
    if (!add || !rms)
      return false;
    fused = nn::AddRMSNormTrainOp::create(
        builder, b->getLoc(), add.getResult().getType(),
        rms.getResult().getType(), rms.getRstd().getType(), add.getLhs(),
        add.getRhs(), rms.getGamma(), rms.getEpsAttr());
  }
  if (!fused)
    return false;
  // The group's op id is its first op's (nn.op_id, nn.role).
  for (NamedAttribute attr : a->getDiscardableAttrs())
    fused->setAttr(attr.getName(), attr.getValue());
  a->getResult(0).replaceAllUsesWith(fused->getResult(0));
  for (unsigned i = 0; i < b->getNumResults(); ++i)
    b->getResult(i).replaceAllUsesWith(fused->getResult(i + 1));
  b->erase();
  a->erase();
  return true;
}

namespace {
struct NNFusePass : public pipec::impl::NNFusePassBase<NNFusePass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto forward = module.lookupSymbol<func::FuncOp>("forward");
    auto step = module.lookupSymbol<func::FuncOp>("train_step");
    if (!forward || !step) {
      module.emitError("nn-fuse: needs @forward and @train_step (run "
                       "--nn-autodiff first)");
      return signalPassFailure();
    }
    // The F ops of @train_step by op id, recomputations left out.
    llvm::DenseMap<int64_t, SmallVector<Operation *>> forwardOps;
    for (Operation &op : step.getBody().front()) {
      auto id = op.getAttrOfType<IntegerAttr>("nn.op_id");
      auto role = op.getAttrOfType<StringAttr>("nn.role");
      if (id && role && role.getValue() == "F" && !op.hasAttr("nn.recompute"))
        forwardOps[id.getInt()].push_back(&op);
    }
    // Adjacent compute ops of @forward (parameter reads between them are
    // part of the second op's piece), ids as --nn-autodiff numbers them.
    Operation *previous = nullptr;
    int64_t previousId = -1, id = -1;
    for (Operation &op : forward.getBody().front()) {
      if (op.hasTrait<OpTrait::IsTerminator>())
        break;
      ++id;
      if (isa<nn::ParamOp>(op))
        continue;
      StringRef fusion =
          previous && !previous->hasAttr(kFusedWithPrevious)
              ? fusionOf(previous, &op)
              : StringRef();
      Operation *a = fusion.empty() ? nullptr
                                    : forwardOpOf(forwardOps, previousId);
      Operation *b = a ? forwardOpOf(forwardOps, id) : nullptr;
      if (b && a->getBlock() == b->getBlock() && a->isBeforeInBlock(b) &&
          fuseInTrainStep(fusion, a, b))
        op.setAttr(kFusedWithPrevious, StringAttr::get(&getContext(), fusion));
      previous = &op;
      previousId = id;
    }
  }
};
} // namespace
