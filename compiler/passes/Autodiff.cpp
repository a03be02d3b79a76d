//===- Autodiff.cpp - @forward -> @train_step and @optimizer_step -*- C++
//-*-===//
//
// The pass knows no op by name: every op of @forward states its training
// form and its vector-Jacobian product through GradOpInterface
// (dialects/nn/NNGradModels.cpp). The pass owns what is global: which values
// need gradients, the numbering of parameter uses, the order in which
// gradient contributions are summed, recomputation, the roles and ids of the
// ops, and the optimizer step (docs/AUTODIFF.md).
//
//===----------------------------------------------------------------------===//

#include "compiler/passes/Passes.h"

#include "dialects/nn/NNGradInterface.h"
#include "dialects/nn/NNGradOps.h"
#include "dialects/nn/NNOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/StringSet.h"

namespace pipec {
#define GEN_PASS_DEF_NNAUTODIFFPASS
#include "compiler/passes/Passes.h.inc"
} // namespace pipec

using namespace mlir;
using namespace pipec;
using namespace pipec::nn;

namespace {

/// The hyperparameters of the module's `nn.train` the optimizer step uses.
struct TrainSettings {
  double lr, minLr, beta1, beta2, eps, weightDecay, gradClip;
  int64_t warmupSteps, decaySteps;
  std::string decay;
};

/// Collects the ops a builder creates, so the pass can tag them.
struct CreatedOps : public OpBuilder::Listener {
  SmallVector<Operation *> ops;
  void notifyOperationInserted(Operation *op, OpBuilder::InsertPoint) override {
    ops.push_back(op);
  }
};

/// Everything the differentiation of one @forward needs; implements the
/// context each op's VJP builder sees.
class Differentiator : public GradContext {
public:
  Differentiator(func::FuncOp forward, func::FuncOp trainStep,
                 const llvm::StringSet<> &recomputeNames, bool recomputeAll)
      : forward(forward), builder(trainStep.getContext()),
        recomputeNames(recomputeNames), recomputeAll(recomputeAll) {
    builder.setListener(&created);
    builder.setInsertionPointToStart(&trainStep.getBody().front());
    lossScale = trainStep.getArguments().back();
    for (auto [fwdArg, trainArg] :
         llvm::zip(forward.getArguments(), trainStep.getArguments()))
      mapping.map(fwdArg, trainArg);
  }

  /// Numbers the ops and the parameter uses, and finds the active values.
  void analyse();
  /// Emits the forward part; returns the @train_step value of the loss.
  FailureOr<Value> emitForward(Value fwdLoss);
  /// Emits the backward part, seeded at the loss.
  LogicalResult emitBackward(Value fwdLoss);
  /// Number of accumulators (uses) of each parameter.
  int64_t usesOf(StringRef name) const { return useCounts.lookup(name); }
  /// Whether `op` is recomputed rather than kept.
  bool isRecomputed(Operation *op);

  // GradContext.
  OpBuilder &getBuilder() override { return builder; }
  Location getLoc() override { return current->getLoc(); }
  Value getOperand(unsigned i) override {
    return valueForBackward(current->getOperand(i));
  }
  Value getResult(unsigned i) override {
    return valueForBackward(current->getResult(i));
  }
  Value getSaved(unsigned i) override;
  Value getResultGrad(unsigned i) override {
    return grads.lookup(current->getResult(i));
  }
  bool needsGrad(unsigned i) override {
    return active.contains(current->getOperand(i));
  }
  std::optional<ParamUse> getParamUse(unsigned i) override {
    auto it = paramUses.find({current, i});
    if (it == paramUses.end())
      return std::nullopt;
    return it->second;
  }
  void addOperandGrad(unsigned i, Value grad) override;
  Value getLossScale() override { return lossScale; }

private:
  /// A forward value as backward ops read it: the recomputed one when its
  /// producer is recomputed, else the @train_step copy.
  Value valueForBackward(Value fwd);
  /// The results and state of `op` recomputed at the builder's point (once).
  LogicalResult ensureRecomputed(Operation *op);
  /// Tags the ops created since the last call that have no role yet.
  void tagCreated(StringRef role, int64_t id, bool recompute = false);

