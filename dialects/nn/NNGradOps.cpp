//===- NNGradOps.cpp - verifiers of the training and backward ops -------===//
//
// Backward ops are built by --nn-autodiff, but they are also written by hand
// in tests and read by executors, so each one checks that its shapes are
// those of the forward op it differentiates and says which one is off.
//
//===----------------------------------------------------------------------===//

#include "dialects/nn/NNGradOps.h"
#include "dialects/nn/NNOps.h"
#include "dialects/nn/NNVerify.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/OpImplementation.h"

#include <cmath>

using namespace mlir;
using namespace pipec::nn;
using namespace pipec::nn::verify;


/// Checks that `value` (named `name`) has `shape` and the element type of
/// `like`; `why` says where the expectation comes from.
static LogicalResult expectShape(Operation *op, StringRef name, Value value,
                                 ArrayRef<int64_t> shape, Value like,
                                 const Twine &why) {
  if (shapeOf(value) != shape)
    return op->emitOpError()
           << name << " shape " << shapeStr(shapeOf(value)) << " must be "
           << shapeStr(shape) << " (" << why << ")";
  Type want = tensorOf(like).getElementType();
  if (tensorOf(value).getElementType() != want)
    return op->emitOpError()
           << name << " element type " << tensorOf(value).getElementType()
           << " must be " << want;
  return success();
}

/// Per-row statistics (mean, rstd) are shaped like x without its last dim.
static LogicalResult expectRowStats(Operation *op, StringRef name, Value stats,
                                    Value x) {
  if (shapeOf(x).empty())
    return op->emitOpError("x must have at least one dim, got a scalar");
  return expectShape(op, name, stats, shapeOf(x).drop_back(), x,
                     "x " + shapeStr(shapeOf(x)) + " without its last dim");
}

/// A per-channel operand (gamma) is [D], D the last dim of x.
static LogicalResult expectChannel(Operation *op, StringRef name, Value value,
                                   Value x) {
  return expectShape(op, name, value, {shapeOf(x).back()}, x,
                     "the last dim of x " + shapeStr(shapeOf(x)));
}

/// `suffix` must be a trailing part of `full` (add's and mul's broadcast).
static LogicalResult expectSuffix(Operation *op, StringRef name, Value value,
                                  Value full) {
  ArrayRef<int64_t> s = shapeOf(value), f = shapeOf(full);
  if (s.size() > f.size() || f.take_back(s.size()) != s)
    return op->emitOpError() << name << " shape " << shapeStr(s)
                             << " is not a trailing part of " << shapeStr(f);
  if (tensorOf(value).getElementType() != tensorOf(full).getElementType())
    return op->emitOpError()
           << name << " element type " << tensorOf(value).getElementType()
           << " must be " << tensorOf(full).getElementType();
  return success();
}

/// The accumulator `@name[use]` must be a declared parameter of `shape`.
static LogicalResult verifyAccumulator(Operation *op,
                                       SymbolTableCollection &symbols,
                                       FlatSymbolRefAttr name, int64_t use,
                                       ArrayRef<int64_t> shape, Value like) {
  auto module = op->getParentOfType<ModuleOp>();
  auto param = module ? symbols.lookupSymbolIn<ParameterOp>(module, name)
                      : ParameterOp();
  if (!param)
    return op->emitOpError("no nn.parameter named ") << name;
  if (use < 0)
    return op->emitOpError("use of ")
           << name << " must not be negative, got " << use;
  RankedTensorType type = param.getTensorType();
  // bf16 activations add into the accumulator of an f32 master (bf16
  // storage, docs/NUMERICS.md); otherwise the types are the parameter's.
  Type from = like ? tensorOf(like).getElementType() : Type();
  bool typeFits = !like || type.getElementType() == from ||
                  (type.getElementType().isF32() && from.isBF16());
  if (type.getShape() != shape || !typeFits)
    return op->emitOpError("gradient of shape ")
           << shapeStr(shape) << " does not fit " << name << " of type "
           << type;
  return success();
}

