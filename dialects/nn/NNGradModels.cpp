//===- NNGradModels.cpp - the vector-Jacobian product of every nn op -*- C++
//-*-===//
//
// Each forward op states here, through GradOpInterface, the form it runs in
// @train_step and the B and W ops of its vector-Jacobian product
// (docs/AUTODIFF.md). The models are attached to the ops when the dialect is
// loaded, so the forward op definitions stay free of training concerns and
// the autodiff pass asks every op the same question.
//
//===----------------------------------------------------------------------===//

#include "dialects/nn/NNGradInterface.h"
#include "dialects/nn/NNGradOps.h"
#include "dialects/nn/NNOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"

using namespace mlir;
using namespace pipec::nn;

#include "dialects/nn/NNGradInterfaces.cpp.inc"

GradContext::~GradContext() = default;

static RankedTensorType tensorOf(Value v) {
  return cast<RankedTensorType>(v.getType());
}

/// The type of per-row statistics of x: x's shape without its last dim.
static RankedTensorType rowStatsType(Value x) {
  RankedTensorType t = tensorOf(x);
  return RankedTensorType::get(t.getShape().drop_back(), t.getElementType());
}

static IntegerAttr useAttr(OpBuilder &b, const ParamUse &use) {
  return b.getI64IntegerAttr(use.use);
}

/// W ops need their parameter straight from nn.param; says which operand
/// of which op is computed instead.
static LogicalResult needsParam(Operation *op, StringRef operand) {
  return op->emitOpError("cannot differentiate: ")
         << operand
         << " must be read straight from nn.param (its gradient is a W op "
            "that adds into the parameter's accumulator)";
}