  func::FuncOp forward;
  OpBuilder builder;
  CreatedOps created;
  const llvm::StringSet<> &recomputeNames;
  bool recomputeAll;
  Value lossScale;

  /// The @forward op being handled.
  Operation *current = nullptr;
  IRMapping mapping;
  DenseMap<Operation *, int64_t> ids;
  DenseMap<std::pair<Operation *, unsigned>, ParamUse> paramUses;
  llvm::StringMap<int64_t> useCounts;
  DenseSet<Value> active;
  /// Kept state of each op's training form.
  DenseMap<Operation *, SmallVector<Value>> saved;
  /// Recomputed results and state.
  DenseMap<Operation *, std::pair<SmallVector<Value>, SmallVector<Value>>>
      recomputed;
  /// Cotangent of each forward value (the sum of its contributions so far).
  DenseMap<Value, Value> grads;
  bool recomputeFailed = false;
};

} // namespace

void Differentiator::analyse() {
  int64_t id = 0;
  for (Operation &op : forward.getBody().front().without_terminator()) {
    ids[&op] = id++;
    for (OpOperand &operand : op.getOpOperands()) {
      if (auto param = operand.get().getDefiningOp<ParamOp>()) {
        int64_t &count = useCounts[param.getName()];
        paramUses[{&op, operand.getOperandNumber()}] =
            ParamUse{param.getNameAttr(), count++};
      }
    }
    bool isActive = isa<ParamOp>(op) ||
                    llvm::any_of(op.getOperands(),
                                 [&](Value v) { return active.contains(v); });
    if (isActive)
      for (Value r : op.getResults())
        if (auto shaped = dyn_cast<ShapedType>(r.getType());
            shaped && isa<FloatType>(shaped.getElementType()))
          active.insert(r);
  }
}

bool Differentiator::isRecomputed(Operation *op) {
  auto grad = dyn_cast<GradOpInterface>(op);
  if (!grad)
    return false;
  StringRef name = op->getName().stripDialect();
  if (recomputeNames.contains(name))
    return true;
  return recomputeAll && grad.isRecomputable();
}

void Differentiator::tagCreated(StringRef role, int64_t id, bool recompute) {
  MLIRContext *ctx = builder.getContext();
  for (Operation *op : created.ops) {
    if (op->hasAttr(kRoleAttrName))
      continue;
    StringRef r =
        op->hasTrait<pipec::nn::OpTrait::WeightGradient>() ? "W" : role;
    op->setAttr(kRoleAttrName, StringAttr::get(ctx, r));
    op->setAttr(kOpIdAttrName, builder.getI64IntegerAttr(id));
    if (recompute)
      op->setAttr(kRecomputeAttrName, UnitAttr::get(ctx));
  }
  created.ops.clear();
}

FailureOr<Value> Differentiator::emitForward(Value fwdLoss) {
  for (Operation &op : forward.getBody().front().without_terminator()) {
    current = &op;
    if (isa<ParamOp>(op)) {
      builder.clone(op, mapping);
      tagCreated("F", ids[&op]);
      continue;
    }
    auto grad = cast<GradOpInterface>(op);
    SmallVector<Value> operands, results;
    for (Value v : op.getOperands())
      operands.push_back(mapping.lookup(v));
    if (failed(grad.buildTrainingForward(
            builder, operands, *this, !isRecomputed(&op), results, saved[&op])))
      return failure();
    if (results.size() != op.getNumResults())
      return op.emitOpError("training form returned ")
             << results.size() << " values for " << op.getNumResults()
             << " results";
    mapping.map(op.getResults(), results);
    tagCreated("F", ids[&op]);
  }
  return mapping.lookup(fwdLoss);
}

Value Differentiator::valueForBackward(Value fwd) {
  Operation *def = fwd.getDefiningOp();
  if (def && isRecomputed(def)) {
    if (failed(ensureRecomputed(def)))
      return mapping.lookup(fwd);
    return recomputed[def].first[cast<OpResult>(fwd).getResultNumber()];
  }
  return mapping.lookup(fwd);
}

