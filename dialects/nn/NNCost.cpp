//===- NNCost.cpp - the cost interface of every nn op -----------*- C++ -*-===//
//
// FLOPs count a multiply-add as 2; bytes are element counts times element
// size. Saved activation bytes are what the op's VJP reads from forward.
//
//===----------------------------------------------------------------------===//

#include "dialects/nn/NNOps.h"

using namespace mlir;
using namespace pipec::nn;

#include "dialects/nn/NNInterfaces.cpp.inc"

static int64_t bytesOf(Value v) {
  auto t = cast<RankedTensorType>(v.getType());
  return t.getNumElements() * ((t.getElementTypeBitWidth() + 7) / 8);
}
static int64_t elementsOf(Value v) {
  return cast<RankedTensorType>(v.getType()).getNumElements();
}
static int64_t operandBytes(Operation *op) {
  int64_t n = 0;
  for (Value v : op->getOperands())
    n += bytesOf(v);
  return n;
}
static int64_t resultBytes(Operation *op) {
  int64_t n = 0;
  for (Value v : op->getResults())
    n += bytesOf(v);
  return n;
}

// add/mul: one flop per output element; the VJP of add keeps nothing, that
// of mul keeps both operands.
int64_t AddOp::getFlops() { return elementsOf(getResult()); }
int64_t AddOp::getBytesRead() { return operandBytes(*this); }
int64_t AddOp::getBytesWritten() { return resultBytes(*this); }
int64_t AddOp::getSavedActivationBytes() { return 0; }

int64_t MulOp::getFlops() { return elementsOf(getResult()); }
int64_t MulOp::getBytesRead() { return operandBytes(*this); }
int64_t MulOp::getBytesWritten() { return resultBytes(*this); }
int64_t MulOp::getSavedActivationBytes() { return operandBytes(*this); }

// gelu (tanh form): about 8 flops per element; the VJP needs its input.
int64_t GeluOp::getFlops() { return 8 * elementsOf(getResult()); }
int64_t GeluOp::getBytesRead() { return operandBytes(*this); }
int64_t GeluOp::getBytesWritten() { return resultBytes(*this); }
int64_t GeluOp::getSavedActivationBytes() { return bytesOf(getInput()); }