//===----------------------------------------------------------------------===//
// Forward forms
//===----------------------------------------------------------------------===//

LogicalResult LayerNormTrainOp::verify() {
  Value x = getX();
  if (shapeOf(x).empty())
    return emitOpError("x must have at least one dim, got a scalar");
  if (failed(expectChannel(*this, "gamma", getGamma(), x)) ||
      failed(expectChannel(*this, "beta", getBeta(), x)) ||
      failed(expectPositive(*this, "eps", getEps().convertToDouble())) ||
      failed(expectShape(*this, "result", getResult(), shapeOf(x), x,
                         "x " + shapeStr(shapeOf(x)))))
    return failure();
  return success(succeeded(expectRowStats(*this, "mean", getMean(), x)) &&
                 succeeded(expectRowStats(*this, "rstd", getRstd(), x)));
}

LogicalResult RMSNormTrainOp::verify() {
  Value x = getX();
  if (shapeOf(x).empty())
    return emitOpError("x must have at least one dim, got a scalar");
  if (failed(expectChannel(*this, "gamma", getGamma(), x)) ||
      failed(expectPositive(*this, "eps", getEps().convertToDouble())) ||
      failed(expectShape(*this, "result", getResult(), shapeOf(x), x,
                         "x " + shapeStr(shapeOf(x)))))
    return failure();
  return expectRowStats(*this, "rstd", getRstd(), x);
}

//===----------------------------------------------------------------------===//
// Fused forward forms
//===----------------------------------------------------------------------===//

LogicalResult MatmulGeluOp::verify() {
  ArrayRef<int64_t> lhs = shapeOf(getX()), rhs = shapeOf(getW());
  if (lhs.empty() || rhs.size() != 2)
    return emitOpError("x must have at least one dim and w two, got ")
           << shapeStr(lhs) << " and " << shapeStr(rhs);
  bool transposed = getTransposeRhs();
  int64_t k = transposed ? rhs[1] : rhs[0], n = transposed ? rhs[0] : rhs[1];
  if (k != lhs.back())
    return emitOpError("w's contraction dim ")
           << k << " does not match x's last dim " << lhs.back();
  if (Value bias = getBias())
    if (failed(expectShape(*this, "bias", bias, {n}, getX(),
                           "the output width")))
      return failure();
  SmallVector<int64_t> out(lhs.drop_back());
  out.push_back(n);
  return success(
      succeeded(expectShape(*this, "pre", getPre(), out, getX(),
                            "x's rows by w's output width")) &&
      succeeded(expectShape(*this, "result", getResult(), out, getX(),
                            "the shape of pre")));
}

/// The residual add of a fused norm: same shapes, the sum like them.
static LogicalResult verifyResidual(Operation *op, Value lhs, Value rhs,
                                    Value sum) {
  if (shapeOf(lhs).empty())
    return op->emitOpError("lhs must have at least one dim, got a scalar");
  std::string why = "the shape of lhs " + shapeStr(shapeOf(lhs));
  return success(succeeded(expectShape(op, "rhs", rhs, shapeOf(lhs), lhs,
                                       why)) &&
                 succeeded(expectShape(op, "sum", sum, shapeOf(lhs), lhs,
                                       why)));
}

LogicalResult AddLayerNormTrainOp::verify() {
  Value sum = getSum();
  if (failed(verifyResidual(*this, getLhs(), getRhs(), sum)) ||
      failed(expectChannel(*this, "gamma", getGamma(), sum)) ||
      failed(expectChannel(*this, "beta", getBeta(), sum)) ||
      failed(expectPositive(*this, "eps", getEps().convertToDouble())) ||
      failed(expectShape(*this, "result", getResult(), shapeOf(sum), sum,
                         "the shape of the sum")))
    return failure();
  return success(succeeded(expectRowStats(*this, "mean", getMean(), sum)) &&
                 succeeded(expectRowStats(*this, "rstd", getRstd(), sum)));
}

