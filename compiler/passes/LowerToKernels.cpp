//===- LowerToKernels.cpp - one kernel.call per nn op ---------------------===//
//
// The one place that chooses which kernel of the target's library runs each
// op (docs/KERNELS.md). Every other consumer (the reference executor, the
// cpu emitter, the coming cuda emitter) reads `kernel.call`s generically.
//
//===----------------------------------------------------------------------===//

#include "compiler/analysis/KernelArity.h"
#include "compiler/passes/Passes.h"
#include "runtime/kernels/cuda/FlashSupport.h"

#include "dialects/kernel/KernelOps.h"
#include "dialects/nn/NNGradOps.h"
#include "dialects/nn/NNOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/TypeSwitch.h"

#include <functional>

namespace pipec {
#define GEN_PASS_DEF_NNLOWERTOKERNELSPASS
#include "compiler/passes/Passes.h.inc"
} // namespace pipec

using namespace mlir;
using namespace pipec;
using kernel::StateRef;

namespace {

/// What one op lowers to.
struct Lowering {
  std::string kernel;
  SmallVector<Value> inputs;
  /// Results the kernel writes besides the op's own (kept statistics of the
  /// inference forms), appended after them.
  SmallVector<Type> extraResults;
  SmallVector<int64_t> ints;
  SmallVector<double> reals;
  SmallVector<std::string> state;
};

} // namespace

static ArrayRef<int64_t> shapeOf(Value v) {
  return cast<RankedTensorType>(v.getType()).getShape();
}
static int64_t numel(Value v) {
  return cast<RankedTensorType>(v.getType()).getNumElements();
}
static int64_t lastDim(Value v) { return shapeOf(v).back(); }
static int64_t rowsOf(Value v) {
  int64_t d = lastDim(v);
  return d ? numel(v) / d : 0;
}
static std::string acc(StringRef param, int64_t use) {
  return StateRef{StateRef::Accumulator, use, param.str()}.str();
}
static std::string state(StateRef::Kind kind, StringRef param) {
  return StateRef{kind, -1, param.str()}.str();
}
static RankedTensorType vectorOf(Value like, int64_t n) {
  return RankedTensorType::get(
      {n}, cast<RankedTensorType>(like.getType()).getElementType());
}

/// outer and inner extents of `axis` of `shape`.
static void aroundAxis(ArrayRef<int64_t> shape, int64_t axis, int64_t &outer,
                       int64_t &inner) {
  outer = inner = 1;
  for (int64_t d = 0; d < axis; ++d)
    outer *= shape[d];
  for (int64_t d = axis + 1; d < int64_t(shape.size()); ++d)
    inner *= shape[d];
}

/// The integers of the attention kernels: batch, seqQ, seqKV, heads,
/// kvHeads, headDim, causal.
template <typename OpT>
static SmallVector<int64_t> attentionInts(OpT o, Value q, Value k) {
  int64_t heads = int64_t(o.getHeads());
  return {shapeOf(q)[0],
          shapeOf(q)[1],
          shapeOf(k)[1],
          heads,
          int64_t(o.getKvHeads()),
          shapeOf(q)[2] / heads,
          o.getCausal() ? 1 : 0};
}

