//===- NNOps.cpp - verifiers of the nn ops ----------------------*- C++ -*-===//
//
// Every verifier says what is wrong in terms a model author recognises: the
// operand, its shape, and the shape that was expected.
//
//===----------------------------------------------------------------------===//

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


/// Checks that every named operand has the element type of the first one, so
/// a bf16 weight next to an f32 activation is reported by name.
static LogicalResult
verifySameElementType(Operation *op,
                      ArrayRef<std::pair<StringRef, Value>> operands) {
  Type first = tensorOf(operands.front().second).getElementType();
  for (auto [name, value] : operands.drop_front()) {
    Type t = tensorOf(value).getElementType();
    if (t != first)
      return op->emitOpError()
             << name << " element type " << t << " differs from "
             << operands.front().first << " element type " << first;
  }
  return success();
}

/// Checks the single result against the shape and element type the operands
/// imply; `from` names the operands the expectation was derived from.
static LogicalResult verifyResult(Operation *op, ArrayRef<int64_t> shape,
                                  Type elementType, const Twine &from) {
  auto res = tensorOf(op->getResult(0));
  if (res.getShape() != shape)
    return op->emitOpError("result shape ")
           << shapeStr(res.getShape()) << " must be " << shapeStr(shape) << " ("
           << from << ")";
  if (res.getElementType() != elementType)
    return op->emitOpError("result element type ")
           << res.getElementType() << " must be " << elementType;
  return success();
}

/// Integer attributes such as head counts must be positive; I64Attr stores
/// the bits signless, so the sign is read back with getInt().
static LogicalResult verifyPositive(Operation *op, StringRef name,
                                    IntegerAttr attr) {
  return verify::expectPositive(op, name, attr.getInt());
}

static LogicalResult verifyPositive(Operation *op, StringRef name,
                                    FloatAttr attr) {
  return verify::expectPositive(op, name, attr.getValueAsDouble());
}

//===----------------------------------------------------------------------===//
// Parameters
//===----------------------------------------------------------------------===//

LogicalResult ParameterOp::verify() {
  StringRef init = getInit();
  if (init != "normal" && init != "zeros" && init != "ones")
    return emitOpError("init must be normal, zeros or ones, got '")
           << init << "'";
  if (init == "normal" && !(getStd().convertToDouble() > 0.0))
    return emitOpError("normal init needs a positive std");
  if (!getTensorType().hasStaticShape())
    return emitOpError("parameter shape must be static");
  if (std::optional<ArrayRef<int64_t>> logical = getLogicalShape()) {
    ArrayRef<int64_t> shape = getTensorType().getShape();
    bool fits = logical->size() == shape.size();
    for (size_t i = 0; fits && i < shape.size(); ++i)
      fits = (*logical)[i] >= 1 && (*logical)[i] <= shape[i];
    if (!fits)
      return emitOpError("logical_shape ")
             << shapeStr(*logical) << " must have the rank of "
             << shapeStr(shape) << " and no dim above it";
  }
  return success();
}

LogicalResult ParamOp::verifySymbolUses(SymbolTableCollection &symbols) {
  auto module = (*this)->getParentOfType<ModuleOp>();
  auto param = symbols.lookupSymbolIn<ParameterOp>(module, getNameAttr());
  if (!param)
    return emitOpError("no nn.parameter named ") << getNameAttr();
  // The read is the parameter itself, or its bf16 working copy when the
  // parameter is an fp32 master (--nn-storage{type=bf16}).
  auto declared = cast<RankedTensorType>(param.getType());
  auto read = cast<RankedTensorType>(getType());
  bool copy = declared.getShape() == read.getShape() &&
              declared.getElementType().isF32() &&
              read.getElementType().isBF16();
  if (param.getType() != getType() && !copy)
    return emitOpError("type ")
           << getType() << " differs from the parameter's " << param.getType()
           << " (a read is the parameter's type, or bf16 of an f32 one)";
  return success();
}

//===----------------------------------------------------------------------===//
// Embeddings
//===----------------------------------------------------------------------===//