LogicalResult AddRMSNormTrainOp::verify() {
  Value sum = getSum();
  if (failed(verifyResidual(*this, getLhs(), getRhs(), sum)) ||
      failed(expectChannel(*this, "gamma", getGamma(), sum)) ||
      failed(expectPositive(*this, "eps", getEps().convertToDouble())) ||
      failed(expectShape(*this, "result", getResult(), shapeOf(sum), sum,
                         "the shape of the sum")))
    return failure();
  return expectRowStats(*this, "rstd", getRstd(), sum);
}

/// q [B, T, Hq*Dh], k and v [B, S, Hkv*Dh]; out like q, lse [B, Hq, T].
static LogicalResult verifyAttentionShapes(Operation *op, Value q, Value k,
                                           Value v, Value out, Value lse,
                                           int64_t heads, int64_t kvHeads,
                                           bool causal, double scale) {
  ArrayRef<int64_t> qs = shapeOf(q), ks = shapeOf(k);
  if (qs.size() != 3)
    return op->emitOpError("q must be 3-D [B, T, Hq*Dh], got ") << shapeStr(qs);
  if (ks.size() != 3)
    return op->emitOpError("k must be 3-D [B, S, Hkv*Dh], got ")
           << shapeStr(ks);
  if (failed(expectPositive(op, "heads", heads)) ||
      failed(expectPositive(op, "kv_heads", kvHeads)) ||
      failed(expectPositive(op, "scale", scale)))
    return failure();
  if (heads % kvHeads != 0)
    return op->emitOpError("heads = ")
           << heads << " is not a multiple of kv_heads = " << kvHeads;
  if (qs[2] % heads != 0)
    return op->emitOpError("q width ")
           << qs[2] << " is not divisible by heads = " << heads;
  int64_t headDim = qs[2] / heads;
  std::string both = "q " + shapeStr(qs) + ", k " + shapeStr(ks);
  if (ks[0] != qs[0] || ks[2] != kvHeads * headDim)
    return op->emitOpError("k shape ")
           << shapeStr(ks) << " must be [" << qs[0] << ", S, " << kvHeads
           << " * " << headDim << "] (" << both << ")";
  if (causal && ks[1] != qs[1])
    return op->emitOpError(
               "causal attention needs as many keys as queries, got T = ")
           << qs[1] << " and S = " << ks[1];
  if (failed(expectShape(op, "v", v, ks, q, "k " + shapeStr(ks))) ||
      failed(expectShape(op, "k", k, ks, q, both)) ||
      failed(expectShape(op, "out", out, qs, q, "q " + shapeStr(qs))))
    return failure();
  return expectShape(op, "lse", lse, {qs[0], heads, qs[1]}, q,
                     "[B, heads, T] of " + both);
}

LogicalResult AttentionTrainOp::verify() {
  return verifyAttentionShapes(*this, getQ(), getK(), getV(), getResult(),
                               getLse(), getHeadsAttr().getInt(),
                               getKvHeadsAttr().getInt(), getCausal(),
                               getScale().convertToDouble());
}

LogicalResult SoftmaxCrossEntropyOp::verify() {
  ArrayRef<int64_t> logits = shapeOf(getLogits()),
                    targets = shapeOf(getTargets());
  if (logits.empty())
    return emitOpError("logits must have a vocabulary dim, got a scalar");
  if (targets != logits.drop_back())
    return emitOpError("targets shape ")
           << shapeStr(targets) << " must be logits shape without its last dim "
           << shapeStr(logits.drop_back());
  if (getClasses() && (*getClasses() < 1 || int64_t(*getClasses()) > logits.back()))
    return emitOpError("classes ")
           << *getClasses() << " must be in [1, " << logits.back()
           << "], the logits' last dim";
  return expectShape(*this, "dlogits", getDlogits(), logits, getLogits(),
                     "logits " + shapeStr(logits));
}

