//===- NNGradCost.cpp - the cost of training, backward and optimizer ops -*- C++
//-*-===//
//
// CostOpInterface for the ops --nn-autodiff builds, so a partitioner can sum
// the F, B and W time of a chunk over the ops of @train_step grouped by
// `nn.op_id` and `nn.role`. Conventions are those of NNCost.cpp (a
// multiply-add is 2 FLOPs, everything else 1; bytes are elements times
// element size). N is the element count of dy (of the result for forward
// forms), M K N the GEMM sizes, R the rows of an op over a last axis.
//
//  op                         FLOPs
//  layernorm_train            8 N (as layernorm)
//  rmsnorm_train              4 N (as rmsnorm)
//  attention_train            as attention
//  matmul_gelu                2 M K N (+ M N bias) + 8 M N (the GELU)
//  add_layernorm_train        9 N; add_rmsnorm_train 5 N (the add, then the norm)
//  softmax_cross_entropy      12 B T V + 3 B T: the forward's 5 per logit and
//                             3 per row, then 7 per logit for the gradient
//                             (max, exp, sum, divide, subtract, scale)
//  matmul_grad_b              2 M K N
//  matmul_grad_w              2 M K N (+ M N for the bias's column sums)
//  layernorm_grad_b / _w      10 N / 5 N
//  rmsnorm_grad_b / _w        8 N / 3 N
//  gelu_grad, silu_grad       14 N, 7 N (the derivative recomputed from x)
//  softmax_grad               4 N
//  add_grad_rhs, add_grad_w   N (column sums)
//  mul_grad_lhs               N
//  mul_grad_rhs, mul_grad_w   2 N
//  slice_grad                 0 (data movement)
//  rope_grad                  3 N
//  attention_grad             B Hq (P (10 Dh + 4) + 2 T Dh): per scored pair,
//                             q.k again, exp(s - lse), do.v, ds, and the
//                             three products into dq, dk, dv; per row do.o
//  grad_add, accumulate_grad  N
//  embedding_grad_w           N, position_embedding_grad_w N
//  sum_uses                   N (uses - 1)
//  sum_squares                2 N
//  grad_norm                  operands + 1; clip_scale 2; lr_schedule 10
//  adamw                      16 N
//
// Bytes read are the operands plus, for W ops, the accumulators they add
// into (read and written); adamw reads and writes the parameter and its two
// moments. The saved-activation number is 0 for all of them: in @train_step
// what backward keeps is explicit, so the memory planner measures it from
// the liveness of values instead.
//
//===----------------------------------------------------------------------===//

#include "dialects/nn/NNGradOps.h"
#include "dialects/nn/NNOps.h"

#include "mlir/IR/SymbolTable.h"

using namespace mlir;
using namespace pipec::nn;

static RankedTensorType tensorOf(Value v) {
  return cast<RankedTensorType>(v.getType());
}
static int64_t bytesOf(Type t) {
  auto r = cast<RankedTensorType>(t);
  return r.getNumElements() * ((r.getElementTypeBitWidth() + 7) / 8);
}
static int64_t elementsOf(Value v) { return tensorOf(v).getNumElements(); }

/// Bytes of the parameters an op names by symbol (its accumulators, or for
/// adamw the parameter itself); 0 for an unresolved name, which the verifier
/// reports.
static int64_t parameterBytes(Operation *op) {
  int64_t bytes = 0;
  for (NamedAttribute attr : op->getAttrs())
    if (auto ref = dyn_cast<FlatSymbolRefAttr>(attr.getValue()))
      if (auto param =
              SymbolTable::lookupNearestSymbolFrom<ParameterOp>(op, ref))
        bytes += bytesOf(param.getTensorType());
  return bytes;
}

/// Scored (query, key) pairs of one attention head, as in NNCost.cpp.
static int64_t attentionPairs(int64_t t, int64_t s, bool causal) {
  return causal ? t * (t + 1) / 2 : t * s;
}