LogicalResult Differentiator::ensureRecomputed(Operation *op) {
  if (recomputed.count(op))
    return success();
  SmallVector<Value> operands;
  for (Value v : op->getOperands())
    operands.push_back(valueForBackward(v));
  // The recomputed ops are tagged here, before the VJP that asked for them.
  SmallVector<Operation *> before = std::move(created.ops);
  created.ops.clear();
  std::pair<SmallVector<Value>, SmallVector<Value>> values;
  Operation *asking = current;
  current = op;
  LogicalResult built = cast<GradOpInterface>(op).buildTrainingForward(
      builder, operands, *this, /*keep=*/true, values.first, values.second);
  current = asking;
  tagCreated("B", ids[op], /*recompute=*/true);
  created.ops = std::move(before);
  if (failed(built) || values.first.size() != op->getNumResults()) {
    recomputeFailed = true;
    return op->emitOpError("cannot be recomputed");
  }
  recomputed[op] = std::move(values);
  return success();
}

Value Differentiator::getSaved(unsigned i) {
  SmallVector<Value> *state = &saved[current];
  if (isRecomputed(current)) {
    if (failed(ensureRecomputed(current)))
      return nullptr;
    state = &recomputed[current].second;
  }
  return i < state->size() ? (*state)[i] : Value();
}

void Differentiator::addOperandGrad(unsigned i, Value grad) {
  Value operand = current->getOperand(i);
  if (!grad || !active.contains(operand))
    return;
  if (std::optional<ParamUse> use = getParamUse(i)) {
    AccumulateGradOp::create(builder, current->getLoc(), grad, use->name,
                             builder.getI64IntegerAttr(use->use));
    return;
  }
  Value &sum = grads[operand];
  sum =
      sum ? GradAddOp::create(builder, current->getLoc(), sum, grad).getResult()
          : grad;
}

LogicalResult Differentiator::emitBackward(Value fwdLoss) {
  grads[fwdLoss] = lossScale;
  Block &body = forward.getBody().front();
  for (Operation &op : llvm::reverse(body.without_terminator())) {
    if (isa<ParamOp>(op) ||
        llvm::none_of(op.getResults(), [&](Value r) { return grads.count(r); }))
      continue;
    current = &op;
    if (failed(cast<GradOpInterface>(op).buildVJP(*this)) || recomputeFailed)
      return failure();
    tagCreated("B", ids[&op]);
  }
  return success();
}

//===----------------------------------------------------------------------===//
// The pass
//===----------------------------------------------------------------------===//

/// Reads the keys of `nn.train` the optimizer step needs; names the one
/// missing or of the wrong kind.
static FailureOr<TrainSettings> readTrain(ModuleOp module) {
  auto train = module->getAttrOfType<DictionaryAttr>("nn.train");
  if (!train)
    return module.emitError("nn-autodiff: the module has no nn.train "
                            "dictionary (the model's train section)");
  TrainSettings s;
  auto real = [&](StringRef key, double &out) -> LogicalResult {
    if (auto f = train.getAs<FloatAttr>(key)) {
      out = f.getValueAsDouble();
      return success();
    }
    if (auto n = train.getAs<IntegerAttr>(key)) {
      out = static_cast<double>(n.getInt());
      return success();
    }
    return module.emitError("nn-autodiff: nn.train needs a number '")
           << key << "'";
  };
  auto integer = [&](StringRef key, int64_t &out) -> LogicalResult {
    if (auto n = train.getAs<IntegerAttr>(key)) {
      out = n.getInt();
      return success();
    }
    return module.emitError("nn-autodiff: nn.train needs an integer '")
           << key << "'";
  };
  if (failed(real("lr", s.lr)) || failed(real("min_lr", s.minLr)) ||
      failed(real("beta1", s.beta1)) || failed(real("beta2", s.beta2)) ||
      failed(real("eps", s.eps)) ||
      failed(real("weight_decay", s.weightDecay)) ||
      failed(real("grad_clip", s.gradClip)) ||
      failed(integer("warmup_steps", s.warmupSteps)) ||
      failed(integer("decay_steps", s.decaySteps)))
    return failure();
  auto decay = train.getAs<StringAttr>("decay");
  if (!decay ||
      (decay.getValue() != "cosine" && decay.getValue() != "constant"))
    return module.emitError("nn-autodiff: nn.train needs 'decay' = \"cosine\" "
                            "or \"constant\"");
  s.decay = decay.getValue().str();
  return s;
}