//===----------------------------------------------------------------------===//
// B ops
//===----------------------------------------------------------------------===//

LogicalResult MatmulGradBOp::verify() {
  ArrayRef<int64_t> dy = shapeOf(getDy()), w = shapeOf(getW());
  if (dy.empty())
    return emitOpError("dy must have at least one dim, got a scalar");
  if (w.size() != 2)
    return emitOpError("w must be 2-D, got ") << shapeStr(w);
  bool t = getTransposeRhs();
  int64_t k = t ? w[1] : w[0], n = t ? w[0] : w[1];
  if (dy.back() != n)
    return emitOpError("dy's last dim ")
           << dy.back() << " must be the output width " << n << " of w "
           << shapeStr(w) << (t ? " (transpose_rhs)" : "");
  SmallVector<int64_t> dx(dy.drop_back());
  dx.push_back(k);
  return expectShape(*this, "dx", getDx(), dx, getDy(),
                     "dy " + shapeStr(dy) + " and w " + shapeStr(w));
}

LogicalResult LayerNormGradBOp::verify() {
  Value x = getX();
  if (failed(expectRowStats(*this, "mean", getMean(), x)) ||
      failed(expectRowStats(*this, "rstd", getRstd(), x)) ||
      failed(expectChannel(*this, "gamma", getGamma(), x)) ||
      failed(expectShape(*this, "dy", getDy(), shapeOf(x), x, "x's shape")))
    return failure();
  return expectShape(*this, "dx", getDx(), shapeOf(x), x, "x's shape");
}

LogicalResult RMSNormGradBOp::verify() {
  Value x = getX();
  if (failed(expectRowStats(*this, "rstd", getRstd(), x)) ||
      failed(expectChannel(*this, "gamma", getGamma(), x)) ||
      failed(expectShape(*this, "dy", getDy(), shapeOf(x), x, "x's shape")))
    return failure();
  return expectShape(*this, "dx", getDx(), shapeOf(x), x, "x's shape");
}

// SameOperandsAndResultType checks everything these need.
LogicalResult GeluGradOp::verify() { return success(); }
LogicalResult SiluGradOp::verify() { return success(); }
LogicalResult GradAddOp::verify() { return success(); }
LogicalResult SoftmaxGradOp::verify() {
  if (tensorOf(getY()).getRank() == 0)
    return emitOpError("y must have at least one dim, got a scalar");
  return success();
}

LogicalResult AddGradRhsOp::verify() {
  if (failed(expectSuffix(*this, "result", getDrhs(), getDy())))
    return failure();
  if (shapeOf(getDrhs()) == shapeOf(getDy()))
    return emitOpError("result has dy's shape ")
           << shapeStr(shapeOf(getDy()))
           << ": a same-shape operand's gradient is dy itself";
  return success();
}

LogicalResult MulGradLhsOp::verify() {
  if (failed(expectSuffix(*this, "rhs", getRhs(), getDy())))
    return failure();
  return expectShape(*this, "result", getDlhs(), shapeOf(getDy()), getDy(),
                     "dy's shape");
}

LogicalResult MulGradRhsOp::verify() {
  if (failed(expectShape(*this, "lhs", getLhs(), shapeOf(getDy()), getDy(),
                         "dy's shape")))
    return failure();
  return expectSuffix(*this, "result", getDrhs(), getDy());
}