/// Chooses the kernel of `op` (the cpu library's names and arguments, which
/// adaptForCuda extends). Returns failure after a diagnostic.
static LogicalResult chooseKernel(Operation *op, ModuleOp module,
                                  Lowering &l) {
  auto paramElements = [&](StringRef name) -> int64_t {
    auto p = module.lookupSymbol<nn::ParameterOp>(name);
    return p ? p.getTensorType().getNumElements() : -1;
  };
  auto paramShape = [&](StringRef name) -> ArrayRef<int64_t> {
    auto p = module.lookupSymbol<nn::ParameterOp>(name);
    return p ? p.getTensorType().getShape() : ArrayRef<int64_t>();
  };
  auto set = [&](StringRef kernel, ValueRange inputs,
                 ArrayRef<int64_t> ints = {}, ArrayRef<double> reals = {}) {
    l.kernel = kernel.str();
    l.inputs.assign(inputs.begin(), inputs.end());
    l.ints.assign(ints.begin(), ints.end());
    l.reals.assign(reals.begin(), reals.end());
    return success();
  };
  return llvm::TypeSwitch<Operation *, LogicalResult>(op)
      // Forward.
      .Case([&](nn::EmbeddingOp o) {
        auto t = shapeOf(o.getTable());
        return set("embedding_forward", {o.getTable(), o.getIds()},
                   {numel(o.getIds()), t[0], t[1]});
      })
      .Case([&](nn::PositionEmbeddingOp o) {
        auto s = shapeOf(o.getResult());
        return set("position_embedding_forward", {o.getTable()}, {s[0], s[1]});
      })
      .Case([&](nn::MatmulOp o) {
        int64_t k = lastDim(o.getX()), n = lastDim(o.getResult());
        SmallVector<int64_t> ints = {numel(o.getX()) / k, k, n,
                                     o.getTransposeRhs() ? 1 : 0};
        if (o.getBias())
          return set("matmul_bias_forward", {o.getX(), o.getW(), o.getBias()},
                     ints);
        return set("matmul_forward", {o.getX(), o.getW()}, ints);
      })
      .Case([&](nn::AddOp o) {
        return set("add_forward", {o.getLhs(), o.getRhs()},
                   {numel(o.getLhs()), numel(o.getRhs())});
      })
      .Case([&](nn::MulOp o) {
        return set("mul_forward", {o.getLhs(), o.getRhs()},
                   {numel(o.getLhs()), numel(o.getRhs())});
      })
      .Case([&](nn::GeluOp o) {
        return set("gelu_forward", {o.getInput()}, {numel(o.getInput())});
      })
      .Case([&](nn::SiluOp o) {
        return set("silu_forward", {o.getInput()}, {numel(o.getInput())});
      })
      .Case([&](nn::SoftmaxOp o) {
        return set("softmax_forward", {o.getInput()},
                   {rowsOf(o.getInput()), lastDim(o.getInput())});
      })
      .Case([&](nn::SliceOp o) {
        auto in = shapeOf(o.getInput());
        int64_t axis = int64_t(o.getAxis()), outer, inner;
        aroundAxis(in, axis, outer, inner);
        return set("slice_forward", {o.getInput()},
                   {outer, in[axis], inner, int64_t(o.getOffset()),
                    int64_t(o.getSize())});
      })
      .Case([&](nn::ReshapeOp o) {
        return set("copy", {o.getInput()}, {numel(o.getInput())});
      })
      .Case([&](nn::TransposeOp o) -> LogicalResult {
        auto in = shapeOf(o.getInput());
        int64_t rank = int64_t(in.size()), pad = 6 - rank;
        if (rank > 6)
          return op->emitError("nn-lower-to-kernels: the cpu transpose kernel "
                               "takes at most 6 axes, this one has ")
                 << rank;
        // Leading axes of size 1 that stay in place make every rank 6.
        SmallVector<int64_t> ints(size_t(pad), 1);
        ints.append(in.begin(), in.end());
        for (int64_t d = 0; d < pad; ++d)
          ints.push_back(d);
        for (auto p : o.getPerm())
          ints.push_back(int64_t(p) + pad);
        return set("transpose_forward", {o.getInput()}, ints);
      })
      .Case([&](nn::RopeOp o) {
        auto in = shapeOf(o.getInput());
        int64_t heads = int64_t(o.getHeads());
        return set("rope_forward", {o.getInput()},
                   {in[0], in[1], heads, in[2] / heads},
                   {o.getTheta().convertToDouble()});
      })
      .Case([&](nn::LayerNormOp o) {
        // The inference form keeps its statistics too: one kernel.
        int64_t rows = rowsOf(o.getX());
        l.extraResults = {vectorOf(o.getX(), rows), vectorOf(o.getX(), rows)};
        return set("layernorm_forward", {o.getX(), o.getGamma(), o.getBeta()},
                   {rows, lastDim(o.getX())}, {o.getEps().convertToDouble()});
      })
      .Case([&](nn::LayerNormTrainOp o) {
        return set("layernorm_forward", {o.getX(), o.getGamma(), o.getBeta()},
                   {rowsOf(o.getX()), lastDim(o.getX())},
                   {o.getEps().convertToDouble()});
      })
      .Case([&](nn::RMSNormOp o) {
        l.extraResults = {vectorOf(o.getX(), rowsOf(o.getX()))};
        return set("rmsnorm_forward", {o.getX(), o.getGamma()},
                   {rowsOf(o.getX()), lastDim(o.getX())},
                   {o.getEps().convertToDouble()});
      })
      .Case([&](nn::RMSNormTrainOp o) {
        return set("rmsnorm_forward", {o.getX(), o.getGamma()},
                   {rowsOf(o.getX()), lastDim(o.getX())},
                   {o.getEps().convertToDouble()});
      })
      .Case([&](nn::AttentionOp o) {
        l.extraResults = {
            vectorOf(o.getQ(), shapeOf(o.getQ())[0] * int64_t(o.getHeads()) *
                                   shapeOf(o.getQ())[1])};
        return set("attention_forward", {o.getQ(), o.getK(), o.getV()},
                   attentionInts(o, o.getQ(), o.getK()),
                   {o.getScale().convertToDouble()});
      })
      .Case([&](nn::AttentionTrainOp o) {
        return set("attention_forward", {o.getQ(), o.getK(), o.getV()},
                   attentionInts(o, o.getQ(), o.getK()),
                   {o.getScale().convertToDouble()});
      })
      // Fused units (--nn-fuse).
      .Case([&](nn::MatmulGeluOp o) {
        int64_t k = lastDim(o.getX()), n = lastDim(o.getResult());
        SmallVector<int64_t> ints = {numel(o.getX()) / k, k, n,
                                     o.getTransposeRhs() ? 1 : 0};
        if (o.getBias())
          return set("matmul_bias_gelu_forward",
                     {o.getX(), o.getW(), o.getBias()}, ints);
        return set("matmul_gelu_forward", {o.getX(), o.getW()}, ints);
      })
      .Case([&](nn::AddLayerNormTrainOp o) {
        return set("add_layernorm_forward",
                   {o.getLhs(), o.getRhs(), o.getGamma(), o.getBeta()},
                   {rowsOf(o.getSum()), lastDim(o.getSum())},
                   {o.getEps().convertToDouble()});
      })
      .Case([&](nn::AddRMSNormTrainOp o) {
        return set("add_rmsnorm_forward",
                   {o.getLhs(), o.getRhs(), o.getGamma()},
                   {rowsOf(o.getSum()), lastDim(o.getSum())},
                   {o.getEps().convertToDouble()});
      })
      // (rows, classes, the logits' row stride): a padded vocabulary
      // (--nn-pad-vocab) has fewer classes than columns.
      .Case([&](nn::CrossEntropyOp o) {
        return set("cross_entropy_forward", {o.getLogits(), o.getTargets()},
                   {rowsOf(o.getLogits()), o.classCount(),
                    lastDim(o.getLogits())});
      })
      .Case([&](nn::SoftmaxCrossEntropyOp o) {
        return set("softmax_cross_entropy",
                   {o.getLogits(), o.getTargets(), o.getLossScale()},
                   {rowsOf(o.getLogits()), o.classCount(),
                    lastDim(o.getLogits())});
      })
      // B.
      .Case([&](nn::MatmulGradBOp o) {
        int64_t n = lastDim(o.getDy()), k = lastDim(o.getDx());
        return set("matmul_backward_b", {o.getDy(), o.getW()},
                   {numel(o.getDy()) / n, k, n, o.getTransposeRhs() ? 1 : 0});
      })
      .Case([&](nn::LayerNormGradBOp o) {
        return set("layernorm_backward_b",
                   {o.getDy(), o.getX(), o.getMean(), o.getRstd(),
                    o.getGamma()},
                   {rowsOf(o.getX()), lastDim(o.getX())});
      })
      .Case([&](nn::RMSNormGradBOp o) {
        return set("rmsnorm_backward_b",
                   {o.getDy(), o.getX(), o.getRstd(), o.getGamma()},
                   {rowsOf(o.getX()), lastDim(o.getX())});
      })
      .Case([&](nn::GeluGradOp o) {
        return set("gelu_backward_b", {o.getDy(), o.getX()}, {numel(o.getX())});
      })
      .Case([&](nn::SiluGradOp o) {
        return set("silu_backward_b", {o.getDy(), o.getX()}, {numel(o.getX())});
      })
      .Case([&](nn::SoftmaxGradOp o) {
        return set("softmax_backward_b", {o.getDy(), o.getY()},
                   {rowsOf(o.getY()), lastDim(o.getY())});
      })
      .Case([&](nn::AddGradRhsOp o) {
        return set("add_backward_broadcast", {o.getDy()},
                   {numel(o.getDy()), numel(o.getDrhs()), 0});
      })
      .Case([&](nn::MulGradLhsOp o) {
        return set("mul_backward_lhs", {o.getDy(), o.getRhs()},
                   {numel(o.getDy()), numel(o.getRhs())});
      })
      .Case([&](nn::MulGradRhsOp o) {
        return set("mul_backward_rhs", {o.getDy(), o.getLhs()},
                   {numel(o.getDy()), numel(o.getDrhs()), 0});
      })
      .Case([&](nn::SliceGradOp o) {
        auto in = shapeOf(o.getDx());
        int64_t axis = int64_t(o.getAxis()), outer, inner;
        aroundAxis(in, axis, outer, inner);
        return set("slice_backward_b", {o.getDy()},
                   {outer, in[axis], inner, int64_t(o.getOffset()),
                    shapeOf(o.getDy())[axis]});
      })
      .Case([&](nn::RopeGradOp o) {
        auto in = shapeOf(o.getDy());
        int64_t heads = int64_t(o.getHeads());
        return set("rope_backward_b", {o.getDy()},
                   {in[0], in[1], heads, in[2] / heads},
                   {o.getTheta().convertToDouble()});
      })
      .Case([&](nn::AttentionGradOp o) {
        return set("attention_backward_b",
                   {o.getDout(), o.getQ(), o.getK(), o.getV(), o.getOut(),
                    o.getLse()},
                   attentionInts(o, o.getQ(), o.getK()),
                   {o.getScale().convertToDouble()});
      })
      .Case([&](nn::GradAddOp o) {
        // lhs + rhs elementwise: add without broadcast gives the bits of
        // copying lhs and adding rhs.
        return set("add_forward", {o.getLhs(), o.getRhs()},
                   {numel(o.getLhs()), numel(o.getRhs())});
      })
      // W: the accumulators are named state.
      .Case([&](nn::MatmulGradWOp o) {
        int64_t k = lastDim(o.getX()), n = lastDim(o.getDy());
        l.state = {acc(o.getWeight(), int64_t(o.getWeightUse()))};
        bool bias = o.getBias() && o.getBiasUse();
        if (bias)
          l.state.push_back(acc(*o.getBias(), int64_t(*o.getBiasUse())));
        return set(bias ? "matmul_bias_backward_w" : "matmul_backward_w",
                   {o.getX(), o.getDy()},
                   {numel(o.getX()) / k, k, n, o.getTransposeRhs() ? 1 : 0});
      })
      .Case([&](nn::LayerNormGradWOp o) {
        l.state = {acc(o.getGamma(), int64_t(o.getGammaUse())),
                   acc(o.getBeta(), int64_t(o.getBetaUse()))};
        return set("layernorm_backward_w",
                   {o.getDy(), o.getX(), o.getMean(), o.getRstd()},
                   {rowsOf(o.getX()), lastDim(o.getX())});
      })
      .Case([&](nn::RMSNormGradWOp o) {
        l.state = {acc(o.getGamma(), int64_t(o.getGammaUse()))};
        return set("rmsnorm_backward_w", {o.getDy(), o.getX(), o.getRstd()},
                   {rowsOf(o.getX()), lastDim(o.getX())});
      })
      .Case([&](nn::EmbeddingGradWOp o) -> LogicalResult {
        auto table = paramShape(o.getTable());
        if (table.size() != 2)
          return op->emitError("nn-lower-to-kernels: unknown 2-d parameter '")
                 << o.getTable() << "'";
        l.state = {acc(o.getTable(), int64_t(o.getTableUse()))};
        return set("embedding_backward_w", {o.getDy(), o.getIds()},
                   {numel(o.getIds()), table[0], table[1]});
      })
      .Case([&](nn::PositionEmbeddingGradWOp o) {
        auto dy = shapeOf(o.getDy());
        l.state = {acc(o.getTable(), int64_t(o.getTableUse()))};
        return set("position_embedding_backward_w", {o.getDy()},
                   {dy[0], dy[1]});
      })
      .Case([&](nn::AddGradWOp o) {
        l.state = {acc(o.getParam(), int64_t(o.getUse()))};
        return set("add_backward_broadcast", {o.getDy()},
                   {numel(o.getDy()), paramElements(o.getParam()), 1});
      })
      .Case([&](nn::MulGradWOp o) {
        l.state = {acc(o.getParam(), int64_t(o.getUse()))};
        return set("mul_backward_rhs", {o.getDy(), o.getLhs()},
                   {numel(o.getDy()), paramElements(o.getParam()), 1});
      })
      .Case([&](nn::AccumulateGradOp o) {
        l.state = {acc(o.getParam(), int64_t(o.getUse()))};
        return set("accumulate", {o.getGrad()}, {numel(o.getGrad()), 1});
      })
      // The optimizer step.
      .Case([&](nn::SumUsesOp o) {
        for (int64_t u = 0; u < int64_t(o.getUses()); ++u)
          l.state.push_back(acc(o.getParam(), u));
        return set("sum_uses", {}, {numel(o.getResult())});
      })
      .Case([&](nn::SumSquaresOp o) {
        return set("sum_squares", {o.getInput()}, {numel(o.getInput())});
      })
      .Case([&](nn::GradNormOp o) {
        return set("grad_norm", o.getSquares());
      })
      .Case([&](nn::ClipScaleOp o) {
        return set("clip_scale", {o.getNorm()}, {},
                   {o.getMaxNorm().convertToDouble()});
      })
      .Case([&](nn::LrScheduleOp o) -> LogicalResult {
        if (o.getDecay() != "cosine" && o.getDecay() != "constant")
          return op->emitError("unknown decay '")
                 << o.getDecay() << "' (cosine or constant)";
        return set("lr_schedule", {o.getStep()},
                   {int64_t(o.getWarmupSteps()), int64_t(o.getDecaySteps()),
                    o.getDecay() == "cosine" ? 1 : 0},
                   {o.getLr().convertToDouble(), o.getMinLr().convertToDouble()});
      })
      .Case([&](nn::AdamWOp o) {
        double wd = o.getWeightDecay().convertToDouble();
        l.state = {state(StateRef::Value, o.getParam()),
                   state(StateRef::FirstMoment, o.getParam()),
                   state(StateRef::SecondMoment, o.getParam())};
        return set("adamw",
                   {o.getGrad(), o.getLr(), o.getClipScale(), o.getStep()},
                   {numel(o.getGrad()), wd != 0.0 ? 1 : 0},
                   {o.getBeta1().convertToDouble(),
                    o.getBeta2().convertToDouble(),
                    o.getEps().convertToDouble(), wd});
      })
      .Default([&](Operation *) {
        return op->emitError("nn-lower-to-kernels: no kernel implements '")
               << op->getName() << "'";
      });
}

