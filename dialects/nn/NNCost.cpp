//===- NNCost.cpp - the cost interface of every nn op -----------*- C++ -*-===//
//
// The cost of one forward op for one micro-batch, the numbers the partitioner
// turns into time and the memory planner into bytes. Conventions:
//
//  - FLOPs count a multiply-add as 2 and every other arithmetic operation,
//    exp, log, sqrt and comparisons included, as 1.
//  - Bytes are element counts times element size (bf16 2, f32 and i32 4,
//    f64 8). Bytes read are what the kernel loads (all operands, except that
//    a gather or slice reads only the rows it keeps); bytes written are its
//    results plus any buffer it keeps for backward.
//  - Saved activation bytes are what the op's VJP reads from forward. A
//    parameter (a value made by nn.param) is resident for the whole step, so
//    keeping it costs nothing and is never counted. A value saved by several
//    ops is counted by each; the memory planner deduplicates by value.
//
// Per op, with N the result's element count, R = N / D the rows of an op
// over a last axis of width D, and s the element size:
//
//  op                  FLOPs                         saved for backward
//  add                 N                             nothing
//  mul                 N                             lhs, rhs
//  gelu                8 N                           input
//  silu                4 N (neg-exp, add, div, mul)  input
//  softmax             5 N (max, sub, exp, sum, div) result
//  embedding           0 (reads ids + N s)           ids
//  position_embedding  0 (reads N s)                 nothing
//  matmul              2 M K N (+ M N with bias)     x, w (M = rows of x)
//  layernorm           8 N                           x, mean and rstd (2 R f32)
//  rmsnorm             4 N                           x, rstd (R f32)
//  slice               0 (reads N s)                 nothing
//  reshape             0, a view: moves no bytes     nothing
//  transpose           0                             nothing
//  rope                3 N (2 mul + 1 add; the sin/  nothing: the VJP is the
//                      cos table is a constant)      rotation by -angle
//  attention           B Hq (P (4 Dh + 5) + T Dh)    q, k, v, result, and the
//                                                    log-sum-exp [B, Hq, T] f32
//  cross_entropy       5 B T V + 3 B T               probabilities (B T V s),
//                                                    targets
//
// Attention: P is the number of (query, key) pairs a head scores, T S, or
// T (T + 1) / 2 when causal (a flash kernel skips masked blocks). Each pair
// costs 2 Dh for q.k, 2 Dh for accumulating p v, and 5 for scale, running
// max, subtract, exp and sum; each output element is divided once by the row
// sum. Like a flash kernel it keeps no T x S matrix, only the per-row
// log-sum-exp from which backward recomputes the probabilities.
//
// Cross-entropy: per logit max, subtract-exp, sum and the division that
// forms the probabilities (5); per token log, subtracting the target's logit
// and adding into the mean (3). The fused kernel writes the probabilities
// into one B T V buffer (llm.c keeps them likewise), so the VJP
// (p - onehot(target)) / (B T) is a single pass with no recomputation; that
// buffer is both written and saved.
//
//===----------------------------------------------------------------------===//

#include "dialects/nn/NNOps.h"

using namespace mlir;
using namespace pipec::nn;

#include "dialects/nn/NNInterfaces.cpp.inc"

static RankedTensorType tensorOf(Value v) {
  return cast<RankedTensorType>(v.getType());
}
/// Bytes of one element of `v` (bf16 2, f32 and i32 4, f64 8).
static int64_t elementBytes(Value v) {
  return (tensorOf(v).getElementTypeBitWidth() + 7) / 8;
}
static int64_t elementsOf(Value v) { return tensorOf(v).getNumElements(); }
/// A count made in 128 bits, saturated at INT64_MAX: shapes within the
/// importer's limits (2^40 elements a tensor) can still make a matmul's or
/// an attention's FLOPs pass int64 (2 M K N), and the importer refuses a
/// model whose counts pass kMaxForwardFlops (compiler/import/Importer.h)
/// rather than let them wrap.
static int64_t saturated(__int128 v) {
  return v > __int128(INT64_MAX) ? INT64_MAX : int64_t(v);
}
static int64_t bytesOf(Value v) { return elementsOf(v) * elementBytes(v); }