LogicalResult SliceGradOp::verify() {
  ArrayRef<int64_t> dy = shapeOf(getDy()), dx = shapeOf(getDx());
  int64_t axis = getAxisAttr().getInt(), offset = getOffsetAttr().getInt();
  if (axis < 0 || axis >= static_cast<int64_t>(dy.size()))
    return emitOpError("axis ")
           << axis << " is out of range for dy " << shapeStr(dy);
  if (dx.size() != dy.size())
    return emitOpError("result rank ")
           << dx.size() << " must be dy's rank " << dy.size();
  if (offset < 0 || offset + dy[axis] > dx[axis])
    return emitOpError("window [")
           << offset << ", " << offset + dy[axis] << ") of axis " << axis
           << " does not fit the result " << shapeStr(dx);
  SmallVector<int64_t> want(dy);
  want[axis] = dx[axis];
  return expectShape(*this, "result", getDx(), want, getDy(),
                     "dy " + shapeStr(dy) + " widened at axis " +
                         std::to_string(axis));
}

LogicalResult RopeGradOp::verify() {
  ArrayRef<int64_t> in = shapeOf(getDy());
  if (in.size() != 3)
    return emitOpError("dy must be 3-D [B, T, H*Dh], got ") << shapeStr(in);
  int64_t heads = getHeadsAttr().getInt();
  if (failed(expectPositive(*this, "heads", heads)) ||
      failed(expectPositive(*this, "theta", getTheta().convertToDouble())))
    return failure();
  if (in[2] % heads != 0 || (in[2] / heads) % 2 != 0)
    return emitOpError("dy width ")
           << in[2] << " must be heads = " << heads << " times an even width";
  return success();
}

LogicalResult AttentionGradOp::verify() {
  if (failed(verifyAttentionShapes(*this, getQ(), getK(), getV(), getOut(),
                                   getLse(), getHeadsAttr().getInt(),
                                   getKvHeadsAttr().getInt(), getCausal(),
                                   getScale().convertToDouble())))
    return failure();
  if (failed(expectShape(*this, "dout", getDout(), shapeOf(getQ()), getQ(),
                         "q's shape")) ||
      failed(expectShape(*this, "dq", getDq(), shapeOf(getQ()), getQ(),
                         "q's shape")) ||
      failed(expectShape(*this, "dk", getDk(), shapeOf(getK()), getK(),
                         "k's shape")))
    return failure();
  return expectShape(*this, "dv", getDv(), shapeOf(getV()), getV(),
                     "v's shape");
}

//===----------------------------------------------------------------------===//
// W ops
//===----------------------------------------------------------------------===//

LogicalResult MatmulGradWOp::verify() {
  ArrayRef<int64_t> x = shapeOf(getX()), dy = shapeOf(getDy());
  if (x.empty())
    return emitOpError("x must have at least one dim, got a scalar");
  if (dy.size() != x.size() || dy.drop_back() != x.drop_back())
    return emitOpError("dy shape ")
           << shapeStr(dy) << " must have the leading dims of x "
           << shapeStr(x);
  if (getBias().has_value() != getBiasUse().has_value())
    return emitOpError("bias and bias_use go together");
  return success();
}

LogicalResult MatmulGradWOp::verifySymbolUses(SymbolTableCollection &symbols) {
  int64_t k = shapeOf(getX()).back(), n = shapeOf(getDy()).back();
  SmallVector<int64_t> w = getTransposeRhs() ? SmallVector<int64_t>{n, k}
                                             : SmallVector<int64_t>{k, n};
  if (failed(verifyAccumulator(*this, symbols, getWeightAttr(),
                               getWeightUseAttr().getInt(), w, getX())))
    return failure();
  if (auto bias = getBiasAttr())
    return verifyAccumulator(*this, symbols, bias, getBiasUseAttr().getInt(),
                             {n}, getDy());
  return success();
}

LogicalResult LayerNormGradWOp::verify() {
  Value x = getX();
  if (failed(expectRowStats(*this, "mean", getMean(), x)) ||
      failed(expectRowStats(*this, "rstd", getRstd(), x)))
    return failure();
  return expectShape(*this, "dy", getDy(), shapeOf(x), x, "x's shape");
}

