//===- NNOps.cpp - verifiers of the nn ops ----------------------*- C++ -*-===//
//
// Every verifier says what is wrong in terms a model author recognises: the
// operand, its shape, and the shape that was expected.
//
//===----------------------------------------------------------------------===//

#include "dialects/nn/NNOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/OpImplementation.h"

using namespace mlir;
using namespace pipec::nn;

/// Prints a shape as `[4, 64, 64]`, the way the JSON model files write it.
static std::string shapeStr(ArrayRef<int64_t> shape) {
  std::string s = "[";
  for (auto [i, d] : llvm::enumerate(shape))
    s += (i ? ", " : "") + std::to_string(d);
  return s + "]";
}

static RankedTensorType tensorOf(Value v) {
  return cast<RankedTensorType>(v.getType());
}

//===----------------------------------------------------------------------===//
// Parameters
//===----------------------------------------------------------------------===//

LogicalResult ParameterOp::verify() {
  StringRef init = getInit();
  if (init != "normal" && init != "zeros" && init != "ones")
    return emitOpError("init must be normal, zeros or ones, got '") << init << "'";
  if (init == "normal" && !(getStd().convertToDouble() > 0.0))
    return emitOpError("normal init needs a positive std");
  if (!getTensorType().hasStaticShape())
    return emitOpError("parameter shape must be static");
  return success();
}

LogicalResult ParamOp::verifySymbolUses(SymbolTableCollection &symbols) {
  auto module = (*this)->getParentOfType<ModuleOp>();
  auto param = symbols.lookupSymbolIn<ParameterOp>(module, getNameAttr());
  if (!param)
    return emitOpError("no nn.parameter named ") << getNameAttr();
  if (param.getType() != getType())
    return emitOpError("type ") << getType() << " differs from the parameter's "
                                << param.getType();
  return success();
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
    return op->emitOpError("result type ") << res << " must equal lhs type " << lhs;
  return success();
}

LogicalResult AddOp::verify() { return verifyBroadcastBinary(*this); }
LogicalResult MulOp::verify() { return verifyBroadcastBinary(*this); }
LogicalResult GeluOp::verify() { return success(); }

#define GET_OP_CLASSES
#include "dialects/nn/NNOps.cpp.inc"