/// The loss must be an nn.cross_entropy that only the return reads.
static FailureOr<Value> findLoss(func::FuncOp forward) {
  Block &body = forward.getBody().front();
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  if (ret.getNumOperands() != 1)
    return forward.emitError("nn-autodiff: @forward must return one value, "
                             "the loss; it returns ")
           << ret.getNumOperands();
  Value loss = ret.getOperand(0);
  auto ce = loss.getDefiningOp<CrossEntropyOp>();
  if (!ce)
    return ret.emitError("nn-autodiff: the returned loss must be the result "
                         "of nn.cross_entropy");
  if (!loss.hasOneUse())
    return ce.emitError("nn-autodiff: the loss may only be returned; another "
                        "op reads it");
  for (Operation &op : body.without_terminator()) {
    if (isa<CrossEntropyOp>(op) && &op != ce.getOperation())
      return op.emitError("nn-autodiff: only the returned loss may be an "
                          "nn.cross_entropy");
    if (!isa<ParamOp, GradOpInterface>(op))
      return op.emitError("nn-autodiff: cannot differentiate '")
             << op.getName() << "': it has no gradient (GradOpInterface)";
  }
  return loss;
}

namespace {
struct NNAutodiffPass : public pipec::impl::NNAutodiffPassBase<NNAutodiffPass> {
  using NNAutodiffPassBase::NNAutodiffPassBase;
  void runOnOperation() override;

private:
  /// Checks the recompute option against the ops of @forward.
  LogicalResult readRecompute(func::FuncOp forward, llvm::StringSet<> &names,
                              bool &all);
  void buildOptimizerStep(ModuleOp module, func::FuncOp after,
                          const TrainSettings &train,
                          const Differentiator &diff);
};
} // namespace

LogicalResult NNAutodiffPass::readRecompute(func::FuncOp forward,
                                            llvm::StringSet<> &names,
                                            bool &all) {
  MLIRContext *ctx = &getContext();
  for (const std::string &name : recompute) {
    if (name == "all") {
      all = true;
      continue;
    }
    auto opName = RegisteredOperationName::lookup("nn." + name, ctx);
    if (!opName || !opName->hasInterface<GradOpInterface>())
      return forward.emitError("nn-autodiff: recompute names '")
             << name << "', which is not an nn op with a gradient";
    names.insert(name);
  }
  for (Operation &op : forward.getBody().front().without_terminator()) {
    auto grad = dyn_cast<GradOpInterface>(op);
    if (grad && names.contains(op.getName().stripDialect()) &&
        !grad.isRecomputable())
      return op.emitError("nn-autodiff: recompute names '")
             << op.getName().stripDialect()
             << "', but this op cannot be recomputed";
  }
  return success();
}