LogicalResult
LayerNormGradWOp::verifySymbolUses(SymbolTableCollection &symbols) {
  int64_t d = shapeOf(getX()).back();
  if (failed(verifyAccumulator(*this, symbols, getGammaAttr(),
                               getGammaUseAttr().getInt(), {d}, getX())))
    return failure();
  return verifyAccumulator(*this, symbols, getBetaAttr(),
                           getBetaUseAttr().getInt(), {d}, getX());
}

LogicalResult RMSNormGradWOp::verify() {
  Value x = getX();
  if (failed(expectRowStats(*this, "rstd", getRstd(), x)))
    return failure();
  return expectShape(*this, "dy", getDy(), shapeOf(x), x, "x's shape");
}

LogicalResult RMSNormGradWOp::verifySymbolUses(SymbolTableCollection &symbols) {
  return verifyAccumulator(*this, symbols, getGammaAttr(),
                           getGammaUseAttr().getInt(), {shapeOf(getX()).back()},
                           getX());
}

LogicalResult EmbeddingGradWOp::verify() {
  ArrayRef<int64_t> dy = shapeOf(getDy()), ids = shapeOf(getIds());
  if (dy.empty() || dy.drop_back() != ids)
    return emitOpError("dy shape ")
           << shapeStr(dy) << " must be ids shape " << shapeStr(ids)
           << " followed by the table width";
  return success();
}

LogicalResult
EmbeddingGradWOp::verifySymbolUses(SymbolTableCollection &symbols) {
  auto module = (*this)->getParentOfType<ModuleOp>();
  auto param = module
                   ? symbols.lookupSymbolIn<ParameterOp>(module, getTableAttr())
                   : ParameterOp();
  if (!param)
    return emitOpError("no nn.parameter named ") << getTableAttr();
  ArrayRef<int64_t> table = param.getTensorType().getShape();
  if (table.size() != 2)
    return emitOpError("table ") << getTableAttr() << " must be 2-D";
  return verifyAccumulator(*this, symbols, getTableAttr(),
                           getTableUseAttr().getInt(),
                           {table[0], shapeOf(getDy()).back()}, getDy());
}

LogicalResult PositionEmbeddingGradWOp::verify() {
  if (shapeOf(getDy()).size() != 2)
    return emitOpError("dy must be 2-D [T, D], got ")
           << shapeStr(shapeOf(getDy()));
  return success();
}

LogicalResult
PositionEmbeddingGradWOp::verifySymbolUses(SymbolTableCollection &symbols) {
  auto module = (*this)->getParentOfType<ModuleOp>();
  auto param = module
                   ? symbols.lookupSymbolIn<ParameterOp>(module, getTableAttr())
                   : ParameterOp();
  if (!param)
    return emitOpError("no nn.parameter named ") << getTableAttr();
  ArrayRef<int64_t> table = param.getTensorType().getShape(),
                    dy = shapeOf(getDy());
  if (table.size() != 2 || table[1] != dy[1] || table[0] < dy[0])
    return emitOpError("dy ")
           << shapeStr(dy) << " does not fit the first rows of "
           << getTableAttr() << " " << shapeStr(table);
  return verifyAccumulator(*this, symbols, getTableAttr(),
                           getTableUseAttr().getInt(), table, getDy());
}

/// The parameter of add_grad_w / mul_grad_w is a suffix of dy's shape.
static LogicalResult verifySuffixAccumulator(Operation *op,
                                             SymbolTableCollection &symbols,
                                             FlatSymbolRefAttr name,
                                             int64_t use, Value dy) {
  auto module = op->getParentOfType<ModuleOp>();
  auto param = module ? symbols.lookupSymbolIn<ParameterOp>(module, name)
                      : ParameterOp();
  if (!param)
    return op->emitOpError("no nn.parameter named ") << name;
  ArrayRef<int64_t> p = param.getTensorType().getShape(), d = shapeOf(dy);
  if (p.size() > d.size() || d.take_back(p.size()) != p)
    return op->emitOpError("parameter ")
           << name << " shape " << shapeStr(p)
           << " is not a trailing part of dy shape " << shapeStr(d);
  return verifyAccumulator(op, symbols, name, use, p, dy);
}