/// What the cuda library asks of a call besides the cpu's arguments
/// (runtime/kernels/cuda/KernelList.def). Returns failure after a
/// diagnostic for an op it has no kernel for yet.
static LogicalResult adaptForCuda(Operation *op, Lowering &l,
                                  bool tiledAttention) {
  if (l.kernel == "rope_forward" || l.kernel == "rope_backward_b") {
    // The fp32 cos and sin tables [seq * headDim / 2] the call fills.
    int64_t seq = l.ints[1], headDim = l.ints[3];
    if (headDim % 2 != 0)
      return op->emitError("nn-lower-to-kernels: rope needs an even head "
                           "size, got ")
             << headDim;
    auto table = RankedTensorType::get({seq * (headDim / 2)},
                                       Float32Type::get(op->getContext()));
    l.extraResults.append({table, table});
  }
  if (l.kernel == "cross_entropy_forward" ||
      l.kernel == "softmax_cross_entropy") {
    // A per-row fp32 loss scratch.
    int64_t rows = l.ints[0];
    l.extraResults.push_back(
        RankedTensorType::get({rows}, Float32Type::get(op->getContext())));
  }
  // Attention at the head sizes the tiled tensor-core kernels are built
  // for (FlashSupport.h): chosen here, at compile time; the backward's
  // scratch holds dout . out per query row (batch * heads * seqQ fp32).
  if ((l.kernel == "attention_forward" || l.kernel == "attention_backward_b") &&
      tiledAttention && pipert::cuda::flashAttentionSupports(l.ints[5])) {
    if (l.kernel == "attention_backward_b")
      l.extraResults.push_back(RankedTensorType::get(
          {l.ints[0] * l.ints[3] * l.ints[1]},
          Float32Type::get(op->getContext())));
    l.kernel = "flash_" + l.kernel;
  }
  if (l.kernel == "adamw")
    l.state.push_back(
        StateRef{StateRef::Copy, -1, StateRef::parse(l.state[0])->param}
            .str());
  return success();
}