namespace {

//===----------------------------------------------------------------------===//
// Embeddings
//===----------------------------------------------------------------------===//

/// The table gets a scatter-add (W); the ids get nothing.
struct EmbeddingGrad
    : GradOpInterface::ExternalModel<EmbeddingGrad, EmbeddingOp> {
  LogicalResult buildVJP(Operation *op, GradContext &ctx) const {
    Value dy = ctx.getResultGrad(0);
    if (!dy || !ctx.needsGrad(0))
      return success();
    std::optional<ParamUse> table = ctx.getParamUse(0);
    if (!table)
      return needsParam(op, "the table");
    OpBuilder &b = ctx.getBuilder();
    EmbeddingGradWOp::create(b, ctx.getLoc(), dy, ctx.getOperand(1),
                             table->name, useAttr(b, *table));
    return success();
  }
};

struct PositionEmbeddingGrad
    : GradOpInterface::ExternalModel<PositionEmbeddingGrad,
                                     PositionEmbeddingOp> {
  LogicalResult buildVJP(Operation *op, GradContext &ctx) const {
    Value dy = ctx.getResultGrad(0);
    if (!dy || !ctx.needsGrad(0))
      return success();
    std::optional<ParamUse> table = ctx.getParamUse(0);
    if (!table)
      return needsParam(op, "the table");
    OpBuilder &b = ctx.getBuilder();
    PositionEmbeddingGradWOp::create(b, ctx.getLoc(), dy, table->name,
                                     useAttr(b, *table));
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Linear algebra
//===----------------------------------------------------------------------===//

/// B: dx = dy w^T. W: one GEMM adding x^T dy into the weight's accumulator,
/// with the bias's column sums in the same kernel call.
struct MatmulGrad : GradOpInterface::ExternalModel<MatmulGrad, MatmulOp> {
  LogicalResult buildVJP(Operation *op, GradContext &ctx) const {
    auto mm = cast<MatmulOp>(op);
    Value dy = ctx.getResultGrad(0);
    if (!dy)
      return success();
    OpBuilder &b = ctx.getBuilder();
    Location loc = ctx.getLoc();
    bool hasBias = static_cast<bool>(mm.getBias());
    bool weightGrad = ctx.needsGrad(1), biasGrad = hasBias && ctx.needsGrad(2);
    std::optional<ParamUse> weight = ctx.getParamUse(1);
    std::optional<ParamUse> bias;
    if (hasBias)
      bias = ctx.getParamUse(2);
    if (weightGrad && !weight)
      return needsParam(op, "the weight (rhs)");

    if (ctx.needsGrad(0)) {
      Value dx =
          MatmulGradBOp::create(b, loc, mm.getX().getType(), dy,
                                ctx.getOperand(1), mm.getTransposeRhsAttr());
      ctx.addOperandGrad(0, dx);
    }
    // A bias that is not a parameter is an activation: its gradient is the
    // same column sum, as a B value.
    if (biasGrad && !bias) {
      Value db =
          AddGradRhsOp::create(b, loc, mm.getBias().getType(), dy).getResult();
      ctx.addOperandGrad(2, db);
    }
    if (weightGrad) {
      FlatSymbolRefAttr biasName;
      IntegerAttr biasUse;
      if (biasGrad && bias) {
        biasName = bias->name;
        biasUse = b.getI64IntegerAttr(bias->use);
      }
      MatmulGradWOp::create(b, loc, ctx.getOperand(0), dy,
                            mm.getTransposeRhsAttr(), weight->name,
                            useAttr(b, *weight), biasName, biasUse);
    } else if (biasGrad && bias) {
      AddGradWOp::create(b, loc, dy, bias->name, useAttr(b, *bias));
    }
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Normalisation
//===----------------------------------------------------------------------===//

/// Trains as nn.layernorm_train (keeping mean and rstd); B and W read them.
struct LayerNormGrad
    : GradOpInterface::ExternalModel<LayerNormGrad, LayerNormOp> {
  LogicalResult buildTrainingForward(Operation *op, OpBuilder &b,
                                     ValueRange operands, GradContext &,
                                     bool keep, SmallVectorImpl<Value> &results,
                                     SmallVectorImpl<Value> &saved) const {
    auto ln = cast<LayerNormOp>(op);
    if (!keep) {
      results.push_back(LayerNormOp::create(b, op->getLoc(), ln.getType(),
                                            operands[0], operands[1],
                                            operands[2], ln.getEpsAttr()));
      return success();
    }
    RankedTensorType stats = rowStatsType(operands[0]);
    auto train = LayerNormTrainOp::create(b, op->getLoc(), ln.getType(), stats,
                                          stats, operands[0], operands[1],
                                          operands[2], ln.getEpsAttr());
    results.push_back(train.getResult());
    saved.append({train.getMean(), train.getRstd()});
    return success();
  }

  LogicalResult buildVJP(Operation *op, GradContext &ctx) const {
    Value dy = ctx.getResultGrad(0);
    if (!dy)
      return success();
    OpBuilder &b = ctx.getBuilder();
    Location loc = ctx.getLoc();
    Value x = ctx.getOperand(0), mean = ctx.getSaved(0), rstd = ctx.getSaved(1);
    if (ctx.needsGrad(0))
      ctx.addOperandGrad(0, LayerNormGradBOp::create(b, loc, x.getType(), dy, x,
                                                     mean, rstd,
                                                     ctx.getOperand(1)));
    if (!ctx.needsGrad(1) && !ctx.needsGrad(2))
      return success();
    std::optional<ParamUse> gamma = ctx.getParamUse(1),
                            beta = ctx.getParamUse(2);
    if (!gamma)
      return needsParam(op, "gamma");
    if (!beta)
      return needsParam(op, "beta");
    LayerNormGradWOp::create(b, loc, dy, x, mean, rstd, gamma->name,
                             useAttr(b, *gamma), beta->name, useAttr(b, *beta));
    return success();
  }

  bool isRecomputable(Operation *) const { return true; }
};

/// Trains as nn.rmsnorm_train (keeping rstd).
struct RMSNormGrad : GradOpInterface::ExternalModel<RMSNormGrad, RMSNormOp> {
  LogicalResult buildTrainingForward(Operation *op, OpBuilder &b,
                                     ValueRange operands, GradContext &,
                                     bool keep, SmallVectorImpl<Value> &results,
                                     SmallVectorImpl<Value> &saved) const {
    auto rn = cast<RMSNormOp>(op);
    if (!keep) {
      results.push_back(RMSNormOp::create(b, op->getLoc(), rn.getType(),
                                          operands[0], operands[1],
                                          rn.getEpsAttr()));
      return success();
    }
    auto train = RMSNormTrainOp::create(b, op->getLoc(), rn.getType(),
                                        rowStatsType(operands[0]), operands[0],
                                        operands[1], rn.getEpsAttr());
    results.push_back(train.getResult());
    saved.push_back(train.getRstd());
    return success();
  }

  LogicalResult buildVJP(Operation *op, GradContext &ctx) const {
    Value dy = ctx.getResultGrad(0);
    if (!dy)
      return success();
    OpBuilder &b = ctx.getBuilder();
    Location loc = ctx.getLoc();
    Value x = ctx.getOperand(0), rstd = ctx.getSaved(0);
    if (ctx.needsGrad(0))
      ctx.addOperandGrad(0, RMSNormGradBOp::create(b, loc, x.getType(), dy, x,
                                                   rstd, ctx.getOperand(1)));
    if (!ctx.needsGrad(1))
      return success();
    std::optional<ParamUse> gamma = ctx.getParamUse(1);
    if (!gamma)
      return needsParam(op, "gamma");
    RMSNormGradWOp::create(b, loc, dy, x, rstd, gamma->name,
                           useAttr(b, *gamma));
    return success();
  }

  bool isRecomputable(Operation *) const { return true; }
};

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

/// d(lhs) = dy; d(rhs) = dy, summed over the broadcast rows. A parameter
/// operand's gradient goes straight into its accumulator (W).
struct AddGrad : GradOpInterface::ExternalModel<AddGrad, AddOp> {
  LogicalResult buildVJP(Operation *op, GradContext &ctx) const {
    Value dy = ctx.getResultGrad(0);
    if (!dy)
      return success();
    OpBuilder &b = ctx.getBuilder();
    Location loc = ctx.getLoc();
    for (unsigned i = 0; i < 2; ++i) {
      if (!ctx.needsGrad(i))
        continue;
      if (std::optional<ParamUse> p = ctx.getParamUse(i)) {
        AddGradWOp::create(b, loc, dy, p->name, useAttr(b, *p));
        continue;
      }
      Type type = op->getOperand(i).getType();
      if (type == dy.getType())
        ctx.addOperandGrad(i, dy);
      else
        ctx.addOperandGrad(i, AddGradRhsOp::create(b, loc, type, dy));
    }
    return success();
  }
};

/// d(lhs) = dy * rhs; d(rhs) = column sums of dy * lhs (W for a parameter).
struct MulGrad : GradOpInterface::ExternalModel<MulGrad, MulOp> {
  LogicalResult buildVJP(Operation *op, GradContext &ctx) const {
    Value dy = ctx.getResultGrad(0);
    if (!dy)
      return success();
    OpBuilder &b = ctx.getBuilder();
    Location loc = ctx.getLoc();
    if (ctx.needsGrad(0))
      ctx.addOperandGrad(0, MulGradLhsOp::create(b, loc,
                                                 op->getOperand(0).getType(),
                                                 dy, ctx.getOperand(1)));
    if (!ctx.needsGrad(1))
      return success();
    if (std::optional<ParamUse> p = ctx.getParamUse(1)) {
      MulGradWOp::create(b, loc, dy, ctx.getOperand(0), p->name,
                         useAttr(b, *p));
      return success();
    }
    ctx.addOperandGrad(1,
                       MulGradRhsOp::create(b, loc, op->getOperand(1).getType(),
                                            dy, ctx.getOperand(0)));
    return success();
  }
};

/// GELU and SiLU: dx from dy and the forward input (their output is not
/// needed, so recomputing them only serves their consumers).
template <typename FwdOp, typename GradOp>
struct ActivationGrad
    : GradOpInterface::ExternalModel<ActivationGrad<FwdOp, GradOp>, FwdOp> {
  LogicalResult buildVJP(Operation *, GradContext &ctx) const {
    Value dy = ctx.getResultGrad(0);
    if (!dy || !ctx.needsGrad(0))
      return success();
    ctx.addOperandGrad(0, GradOp::create(ctx.getBuilder(), ctx.getLoc(), dy,
                                         ctx.getOperand(0)));
    return success();
  }
  bool isRecomputable(Operation *) const { return true; }
};

/// Softmax's backward reads its output.
struct SoftmaxGrad : GradOpInterface::ExternalModel<SoftmaxGrad, SoftmaxOp> {
  LogicalResult buildVJP(Operation *, GradContext &ctx) const {
    Value dy = ctx.getResultGrad(0);
    if (!dy || !ctx.needsGrad(0))
      return success();
    ctx.addOperandGrad(0, SoftmaxGradOp::create(ctx.getBuilder(), ctx.getLoc(),
                                                dy, ctx.getResult(0)));
    return success();
  }
  bool isRecomputable(Operation *) const { return true; }
};

//===----------------------------------------------------------------------===//
// Data movement
//===----------------------------------------------------------------------===//

struct SliceGrad : GradOpInterface::ExternalModel<SliceGrad, SliceOp> {
  LogicalResult buildVJP(Operation *op, GradContext &ctx) const {
    auto slice = cast<SliceOp>(op);
    Value dy = ctx.getResultGrad(0);
    if (!dy || !ctx.needsGrad(0))
      return success();
    ctx.addOperandGrad(0, SliceGradOp::create(ctx.getBuilder(), ctx.getLoc(),
                                              slice.getInput().getType(), dy,
                                              slice.getAxisAttr(),
                                              slice.getOffsetAttr()));
    return success();
  }
};

/// A reshape back to the input's shape (a view; reshapeBackwardB copies).
struct ReshapeGrad : GradOpInterface::ExternalModel<ReshapeGrad, ReshapeOp> {
  LogicalResult buildVJP(Operation *op, GradContext &ctx) const {
    Value dy = ctx.getResultGrad(0);
    if (!dy || !ctx.needsGrad(0))
      return success();
    ctx.addOperandGrad(0, ReshapeOp::create(ctx.getBuilder(), ctx.getLoc(),
                                            op->getOperand(0).getType(), dy));
    return success();
  }
};

/// A transpose by the inverse permutation.
struct TransposeGrad
    : GradOpInterface::ExternalModel<TransposeGrad, TransposeOp> {
  LogicalResult buildVJP(Operation *op, GradContext &ctx) const {
    auto tr = cast<TransposeOp>(op);
    Value dy = ctx.getResultGrad(0);
    if (!dy || !ctx.needsGrad(0))
      return success();
    ArrayRef<int64_t> perm = tr.getPerm();
    SmallVector<int64_t> inverse(perm.size());
    for (auto [i, p] : llvm::enumerate(perm))
      inverse[p] = i;
    OpBuilder &b = ctx.getBuilder();
    ctx.addOperandGrad(0, TransposeOp::create(b, ctx.getLoc(),
                                              tr.getInput().getType(), dy,
                                              b.getDenseI64ArrayAttr(inverse)));
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

struct RopeGrad : GradOpInterface::ExternalModel<RopeGrad, RopeOp> {
  LogicalResult buildVJP(Operation *op, GradContext &ctx) const {
    auto rope = cast<RopeOp>(op);
    Value dy = ctx.getResultGrad(0);
    if (!dy || !ctx.needsGrad(0))
      return success();
    ctx.addOperandGrad(0, RopeGradOp::create(ctx.getBuilder(), ctx.getLoc(), dy,
                                             rope.getHeadsAttr(),
                                             rope.getThetaAttr()));
    return success();
  }
  bool isRecomputable(Operation *) const { return true; }
};

/// Trains as nn.attention_train (keeping the per-row log-sum-exp); the
/// backward recomputes the probabilities from it.
struct AttentionGrad
    : GradOpInterface::ExternalModel<AttentionGrad, AttentionOp> {
  LogicalResult buildTrainingForward(Operation *op, OpBuilder &b,
                                     ValueRange operands, GradContext &,
                                     bool keep, SmallVectorImpl<Value> &results,
                                     SmallVectorImpl<Value> &saved) const {
    auto at = cast<AttentionOp>(op);
    if (!keep) {
      results.push_back(AttentionOp::create(
          b, op->getLoc(), at.getType(), operands[0], operands[1], operands[2],
          at.getHeadsAttr(), at.getKvHeadsAttr(), at.getCausalAttr(),
          at.getScaleAttr()));
      return success();
    }
    RankedTensorType q = tensorOf(operands[0]);
    auto lse = RankedTensorType::get(
        {q.getDimSize(0), at.getHeadsAttr().getInt(), q.getDimSize(1)},
        q.getElementType());
    auto train = AttentionTrainOp::create(
        b, op->getLoc(), at.getType(), lse, operands[0], operands[1],
        operands[2], at.getHeadsAttr(), at.getKvHeadsAttr(), at.getCausalAttr(),
        at.getScaleAttr());
    results.push_back(train.getResult());
    saved.push_back(train.getLse());
    return success();
  }

  LogicalResult buildVJP(Operation *op, GradContext &ctx) const {
    auto at = cast<AttentionOp>(op);
    Value dy = ctx.getResultGrad(0);
    if (!dy)
      return success();
    Value q = ctx.getOperand(0), k = ctx.getOperand(1), v = ctx.getOperand(2);
    auto grad = AttentionGradOp::create(
        ctx.getBuilder(), ctx.getLoc(), q.getType(), k.getType(), v.getType(),
        dy, q, k, v, ctx.getResult(0), ctx.getSaved(0), at.getHeadsAttr(),
        at.getKvHeadsAttr(), at.getCausalAttr(), at.getScaleAttr());
    for (unsigned i = 0; i < 3; ++i)
      if (ctx.needsGrad(i))
        ctx.addOperandGrad(i, grad->getResult(i));
    return success();
  }

  bool isRecomputable(Operation *) const { return true; }
};

//===----------------------------------------------------------------------===//
// Loss
//===----------------------------------------------------------------------===//

/// Trains as nn.softmax_cross_entropy: the loss and dlogits in one pass,
/// scaled by the step's loss scale. Its VJP hands dlogits on; the loss's own
/// cotangent is by definition the loss scale, already applied.
struct CrossEntropyGrad
    : GradOpInterface::ExternalModel<CrossEntropyGrad, CrossEntropyOp> {
  LogicalResult buildTrainingForward(Operation *op, OpBuilder &b,
                                     ValueRange operands, GradContext &ctx,
                                     bool, SmallVectorImpl<Value> &results,
                                     SmallVectorImpl<Value> &saved) const {
    auto ce = cast<CrossEntropyOp>(op);
    auto fused = SoftmaxCrossEntropyOp::create(
        b, op->getLoc(), ce.getType(), operands[0].getType(), operands[0],
        operands[1], ctx.getLossScale(), ce.getClassesAttr());
    results.push_back(fused.getLoss());
    saved.push_back(fused.getDlogits());
    return success();
  }

  LogicalResult buildVJP(Operation *, GradContext &ctx) const {
    if (ctx.getResultGrad(0) && ctx.needsGrad(0))
      ctx.addOperandGrad(0, ctx.getSaved(0));
    return success();
  }
};

} // namespace

void pipec::nn::attachGradOpInterfaceModels(MLIRContext &context) {
  EmbeddingOp::attachInterface<EmbeddingGrad>(context);
  PositionEmbeddingOp::attachInterface<PositionEmbeddingGrad>(context);
  MatmulOp::attachInterface<MatmulGrad>(context);
  LayerNormOp::attachInterface<LayerNormGrad>(context);
  RMSNormOp::attachInterface<RMSNormGrad>(context);
  AddOp::attachInterface<AddGrad>(context);
  MulOp::attachInterface<MulGrad>(context);
  GeluOp::attachInterface<ActivationGrad<GeluOp, GeluGradOp>>(context);
  SiluOp::attachInterface<ActivationGrad<SiluOp, SiluGradOp>>(context);
  SoftmaxOp::attachInterface<SoftmaxGrad>(context);
  SliceOp::attachInterface<SliceGrad>(context);
  ReshapeOp::attachInterface<ReshapeGrad>(context);
  TransposeOp::attachInterface<TransposeGrad>(context);
  RopeOp::attachInterface<RopeGrad>(context);
  AttentionOp::attachInterface<AttentionGrad>(context);
  CrossEntropyOp::attachInterface<CrossEntropyGrad>(context);
}