/// Bytes that keeping `v` for backward adds to a micro-batch's footprint:
/// none for a parameter, which lives for the whole step anyway.
static int64_t activationBytes(Value v) {
  if (v && v.getDefiningOp<ParamOp>())
    return 0;
  return v ? bytesOf(v) : 0;
}
/// Bytes of all operands (or results) of `op`.
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
/// Rows of an op over the last axis of `v`: the product of the leading dims
/// (1 for a scalar), well defined even when the last dim is 0.
static int64_t rowsOf(Value v) {
  ArrayRef<int64_t> shape = tensorOf(v).getShape();
  int64_t rows = 1;
  for (int64_t d : shape.drop_back(shape.empty() ? 0 : 1))
    rows *= d;
  return rows;
}
/// Float statistics (mean, rstd, log-sum-exp) are kept in f32.
static constexpr int64_t kStatBytes = 4;

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

int64_t AddOp::getFlops() { return elementsOf(getResult()); }
int64_t AddOp::getBytesRead() { return operandBytes(*this); }
int64_t AddOp::getBytesWritten() { return resultBytes(*this); }
int64_t AddOp::getSavedActivationBytes() { return 0; }

int64_t MulOp::getFlops() { return elementsOf(getResult()); }
int64_t MulOp::getBytesRead() { return operandBytes(*this); }
int64_t MulOp::getBytesWritten() { return resultBytes(*this); }
int64_t MulOp::getSavedActivationBytes() {
  return activationBytes(getLhs()) + activationBytes(getRhs());
}

int64_t GeluOp::getFlops() { return 8 * elementsOf(getResult()); }
int64_t GeluOp::getBytesRead() { return operandBytes(*this); }
int64_t GeluOp::getBytesWritten() { return resultBytes(*this); }
int64_t GeluOp::getSavedActivationBytes() {
  return activationBytes(getInput());
}

int64_t SiluOp::getFlops() { return 4 * elementsOf(getResult()); }
int64_t SiluOp::getBytesRead() { return operandBytes(*this); }
int64_t SiluOp::getBytesWritten() { return resultBytes(*this); }
int64_t SiluOp::getSavedActivationBytes() {
  return activationBytes(getInput());
}

int64_t SoftmaxOp::getFlops() { return 5 * elementsOf(getResult()); }
int64_t SoftmaxOp::getBytesRead() { return operandBytes(*this); }
int64_t SoftmaxOp::getBytesWritten() { return resultBytes(*this); }
int64_t SoftmaxOp::getSavedActivationBytes() { return bytesOf(getResult()); }

//===----------------------------------------------------------------------===//
// Embeddings
//===----------------------------------------------------------------------===//

int64_t EmbeddingOp::getFlops() { return 0; }
int64_t EmbeddingOp::getBytesRead() {
  return bytesOf(getIds()) + bytesOf(getResult());
}
int64_t EmbeddingOp::getBytesWritten() { return resultBytes(*this); }
int64_t EmbeddingOp::getSavedActivationBytes() {
  return activationBytes(getIds());
}

int64_t PositionEmbeddingOp::getFlops() { return 0; }
int64_t PositionEmbeddingOp::getBytesRead() { return bytesOf(getResult()); }
int64_t PositionEmbeddingOp::getBytesWritten() { return resultBytes(*this); }
int64_t PositionEmbeddingOp::getSavedActivationBytes() { return 0; }

//===----------------------------------------------------------------------===//
// Linear algebra
//===----------------------------------------------------------------------===//

int64_t MatmulOp::getFlops() {
  int64_t m = rowsOf(getX()), k = tensorOf(getX()).getShape().back();
  int64_t n = tensorOf(getResult()).getShape().back();
  return saturated(__int128(2) * m * k * n +
                   (getBias() ? __int128(m) * n : __int128(0)));
}
int64_t MatmulOp::getBytesRead() { return operandBytes(*this); }
int64_t MatmulOp::getBytesWritten() { return resultBytes(*this); }
int64_t MatmulOp::getSavedActivationBytes() {
  // dx = dy w^T needs w, dw = x^T dy needs x; dbias needs only dy.
  return activationBytes(getX()) + activationBytes(getW());
}