/// The results of `kernel` that are statistics (mean, rstd, log-sum-exp):
/// fp32 whatever the activations' storage (docs/NUMERICS.md).
static ArrayRef<unsigned> statisticResults(StringRef kernel) {
  static const llvm::StringMap<SmallVector<unsigned, 2>> table = {
      {"layernorm_forward", {1, 2}},     {"rmsnorm_forward", {1}},
      {"add_layernorm_forward", {2, 3}}, {"add_rmsnorm_forward", {2}},
      {"attention_forward", {1}},        {"flash_attention_forward", {1}},
  };
  auto it = table.find(kernel);
  return it == table.end() ? ArrayRef<unsigned>() : ArrayRef(it->second);
}

/// Replaces `op` by its kernel.call of `target`'s library.
static LogicalResult lowerOp(Operation *op, ModuleOp module,
                             StringRef target, bool tiledAttention) {
  Lowering l;
  if (failed(chooseKernel(op, module, l)))
    return failure();
  if (target == "cuda" && failed(adaptForCuda(op, l, tiledAttention)))
    return failure();
  const KernelArity *arity = kernelArity(target, l.kernel);
  if (!arity)
    return op->emitError("nn-lower-to-kernels: kernel '")
           << l.kernel << "' is not in the " << target << " library";
  KernelArity a = *arity;
  int64_t ptrs = int64_t(op->getNumResults() + l.extraResults.size() +
                         l.state.size() + l.inputs.size());
  if ((a.ptrs >= 0 && ptrs != a.ptrs) || int64_t(l.ints.size()) != a.ints ||
      int64_t(l.reals.size()) != a.reals)
    return op->emitError("nn-lower-to-kernels: kernel '")
           << l.kernel << "' takes " << a.ptrs << " pointers, " << a.ints
           << " integers and " << a.reals << " reals, the lowering built "
           << ptrs << ", " << l.ints.size() << " and " << l.reals.size();
  SmallVector<Type> types(op->getResultTypes());
  types.append(l.extraResults);
  // bf16 storage (--nn-storage) typed the statistics like the activations;
  // their kernels keep them in fp32.
  for (unsigned i : statisticResults(l.kernel)) {
    auto t = cast<RankedTensorType>(types[i]);
    if (t.getElementType().isBF16())
      types[i] = t.clone(Float32Type::get(op->getContext()));
  }
  OpBuilder b(op);
  SmallVector<StringRef> stateRefs(l.state.begin(), l.state.end());
  auto call = kernel::CallOp::create(
      b, op->getLoc(), types, b.getStringAttr(l.kernel), l.inputs,
      b.getDenseI64ArrayAttr(l.ints), b.getDenseF64ArrayAttr(l.reals),
      b.getStrArrayAttr(stateRefs),
      b.getStringAttr(op->getName().getStringRef()));
  // nn.op_id, nn.role, nn.recompute... stay with the computation.
  for (NamedAttribute attr : op->getDiscardableAttrs())
    call->setAttr(attr.getName(), attr.getValue());
  for (unsigned i = 0; i < op->getNumResults(); ++i)
    op->getResult(i).replaceAllUsesWith(call->getResult(i));
  op->erase();
  return success();
}

