//===- NNGradInterface.h - what a VJP builder sees --------------*- C++ -*-===//
//
// The gradient interface (NNGradInterfaces.td) hands every op a GradContext:
// the op's values as they exist in @train_step (kept or recomputed), the
// cotangents of its results, and where its operands' gradients go. The
// autodiff pass implements it; the dialect knows no pass.
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_DIALECTS_NN_NNGRADINTERFACE_H
#define PIPEC_DIALECTS_NN_NNGRADINTERFACE_H

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/Value.h"
#include "llvm/ADT/StringRef.h"

#include <optional>

namespace pipec::nn {

/// Discardable attributes the pass puts on every op of @train_step.
constexpr llvm::StringLiteral kRoleAttrName = "nn.role";
constexpr llvm::StringLiteral kOpIdAttrName = "nn.op_id";
constexpr llvm::StringLiteral kRecomputeAttrName = "nn.recompute";

/// One use of a parameter: the accumulator a W op adds into.
struct ParamUse {
  mlir::FlatSymbolRefAttr name;
  int64_t use = 0;
};

/// The view of one forward op that its VJP builder works with.
class GradContext {
public:
  virtual ~GradContext();

  /// The builder, positioned in the backward part of @train_step.
  virtual mlir::OpBuilder &getBuilder() = 0;
  virtual mlir::Location getLoc() = 0;
  /// Operand i as a value of @train_step (recomputed when its producer is).
  virtual mlir::Value getOperand(unsigned i) = 0;
  /// Result i as a value of @train_step (recomputed when this op is).
  virtual mlir::Value getResult(unsigned i) = 0;
  /// Kept state i of the training form (layernorm: 0 = mean, 1 = rstd).
  virtual mlir::Value getSaved(unsigned i) = 0;
  /// The cotangent of result i, or null when nothing reads it.
  virtual mlir::Value getResultGrad(unsigned i) = 0;
  /// Whether operand i needs a gradient (it depends on a parameter).
  virtual bool needsGrad(unsigned i) = 0;
  /// The accumulator of operand i when it is read straight from nn.param.
  virtual std::optional<ParamUse> getParamUse(unsigned i) = 0;
  /// Hands over a gradient of operand i (a B value); the pass sums the
  /// contributions of a value, or accumulates into a parameter use.
  virtual void addOperandGrad(unsigned i, mlir::Value grad) = 0;
  /// d(step loss)/d(micro-batch loss), the tensor<f64> argument of @train_step.
  virtual mlir::Value getLossScale() = 0;
};

/// Attaches the gradient interface to every nn compute op.
void attachGradOpInterfaceModels(mlir::MLIRContext &context);
/// Attaches the cost interface to the training, backward and optimizer ops
/// (dialects/nn/NNGradCost.cpp).
void attachGradCostModels(mlir::MLIRContext &context);

} // namespace pipec::nn

#include "dialects/nn/NNGradInterfaces.h.inc"

#endif // PIPEC_DIALECTS_NN_NNGRADINTERFACE_H