LogicalResult AddGradWOp::verify() { return success(); }
LogicalResult AddGradWOp::verifySymbolUses(SymbolTableCollection &symbols) {
  return verifySuffixAccumulator(*this, symbols, getParamAttr(),
                                 getUseAttr().getInt(), getDy());
}

LogicalResult MulGradWOp::verify() {
  return expectShape(*this, "lhs", getLhs(), shapeOf(getDy()), getDy(),
                     "dy's shape");
}
LogicalResult MulGradWOp::verifySymbolUses(SymbolTableCollection &symbols) {
  return verifySuffixAccumulator(*this, symbols, getParamAttr(),
                                 getUseAttr().getInt(), getDy());
}

LogicalResult AccumulateGradOp::verify() { return success(); }
LogicalResult
AccumulateGradOp::verifySymbolUses(SymbolTableCollection &symbols) {
  return verifyAccumulator(*this, symbols, getParamAttr(),
                           getUseAttr().getInt(), shapeOf(getGrad()),
                           getGrad());
}

//===----------------------------------------------------------------------===//
// Optimizer
//===----------------------------------------------------------------------===//

LogicalResult SumUsesOp::verify() {
  if (getUsesAttr().getInt() < 0)
    return emitOpError("uses must not be negative, got ")
           << getUsesAttr().getInt();
  return success();
}

LogicalResult SumUsesOp::verifySymbolUses(SymbolTableCollection &symbols) {
  return verifyAccumulator(*this, symbols, getParamAttr(), 0,
                           shapeOf(getResult()), getResult());
}

LogicalResult GradNormOp::verify() {
  if (getSquares().empty())
    return emitOpError("needs at least one per-tensor sum of squares");
  return success();
}

LogicalResult ClipScaleOp::verify() {
  double c = getMaxNorm().convertToDouble();
  if (!(c >= 0.0) || std::isinf(c))
    return emitOpError("max_norm must be finite and not negative, got ") << c;
  return success();
}

LogicalResult LrScheduleOp::verify() {
  StringRef decay = getDecay();
  if (decay != "cosine" && decay != "constant")
    return emitOpError("decay must be cosine or constant, got '")
           << decay << "'";
  if (getWarmupStepsAttr().getInt() < 0)
    return emitOpError("warmup_steps must not be negative, got ")
           << getWarmupStepsAttr().getInt();
  if (decay == "cosine" &&
      getDecayStepsAttr().getInt() < getWarmupStepsAttr().getInt())
    return emitOpError("decay_steps ")
           << getDecayStepsAttr().getInt() << " must not be below warmup_steps "
           << getWarmupStepsAttr().getInt();
  return expectPositive(*this, "lr", getLr().convertToDouble());
}

LogicalResult AdamWOp::verify() {
  for (auto [name, attr] :
       {std::pair<StringRef, FloatAttr>{"beta1", getBeta1Attr()},
        {"beta2", getBeta2Attr()}}) {
    double b = attr.getValueAsDouble();
    if (!(b >= 0.0 && b < 1.0))
      return emitOpError() << name << " must be in [0, 1), got " << b;
  }
  if (failed(expectPositive(*this, "eps", getEps().convertToDouble())))
    return failure();
  double wd = getWeightDecay().convertToDouble();
  if (!(wd >= 0.0) || std::isinf(wd))
    return emitOpError("weight_decay must be finite and not negative, got ")
           << wd;
  return success();
}

LogicalResult AdamWOp::verifySymbolUses(SymbolTableCollection &symbols) {
  return verifyAccumulator(*this, symbols, getParamAttr(), 0,
                           shapeOf(getGrad()), getGrad());
}

#define GET_OP_CLASSES
#include "dialects/nn/NNGradOps.cpp.inc"