void NNAutodiffPass::buildOptimizerStep(ModuleOp module, func::FuncOp after,
                                        const TrainSettings &train,
                                        const Differentiator &diff) {
  MLIRContext *ctx = &getContext();
  OpBuilder b(ctx);
  b.setInsertionPointAfter(after);
  Location loc = after.getLoc();
  auto f64 = RankedTensorType::get({}, b.getF64Type());
  auto i64 = RankedTensorType::get({}, b.getIntegerType(64));
  auto fn = func::FuncOp::create(b, loc, "optimizer_step",
                                 b.getFunctionType({i64}, {f64, f64}));
  fn.setArgAttr(0, "nn.name", b.getStringAttr("step"));
  fn.setResultAttr(0, "nn.name", b.getStringAttr("grad_norm"));
  fn.setResultAttr(1, "nn.name", b.getStringAttr("lr"));
  Block *body = fn.addEntryBlock();
  b.setInsertionPointToStart(body);
  Value step = body->getArgument(0);

  SmallVector<ParameterOp> params(module.getOps<ParameterOp>());
  SmallVector<Value> grads, squares;
  for (ParameterOp p : params) {
    Value g =
        SumUsesOp::create(b, p.getLoc(), p.getTensorType(),
                          FlatSymbolRefAttr::get(p.getSymNameAttr()),
                          b.getI64IntegerAttr(diff.usesOf(p.getSymName())));
    grads.push_back(g);
    squares.push_back(SumSquaresOp::create(b, p.getLoc(), f64, g));
  }
  Value norm = GradNormOp::create(b, loc, f64, squares);
  Value clip =
      ClipScaleOp::create(b, loc, f64, norm, b.getF64FloatAttr(train.gradClip));
  Value lr = LrScheduleOp::create(
      b, loc, f64, step, b.getF64FloatAttr(train.lr),
      b.getI64IntegerAttr(train.warmupSteps), b.getStringAttr(train.decay),
      b.getI64IntegerAttr(train.decaySteps), b.getF64FloatAttr(train.minLr));
  for (auto [p, g] : llvm::zip(params, grads)) {
    double wd = p.getTensorType().getRank() >= 2 ? train.weightDecay : 0.0;
    AdamWOp::create(b, p.getLoc(), FlatSymbolRefAttr::get(p.getSymNameAttr()),
                    g, lr, clip, step, b.getF64FloatAttr(train.beta1),
                    b.getF64FloatAttr(train.beta2),
                    b.getF64FloatAttr(train.eps), b.getF64FloatAttr(wd));
  }
  func::ReturnOp::create(b, loc, ValueRange{norm, lr});
}

void NNAutodiffPass::runOnOperation() {
  ModuleOp module = getOperation();
  auto forward = module.lookupSymbol<func::FuncOp>("forward");
  if (!forward || forward.isExternal()) {
    module.emitError("nn-autodiff: no func.func @forward with a body to "
                     "differentiate");
    return signalPassFailure();
  }
  for (StringRef name : {"train_step", "optimizer_step"})
    if (Operation *existing = module.lookupSymbol(name)) {
      existing->emitError("nn-autodiff: @")
          << name << " exists already; the pass builds it from @forward";
      return signalPassFailure();
    }
  if (!forward.getBody().hasOneBlock()) {
    forward.emitError("nn-autodiff: @forward must have a single block");
    return signalPassFailure();
  }
  FailureOr<TrainSettings> train = readTrain(module);
  FailureOr<Value> loss = findLoss(forward);
  llvm::StringSet<> recomputeNames;
  bool recomputeAll = false;
  if (failed(train) || failed(loss) ||
      failed(readRecompute(forward, recomputeNames, recomputeAll)))
    return signalPassFailure();

  // @train_step: @forward's arguments plus the loss scale.
  OpBuilder b(&getContext());
  b.setInsertionPointAfter(forward);
  SmallVector<Type> inputs(forward.getArgumentTypes());
  inputs.push_back(RankedTensorType::get({}, b.getF64Type()));
  auto trainStep =
      func::FuncOp::create(b, forward.getLoc(), "train_step",
                           b.getFunctionType(inputs, forward.getResultTypes()));
  for (unsigned i = 0; i < forward.getNumArguments(); ++i)
    trainStep.setArgAttrs(i, forward.getArgAttrDict(i));
  trainStep.setArgAttr(forward.getNumArguments(), "nn.name",
                       b.getStringAttr("loss_scale"));
  trainStep.setResultAttr(0, "nn.name", b.getStringAttr("loss"));
  trainStep.addEntryBlock();

  Differentiator diff(forward, trainStep, recomputeNames, recomputeAll);
  diff.analyse();
  FailureOr<Value> trainLoss = diff.emitForward(*loss);
  if (failed(trainLoss) || failed(diff.emitBackward(*loss))) {
    trainStep.erase();
    return signalPassFailure();
  }
  b.setInsertionPointToEnd(&trainStep.getBody().front());
  func::ReturnOp::create(b, forward.getLoc(), ValueRange{*trainLoss});

  buildOptimizerStep(module, trainStep, *train, diff);
}