//===----------------------------------------------------------------------===//
// Normalisation
//===----------------------------------------------------------------------===//

int64_t LayerNormOp::getFlops() { return 8 * elementsOf(getX()); }
int64_t LayerNormOp::getBytesRead() { return operandBytes(*this); }
int64_t LayerNormOp::getBytesWritten() { return resultBytes(*this); }
int64_t LayerNormOp::getSavedActivationBytes() {
  return activationBytes(getX()) + 2 * rowsOf(getX()) * kStatBytes;
}

int64_t RMSNormOp::getFlops() { return 4 * elementsOf(getX()); }
int64_t RMSNormOp::getBytesRead() { return operandBytes(*this); }
int64_t RMSNormOp::getBytesWritten() { return resultBytes(*this); }
int64_t RMSNormOp::getSavedActivationBytes() {
  return activationBytes(getX()) + rowsOf(getX()) * kStatBytes;
}

//===----------------------------------------------------------------------===//
// Data movement
//===----------------------------------------------------------------------===//

int64_t SliceOp::getFlops() { return 0; }
int64_t SliceOp::getBytesRead() { return bytesOf(getResult()); }
int64_t SliceOp::getBytesWritten() { return resultBytes(*this); }
int64_t SliceOp::getSavedActivationBytes() { return 0; }

int64_t ReshapeOp::getFlops() { return 0; }
int64_t ReshapeOp::getBytesRead() { return 0; }
int64_t ReshapeOp::getBytesWritten() { return 0; }
int64_t ReshapeOp::getSavedActivationBytes() { return 0; }

int64_t TransposeOp::getFlops() { return 0; }
int64_t TransposeOp::getBytesRead() { return operandBytes(*this); }
int64_t TransposeOp::getBytesWritten() { return resultBytes(*this); }
int64_t TransposeOp::getSavedActivationBytes() { return 0; }

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

int64_t RopeOp::getFlops() { return 3 * elementsOf(getInput()); }
int64_t RopeOp::getBytesRead() { return operandBytes(*this); }
int64_t RopeOp::getBytesWritten() { return resultBytes(*this); }
int64_t RopeOp::getSavedActivationBytes() { return 0; }

int64_t AttentionOp::getFlops() {
  ArrayRef<int64_t> q = tensorOf(getQ()).getShape(),
                    k = tensorOf(getK()).getShape();
  int64_t heads = getHeadsAttr().getInt(), headDim = q[2] / heads;
  int64_t t = q[1], s = k[1];
  __int128 pairs = getCausal() ? __int128(t) * (t + 1) / 2 : __int128(t) * s;
  return saturated(__int128(q[0]) * heads *
                   (pairs * (4 * headDim + 5) + __int128(t) * headDim));
}
int64_t AttentionOp::getBytesRead() { return operandBytes(*this); }
int64_t AttentionOp::getBytesWritten() { return resultBytes(*this); }
int64_t AttentionOp::getSavedActivationBytes() {
  ArrayRef<int64_t> q = tensorOf(getQ()).getShape();
  int64_t logSumExp = q[0] * getHeadsAttr().getInt() * q[1] * kStatBytes;
  return activationBytes(getQ()) + activationBytes(getK()) +
         activationBytes(getV()) + bytesOf(getResult()) + logSumExp;
}

//===----------------------------------------------------------------------===//
// Loss
//===----------------------------------------------------------------------===//

int64_t CrossEntropyOp::getFlops() {
  int64_t tokens = rowsOf(getLogits());
  return 5 * elementsOf(getLogits()) + 3 * tokens;
}
int64_t CrossEntropyOp::getBytesRead() { return operandBytes(*this); }
int64_t CrossEntropyOp::getBytesWritten() {
  return resultBytes(*this) + bytesOf(getLogits());
}
int64_t CrossEntropyOp::getSavedActivationBytes() {
  return bytesOf(getLogits()) + activationBytes(getTargets());
}