/// The slice gradients a sum of gradient adds gathers, when it is one
/// tensor's three disjoint windows along one axis (q, k and v out of
/// c_attn's output: slice_grad x3 and grad_add x2), each add and each
/// slice gradient used by that sum alone; `inner` gets the sum's adds below
/// the root, each before the ones it uses. Empty otherwise.
static SmallVector<nn::SliceGradOp, 3>
threeSliceSum(nn::GradAddOp root, SmallVectorImpl<Operation *> &inner) {
  SmallVector<nn::SliceGradOp, 3> leaves;
  inner.clear();
  bool ok = true;
  std::function<void(Value)> visit = [&](Value v) {
    Operation *def = v.getDefiningOp();
    if (!def || !v.hasOneUse() || def->getBlock() != root->getBlock()) {
      ok = false;
      return;
    }
    if (auto add = dyn_cast<nn::GradAddOp>(def)) {
      inner.push_back(add);
      visit(add.getLhs());
      visit(add.getRhs());
    } else if (auto slice = dyn_cast<nn::SliceGradOp>(def)) {
      leaves.push_back(slice);
    } else {
      ok = false;
    }
  };
  visit(root.getLhs());
  visit(root.getRhs());
  if (!ok || leaves.size() != 3)
    return {};
  const int64_t axis = int64_t(leaves[0].getAxis());
  const int64_t dim = shapeOf(root.getResult())[size_t(axis)];
  for (nn::SliceGradOp s : leaves)
    if (int64_t(s.getAxis()) != axis || s.getDx().getType() != root.getType())
      return {};
  for (size_t a = 0; a < 3; ++a) {
    const int64_t lo = int64_t(leaves[a].getOffset());
    const int64_t hi = lo + shapeOf(leaves[a].getDy())[size_t(axis)];
    if (lo < 0 || hi > dim)
      return {};
    for (size_t b = a + 1; b < 3; ++b) {
      const int64_t lo2 = int64_t(leaves[b].getOffset());
      const int64_t hi2 = lo2 + shapeOf(leaves[b].getDy())[size_t(axis)];
      if (lo < hi2 && lo2 < hi)
        return {};
    }
  }
  return leaves;
}