LogicalResult EmbeddingOp::verify() {
  ArrayRef<int64_t> table = shapeOf(getTable()), ids = shapeOf(getIds());
  if (table.size() != 2)
    return emitOpError("table must be 2-D [V, D], got ") << shapeStr(table);
  SmallVector<int64_t> expected(ids);
  expected.push_back(table[1]);
  return verifyResult(*this, expected, tensorOf(getTable()).getElementType(),
                      "ids " + shapeStr(ids) +
                          " followed by the width of table " + shapeStr(table));
}

LogicalResult PositionEmbeddingOp::verify() {
  ArrayRef<int64_t> table = shapeOf(getTable()), res = shapeOf(getResult());
  if (table.size() != 2)
    return emitOpError("table must be 2-D [Tmax, D], got ") << shapeStr(table);
  if (res.size() != 2)
    return emitOpError("result must be 2-D [T, D], got ") << shapeStr(res);
  if (res[1] != table[1])
    return emitOpError("result width ")
           << res[1] << " does not match table width " << table[1] << " (table "
           << shapeStr(table) << ", result " << shapeStr(res) << ")";
  if (res[0] > table[0])
    return emitOpError("result length ")
           << res[0] << " exceeds the table's " << table[0] << " rows (table "
           << shapeStr(table) << ", result " << shapeStr(res) << ")";
  return verifyResult(*this, res, tensorOf(getTable()).getElementType(),
                      "table " + shapeStr(table));
}

//===----------------------------------------------------------------------===//
// Linear algebra
//===----------------------------------------------------------------------===//

LogicalResult MatmulOp::verify() {
  ArrayRef<int64_t> lhs = shapeOf(getX()), rhs = shapeOf(getW());
  std::string both = "lhs " + shapeStr(lhs) + ", rhs " + shapeStr(rhs);
  if (lhs.empty())
    return emitOpError("lhs must have at least one dim, got a scalar");
  if (rhs.size() != 2)
    return emitOpError("rhs must be 2-D, got ") << shapeStr(rhs);
  bool transposed = getTransposeRhs();
  int64_t k = transposed ? rhs[1] : rhs[0], n = transposed ? rhs[0] : rhs[1];
  if (k != lhs.back())
    return emitOpError("rhs contraction dim ")
           << k << " does not match lhs's last dim " << lhs.back() << " ("
           << both << (transposed ? ", transpose_rhs" : "") << ")";
  SmallVector<std::pair<StringRef, Value>> typed = {{"lhs", getX()},
                                                    {"rhs", getW()}};
  if (Value bias = getBias()) {
    ArrayRef<int64_t> b = shapeOf(bias);
    if (b.size() != 1 || b[0] != n)
      return emitOpError("bias shape ")
             << shapeStr(b) << " must be [" << n << "], the output width ("
             << both << ")";
    typed.push_back({"bias", bias});
  }
  if (failed(verifySameElementType(*this, typed)))
    return failure();
  SmallVector<int64_t> expected(lhs.drop_back());
  expected.push_back(n);
  return verifyResult(*this, expected, tensorOf(getX()).getElementType(), both);
}

//===----------------------------------------------------------------------===//
// Normalisation
//===----------------------------------------------------------------------===//

/// x is [..., D]; every per-channel operand (gamma, beta) must be [D].
static LogicalResult verifyNorm(Operation *op, Value x,
                                ArrayRef<std::pair<StringRef, Value>> channels,
                                FloatAttr eps) {
  ArrayRef<int64_t> xs = shapeOf(x);
  if (xs.empty())
    return op->emitOpError("x must have at least one dim, got a scalar");
  for (auto [name, value] : channels) {
    ArrayRef<int64_t> s = shapeOf(value);
    if (s.size() != 1 || s[0] != xs.back())
      return op->emitOpError()
             << name << " shape " << shapeStr(s) << " must be [" << xs.back()
             << "], the last dim of x " << shapeStr(xs);
  }
  SmallVector<std::pair<StringRef, Value>> typed = {{"x", x}};
  typed.append(channels.begin(), channels.end());
  if (failed(verifySameElementType(op, typed)) ||
      failed(verifyPositive(op, "eps", eps)))
    return failure();
  return verifyResult(op, xs, tensorOf(x).getElementType(),
                      "x " + shapeStr(xs));
}

LogicalResult LayerNormOp::verify() {
  return verifyNorm(*this, getX(), {{"gamma", getGamma()}, {"beta", getBeta()}},
                    getEpsAttr());
}