static int64_t attentionForwardFlops(Value q, Value k, int64_t heads,
                                     bool causal) {
  ArrayRef<int64_t> qs = tensorOf(q).getShape(), ks = tensorOf(k).getShape();
  int64_t headDim = qs[2] / heads;
  return qs[0] * heads *
         (attentionPairs(qs[1], ks[1], causal) * (4 * headDim + 5) +
          qs[1] * headDim);
}

/// Per scored pair: q.k again, exp(s - lse), do.v, ds, and the three
/// products into dq, dk and dv; per row the dot product do.o.
static int64_t attentionGradFlops(AttentionGradOp op) {
  ArrayRef<int64_t> qs = tensorOf(op.getQ()).getShape(),
                    ks = tensorOf(op.getK()).getShape();
  int64_t heads = op.getHeadsAttr().getInt(), headDim = qs[2] / heads;
  return qs[0] * heads *
         (attentionPairs(qs[1], ks[1], op.getCausal()) * (10 * headDim + 4) +
          2 * qs[1] * headDim);
}

namespace {

/// FLOPs of one op kind; the rest of the cost follows the conventions above.
template <typename OpT> struct FlopsOf;

#define PIPEC_FLOPS(OpT, expr)                                                 \
  template <> struct FlopsOf<OpT> {                                            \
    static int64_t get(OpT op) { return expr; }                                \
  };

PIPEC_FLOPS(LayerNormTrainOp, 8 * elementsOf(op.getResult()))
PIPEC_FLOPS(MatmulGeluOp,
            2 * (elementsOf(op.getX()) / tensorOf(op.getX()).getShape().back()) *
                    tensorOf(op.getX()).getShape().back() *
                    tensorOf(op.getResult()).getShape().back() +
                (op.getBias() ? 9 : 8) * elementsOf(op.getResult()))
PIPEC_FLOPS(AddLayerNormTrainOp, 9 * elementsOf(op.getResult()))
PIPEC_FLOPS(AddRMSNormTrainOp, 5 * elementsOf(op.getResult()))
PIPEC_FLOPS(RMSNormTrainOp, 4 * elementsOf(op.getResult()))
PIPEC_FLOPS(AttentionTrainOp,
            attentionForwardFlops(op.getQ(), op.getK(),
                                  op.getHeadsAttr().getInt(), op.getCausal()))
PIPEC_FLOPS(SoftmaxCrossEntropyOp,
            12 * elementsOf(op.getLogits()) + 3 * elementsOf(op.getTargets()))
PIPEC_FLOPS(MatmulGradBOp,
            2 * elementsOf(op.getDy()) * tensorOf(op.getDx()).getShape().back())
PIPEC_FLOPS(MatmulGradWOp,
            2 * elementsOf(op.getDy()) * tensorOf(op.getX()).getShape().back() +
                (op.getBias() ? elementsOf(op.getDy()) : 0))
PIPEC_FLOPS(LayerNormGradBOp, 10 * elementsOf(op.getDy()))
PIPEC_FLOPS(LayerNormGradWOp, 5 * elementsOf(op.getDy()))
PIPEC_FLOPS(RMSNormGradBOp, 8 * elementsOf(op.getDy()))
PIPEC_FLOPS(RMSNormGradWOp, 3 * elementsOf(op.getDy()))
PIPEC_FLOPS(GeluGradOp, 14 * elementsOf(op.getDy()))
PIPEC_FLOPS(SiluGradOp, 7 * elementsOf(op.getDy()))
PIPEC_FLOPS(SoftmaxGradOp, 4 * elementsOf(op.getDy()))
PIPEC_FLOPS(AddGradRhsOp, elementsOf(op.getDy()))
PIPEC_FLOPS(AddGradWOp, elementsOf(op.getDy()))
PIPEC_FLOPS(MulGradLhsOp, elementsOf(op.getDy()))
PIPEC_FLOPS(MulGradRhsOp, 2 * elementsOf(op.getDy()))
PIPEC_FLOPS(MulGradWOp, 2 * elementsOf(op.getDy()))
PIPEC_FLOPS(SliceGradOp, 0)
PIPEC_FLOPS(RopeGradOp, 3 * elementsOf(op.getDy()))
PIPEC_FLOPS(AttentionGradOp, attentionGradFlops(op))
PIPEC_FLOPS(GradAddOp, elementsOf(op.getResult()))
PIPEC_FLOPS(AccumulateGradOp, elementsOf(op.getGrad()))
PIPEC_FLOPS(EmbeddingGradWOp, elementsOf(op.getDy()))
PIPEC_FLOPS(PositionEmbeddingGradWOp, elementsOf(op.getDy()))
PIPEC_FLOPS(SumUsesOp, elementsOf(op.getResult()) *
                           std::max<int64_t>(0, op.getUsesAttr().getInt() - 1))
PIPEC_FLOPS(SumSquaresOp, 2 * elementsOf(op.getInput()))
PIPEC_FLOPS(GradNormOp, static_cast<int64_t>(op.getSquares().size()) + 1)
PIPEC_FLOPS(ClipScaleOp, 2)
PIPEC_FLOPS(LrScheduleOp, 10)
PIPEC_FLOPS(AdamWOp, 16 * elementsOf(op.getGrad()))
#undef PIPEC_FLOPS

/// How many times an op reads and writes the parameter-sized buffers it
/// names: once for an accumulator, three times for AdamW (p, m, v), and
/// sum_uses reads one accumulator per use.
template <typename OpT> int64_t parameterPasses(OpT op) {
  if constexpr (std::is_same_v<OpT, AdamWOp>)
    return 3;
  else if constexpr (std::is_same_v<OpT, SumUsesOp>)
    return op.getUsesAttr().getInt();
  else
    return OpT::template hasTrait<pipec::nn::OpTrait::WeightGradient>() ? 1 : 0;
}

template <typename OpT>
struct GradCost : CostOpInterface::ExternalModel<GradCost<OpT>, OpT> {
  int64_t getFlops(Operation *op) const {
    return FlopsOf<OpT>::get(cast<OpT>(op));
  }
  int64_t getBytesRead(Operation *op) const {
    int64_t bytes = 0;
    for (Value v : op->getOperands())
      bytes += bytesOf(v.getType());
    return bytes + parameterPasses(cast<OpT>(op)) * parameterBytes(op);
  }
  int64_t getBytesWritten(Operation *op) const {
    int64_t bytes = 0;
    for (Value v : op->getResults())
      bytes += bytesOf(v.getType());
    if constexpr (std::is_same_v<OpT, SumUsesOp>)
      return bytes;
    else
      return bytes + parameterPasses(cast<OpT>(op)) * parameterBytes(op);
  }
  int64_t getSavedActivationBytes(Operation *) const { return 0; }
};

template <typename... OpTs> void attachCosts(MLIRContext &context) {
  (OpTs::template attachInterface<GradCost<OpTs>>(context), ...);
}

} // namespace

void pipec::nn::attachGradCostModels(MLIRContext &context) {
  attachCosts<
      LayerNormTrainOp, RMSNormTrainOp, AttentionTrainOp, SoftmaxCrossEntropyOp,
      MatmulGradBOp, MatmulGradWOp, LayerNormGradBOp, LayerNormGradWOp,
      RMSNormGradBOp, RMSNormGradWOp, GeluGradOp, SiluGradOp, SoftmaxGradOp,
      AddGradRhsOp, AddGradWOp, MulGradLhsOp, MulGradRhsOp, MulGradWOp,
      SliceGradOp, RopeGradOp, AttentionGradOp, GradAddOp, AccumulateGradOp,
      EmbeddingGradWOp, PositionEmbeddingGradWOp, SumUsesOp, SumSquaresOp,
      GradNormOp, ClipScaleOp, LrScheduleOp, AdamWOp, MatmulGeluOp,
      AddLayerNormTrainOp, AddRMSNormTrainOp>(context);
}