/// Replaces every sum of three slice gradients of `fn` (threeSliceSum) by
/// one kernel.call "slices3_backward_b": one pass over the tensor instead
/// of three zero-filled slice gradients and two full-size adds, with the
/// same bits (Shape.h). Returns failure after a diagnostic.
static LogicalResult fuseThreeSliceSums(func::FuncOp fn, StringRef target) {
  // One pass in program order: a fusion erases only the root and ops
  // defined before it (its operands' trees), never one still ahead.
  for (Operation &op : llvm::make_early_inc_range(fn.getBody().getOps())) {
    auto root = dyn_cast<nn::GradAddOp>(op);
    if (!root)
      continue;
    SmallVector<Operation *> adds;
    SmallVector<nn::SliceGradOp, 3> leaves = threeSliceSum(root, adds);
    if (leaves.empty())
      continue;
    if (!kernelArity(target, "slices3_backward_b"))
      return root->emitError("nn-lower-to-kernels: kernel "
                             "'slices3_backward_b' is not in the ")
             << target << " library";
    auto in = shapeOf(root.getResult());
    int64_t axis = int64_t(leaves[0].getAxis()), outer, inner;
    aroundAxis(in, axis, outer, inner);
    SmallVector<int64_t> ints = {outer, in[size_t(axis)], inner};
    SmallVector<Value> inputs;
    for (nn::SliceGradOp s : leaves) {
      inputs.push_back(s.getDy());
      ints.push_back(int64_t(s.getOffset()));
      ints.push_back(shapeOf(s.getDy())[size_t(axis)]);
    }
    OpBuilder b(root);
    auto call = kernel::CallOp::create(
        b, root->getLoc(), TypeRange{root.getType()},
        b.getStringAttr("slices3_backward_b"), inputs,
        b.getDenseI64ArrayAttr(ints), b.getDenseF64ArrayAttr({}),
        b.getStrArrayAttr({}), b.getStringAttr("nn.grad_add"));
    for (NamedAttribute attr : root->getDiscardableAttrs())
      call->setAttr(attr.getName(), attr.getValue());
    // The dy operands are defined before their slice gradients, so before
    // the root: the call may take the root's place. The sum's ops go,
    // users before what they use.
    root.getResult().replaceAllUsesWith(call.getResult(0));
    root->erase();
    for (Operation *add : adds)
      add->erase();
    for (nn::SliceGradOp s : leaves)
      s->erase();
  }
  return success();
}