LogicalResult RMSNormOp::verify() {
  return verifyNorm(*this, getX(), {{"gamma", getGamma()}}, getEpsAttr());
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

/// The rhs must be a suffix of the lhs shape; the result has the lhs type.
static LogicalResult verifyBroadcastBinary(Operation *op) {
  auto lhs = tensorOf(op->getOperand(0)), rhs = tensorOf(op->getOperand(1));
  auto res = tensorOf(op->getResult(0));
  if (lhs.getElementType() != rhs.getElementType())
    return op->emitOpError("operand element types differ: ")
           << lhs.getElementType() << " and " << rhs.getElementType();
  ArrayRef<int64_t> l = lhs.getShape(), r = rhs.getShape();
  if (r.size() > l.size() || l.take_back(r.size()) != r)
    return op->emitOpError("rhs shape ")
           << shapeStr(r) << " is not a trailing part of lhs shape "
           << shapeStr(l);
  if (res != lhs)
    return op->emitOpError("result type ")
           << res << " must equal lhs type " << lhs;
  return success();
}

LogicalResult AddOp::verify() { return verifyBroadcastBinary(*this); }
LogicalResult MulOp::verify() { return verifyBroadcastBinary(*this); }

// SameOperandsAndResultType already checks everything a unary op needs.
LogicalResult GeluOp::verify() { return success(); }
LogicalResult SiluOp::verify() { return success(); }
LogicalResult SoftmaxOp::verify() {
  if (tensorOf(getInput()).getRank() == 0)
    return emitOpError("input must have at least one dim, got a scalar");
  return success();
}

//===----------------------------------------------------------------------===//
// Data movement
//===----------------------------------------------------------------------===//

LogicalResult SliceOp::verify() {
  ArrayRef<int64_t> in = shapeOf(getInput());
  int64_t axis = getAxisAttr().getInt(), offset = getOffsetAttr().getInt(),
          size = getSizeAttr().getInt();
  if (axis < 0 || axis >= static_cast<int64_t>(in.size()))
    return emitOpError("axis ")
           << axis << " is out of range for input " << shapeStr(in);
  if (offset < 0)
    return emitOpError("offset must not be negative, got ") << offset;
  if (failed(verifyPositive(*this, "size", getSizeAttr())))
    return failure();
  if (offset + size > in[axis])
    return emitOpError("range [")
           << offset << ", " << offset + size << ") exceeds axis " << axis
           << " of size " << in[axis] << " (input " << shapeStr(in) << ")";
  SmallVector<int64_t> expected(in);
  expected[axis] = size;
  return verifyResult(*this, expected, tensorOf(getInput()).getElementType(),
                      "input " + shapeStr(in) + " with size " +
                          std::to_string(size) + " at axis " +
                          std::to_string(axis));
}

LogicalResult ReshapeOp::verify() {
  auto in = tensorOf(getInput()), res = tensorOf(getResult());
  if (in.getNumElements() != res.getNumElements())
    return emitOpError("result shape ")
           << shapeStr(res.getShape()) << " holds " << res.getNumElements()
           << " elements, input " << shapeStr(in.getShape()) << " holds "
           << in.getNumElements();
  if (in.getElementType() != res.getElementType())
    return emitOpError("result element type ")
           << res.getElementType() << " must be " << in.getElementType();
  return success();
}

LogicalResult TransposeOp::verify() {
  ArrayRef<int64_t> in = shapeOf(getInput()), perm = getPerm();
  if (perm.size() != in.size())
    return emitOpError("perm has ") << perm.size() << " entries for input "
                                    << shapeStr(in) << " of rank " << in.size();
  SmallVector<bool> seen(in.size(), false);
  for (int64_t p : perm) {
    if (p < 0 || p >= static_cast<int64_t>(in.size()) || seen[p])
      return emitOpError("perm ")
             << shapeStr(perm) << " is not a permutation of 0.."
             << in.size() - 1;
    seen[p] = true;
  }
  SmallVector<int64_t> expected;
  for (int64_t p : perm)
    expected.push_back(in[p]);
  return verifyResult(*this, expected, tensorOf(getInput()).getElementType(),
                      "input " + shapeStr(in) + " permuted by " +
                          shapeStr(perm));
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

LogicalResult RopeOp::verify() {
  ArrayRef<int64_t> in = shapeOf(getInput());
  if (in.size() != 3)
    return emitOpError("input must be 3-D [B, T, H*Dh], got ") << shapeStr(in);
  if (failed(verifyPositive(*this, "heads", getHeadsAttr())) ||
      failed(verifyPositive(*this, "theta", getThetaAttr())))
    return failure();
  int64_t heads = getHeadsAttr().getInt();
  if (in[2] % heads != 0)
    return emitOpError("input width ")
           << in[2] << " is not divisible by heads = " << heads << " (input "
           << shapeStr(in) << ")";
  if ((in[2] / heads) % 2 != 0)
    return emitOpError("head width ")
           << in[2] / heads << " must be even to rotate halves (input "
           << shapeStr(in) << ", heads = " << heads << ")";
  return verifyResult(*this, in, tensorOf(getInput()).getElementType(),
                      "input " + shapeStr(in));
}

LogicalResult AttentionOp::verify() {
  ArrayRef<int64_t> q = shapeOf(getQ()), k = shapeOf(getK()),
                    v = shapeOf(getV());
  if (q.size() != 3)
    return emitOpError("q must be 3-D [B, T, Hq*Dh], got ") << shapeStr(q);
  if (k.size() != 3)
    return emitOpError("k must be 3-D [B, S, Hkv*Dh], got ") << shapeStr(k);
  if (v != k)
    return emitOpError("v shape ")
           << shapeStr(v) << " must equal k shape " << shapeStr(k);
  if (failed(verifyPositive(*this, "heads", getHeadsAttr())) ||
      failed(verifyPositive(*this, "kv_heads", getKvHeadsAttr())) ||
      failed(verifyPositive(*this, "scale", getScaleAttr())))
    return failure();
  int64_t heads = getHeadsAttr().getInt(), kvHeads = getKvHeadsAttr().getInt();
  std::string both = "q " + shapeStr(q) + ", k " + shapeStr(k);
  if (heads % kvHeads != 0)
    return emitOpError("heads = ")
           << heads << " is not a multiple of kv_heads = " << kvHeads;
  if (q[2] % heads != 0)
    return emitOpError("q width ")
           << q[2] << " is not divisible by heads = " << heads << " (" << both
           << ")";
  int64_t headDim = q[2] / heads;
  if (k[0] != q[0])
    return emitOpError("k batch ")
           << k[0] << " does not match q batch " << q[0] << " (" << both << ")";
  if (k[2] != kvHeads * headDim)
    return emitOpError("k width ")
           << k[2] << " must be kv_heads * Dh = " << kvHeads << " * " << headDim
           << " = " << kvHeads * headDim << " (" << both << ")";
  if (getCausal() && k[1] != q[1])
    return emitOpError(
               "causal attention needs as many keys as queries, got T = ")
           << q[1] << " and S = " << k[1] << " (" << both << ")";
  if (failed(verifySameElementType(
          *this, {{"q", getQ()}, {"k", getK()}, {"v", getV()}})))
    return failure();
  return verifyResult(*this, q, tensorOf(getQ()).getElementType(),
                      "q " + shapeStr(q));
}

//===----------------------------------------------------------------------===//
// Loss
//===----------------------------------------------------------------------===//

LogicalResult CrossEntropyOp::verify() {
  ArrayRef<int64_t> logits = shapeOf(getLogits()),
                    targets = shapeOf(getTargets());
  if (logits.empty())
    return emitOpError("logits must have a vocabulary dim, got a scalar");
  if (targets != logits.drop_back())
    return emitOpError("targets shape ")
           << shapeStr(targets) << " must be logits shape without its last dim "
           << shapeStr(logits.drop_back()) << " (logits " << shapeStr(logits)
           << ")";
  if (getClasses() && (*getClasses() < 1 || int64_t(*getClasses()) > logits.back()))
    return emitOpError("classes ")
           << *getClasses() << " must be in [1, " << logits.back()
           << "], the logits' last dim";
  return success();
}

#define GET_OP_CLASSES
#include "dialects/nn/NNOps.cpp.inc"
