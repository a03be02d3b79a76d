//===- NNVerify.h - helpers shared by the nn op verifiers -------*- C++ -*-===//
//
// The forward ops (NNOps.cpp) and the backward ops (NNGradOps.cpp) word their
// messages the same way: shapes as `[4, 64, 64]`, the way the JSON model
// files write them, and attribute checks that name the attribute.
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_DIALECTS_NN_NNVERIFY_H
#define PIPEC_DIALECTS_NN_NNVERIFY_H

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Operation.h"
#include "llvm/ADT/STLExtras.h"

#include <cmath>
#include <string>

namespace pipec::nn::verify {

/// Prints a shape as `[4, 64, 64]`.
inline std::string shapeStr(llvm::ArrayRef<int64_t> shape) {
  std::string s = "[";
  for (auto [i, d] : llvm::enumerate(shape))
    s += (i ? ", " : "") + std::to_string(d);
  return s + "]";
}

inline mlir::RankedTensorType tensorOf(mlir::Value v) {
  return llvm::cast<mlir::RankedTensorType>(v.getType());
}

inline llvm::ArrayRef<int64_t> shapeOf(mlir::Value v) {
  return tensorOf(v).getShape();
}

/// Counts such as head numbers must be positive.
inline mlir::LogicalResult expectPositive(mlir::Operation *op,
                                          llvm::StringRef name,
                                          int64_t value) {
  if (value <= 0)
    return op->emitOpError() << name << " must be positive, got " << value;
  return mlir::success();
}

/// Scales and epsilons must be positive and finite.
inline mlir::LogicalResult expectPositive(mlir::Operation *op,
                                          llvm::StringRef name, double value) {
  if (!(value > 0.0) || std::isinf(value))
    return op->emitOpError()
           << name << " must be positive and finite, got " << value;
  return mlir::success();
}

} // namespace pipec::nn::verify

#endif // PIPEC_DIALECTS_NN_NNVERIFY_H