namespace {
struct NNLowerToKernelsPass
    : public pipec::impl::NNLowerToKernelsPassBase<NNLowerToKernelsPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (target != "cpu" && target != "cuda") {
      module.emitError("nn-lower-to-kernels: unknown target '")
          << target << "' (cpu or cuda)";
      return signalPassFailure();
    }
    if (attention != "tiled" && attention != "rows") {
      module.emitError("nn-lower-to-kernels: unknown attention '")
          << attention << "' (tiled or rows)";
      return signalPassFailure();
    }
    // Which library the calls name: the layout reads the target's arena
    // alignment from it.
    module->setAttr("kernel.target", StringAttr::get(module.getContext(), target));
    for (auto fn : module.getOps<func::FuncOp>()) {
      if (!optimizer && fn.getSymName() == "optimizer_step")
        continue;
      if (failed(fuseThreeSliceSums(fn, target)))
        return signalPassFailure();
      SmallVector<Operation *> ops;
      for (Operation &op : fn.getBody().getOps())
        if (op.getDialect() &&
            op.getDialect()->getNamespace() == nn::NNDialect::getDialectNamespace() &&
            !isa<nn::ParamOp>(op))
          ops.push_back(&op);
      for (Operation *op : ops)
        if (failed(lowerOp(op, module, target, attention == "tiled")))
          return signalPassFailure();
    }
  }
};
} // namespace
